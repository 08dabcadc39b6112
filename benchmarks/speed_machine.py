"""The speed targets of machine code (optlab[jit], numba), each against a hand-written @njit
loop or scipy in the same process (targets 7 to 10 of benchmarks/speed.py).

7. One run per method (gd, momentum, nesterov, adagrad, rmsprop, adam) on 2-D Rosenbrock from
   (0, 2), up to 200,000 steps, every iterate logged in memory, set-up included, on the
   machine-code lowering, per logged step against an @njit loop of the same method that stores
   x, f and ||grad f|| at every step into new arrays (a run's log is new memory too, and its
   page faults are part of both); the iterates are checked to be those of the Python lowering.
8. 1,000 starts x 10,000 steps of gd (three rates) and adam, every iterate kept, one batch on
   machine code, against an @njit loop over the runs writing the same rows (f, ||grad f||, the
   step size and x per step) into new arrays.
9. Extended Rosenbrock's gradient and Hessian-vector product at n = 1e6: fused machine code
   against a one-pass @njit loop (scipy's formulas), and array code (OPTLAB_JIT=off) against
   scipy's rosen_der and rosen_hess_prod.
10. Fixed costs: the set-up of a second process running the same program (its loop opened from
   the cache), how many of 24 jobs of a learning-rate sweep (two processes at a time, an empty
   cache) compile, and ``optlab.minimize`` by name against a reused objective.

Times are CPU time (``time.process_time``), best of several rounds with optlab and the
reference alternating: on a busy machine other processes add wall time, not CPU time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rows import Row, best_of, seconds

REPO = Path(__file__).resolve().parents[1]
CPU = time.process_time  # these targets time CPU, best of several rounds: other processes only add wall time
METHODS = {"gd": 1e-4, "momentum": 1e-5, "nesterov": 1e-5, "adagrad": 0.1, "rmsprop": 1e-5, "adam": 1e-5}


def missing() -> str | None:
    from optlab.autodiff import native

    return native.installed()


def skipped(target: str, why: str) -> list[Row]:
    return [Row(target, "-", "-", math.nan, math.inf, shown="-", note=f"not the target here: {why}")]


@contextlib.contextmanager
def machine_code(setting: str = "on") -> Iterator[None]:
    """Runs and batches take the machine-code lowering inside the block (OPTLAB_JIT=on)."""
    old = os.environ.get("OPTLAB_JIT")
    os.environ["OPTLAB_JIT"] = setting
    try:
        yield
    finally:
        if old is None:
            del os.environ["OPTLAB_JIT"]
        else:
            os.environ["OPTLAB_JIT"] = old


# -- 7. one run ----------------------------------------------------------------------------------
def hand_loops() -> dict:
    """@njit loops of the six methods on 2-D Rosenbrock, storing x, f and ||grad f|| per step."""
    from numba import njit

    @njit(inline="always")
    def rosen(x0, x1):
        d = x1 - x0 * x0
        return 100.0 * d * d + (1.0 - x0) ** 2, -400.0 * x0 * d - 2.0 * (1.0 - x0), 200.0 * d

    def method(update):
        @njit
        def loop(steps, lr, out):
            x0, x1, a0, a1, b0, b1 = 0.0, 2.0, 0.0, 0.0, 0.0, 0.0
            f, g0, g1 = rosen(x0, x1)
            for k in range(steps):
                x0, x1, a0, a1, b0, b1 = update(x0, x1, g0, g1, a0, a1, b0, b1, lr, k)
                f, g0, g1 = rosen(x0, x1)
                out[0, k], out[1, k], out[2, k], out[3, k] = x0, x1, f, math.sqrt(g0 * g0 + g1 * g1)
        return loop

    def rule(fn):
        return njit(inline="always")(fn)

    gd = rule(lambda x0, x1, g0, g1, a0, a1, b0, b1, lr, k: (x0 - lr * g0, x1 - lr * g1, a0, a1, b0, b1))

    @rule
    def momentum(x0, x1, g0, g1, a0, a1, b0, b1, lr, k):
        a0, a1 = 0.9 * a0 - lr * g0, 0.9 * a1 - lr * g1
        return x0 + a0, x1 + a1, a0, a1, b0, b1

    @rule
    def nesterov(x0, x1, g0, g1, a0, a1, b0, b1, lr, k):
        a0, a1 = 0.9 * a0 - lr * g0, 0.9 * a1 - lr * g1
        return x0 + 0.9 * a0 - lr * g0, x1 + 0.9 * a1 - lr * g1, a0, a1, b0, b1

    @rule
    def adagrad(x0, x1, g0, g1, a0, a1, b0, b1, lr, k):
        b0, b1 = b0 + g0 * g0, b1 + g1 * g1
        return x0 - lr * (g0 / (math.sqrt(b0) + 1e-10)), x1 - lr * (g1 / (math.sqrt(b1) + 1e-10)), a0, a1, b0, b1

    @rule
    def rmsprop(x0, x1, g0, g1, a0, a1, b0, b1, lr, k):
        b0, b1 = 0.9 * b0 + 0.1 * g0 * g0, 0.9 * b1 + 0.1 * g1 * g1
        return x0 - lr * (g0 / (math.sqrt(b0) + 1e-8)), x1 - lr * (g1 / (math.sqrt(b1) + 1e-8)), a0, a1, b0, b1

    @rule
    def adam(x0, x1, g0, g1, a0, a1, b0, b1, lr, k):
        a0, a1 = 0.9 * a0 + 0.1 * g0, 0.9 * a1 + 0.1 * g1
        b0, b1 = 0.999 * b0 + 0.001 * g0 * g0, 0.999 * b1 + 0.001 * g1 * g1
        c1, c2 = 1.0 - 0.9 ** (k + 1), 1.0 - 0.999 ** (k + 1)
        return (x0 - lr * (a0 / c1) / (math.sqrt(b0 / c2) + 1e-8), x1 - lr * (a1 / c1) / (math.sqrt(b1 / c2) + 1e-8),
                a0, a1, b0, b1)

    rules = {"gd": gd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad, "rmsprop": rmsprop,
             "adam": adam}
    return {name: method(r) for name, r in rules.items()}


def logged_run(name: str, steps: int, jit: bool = True):
    """One run of ``name``, every iterate kept in memory: its outcome and iterate table."""
    from optlab.engine.run_set import InMemory, run_set
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.solvers import SOLVERS

    sinks = InMemory()
    (out,) = run_set(Rosenbrock(), SOLVERS[name](lr=METHODS[name]), None, Stop(max_iter=steps, gtol=0), sinks)
    assert out.backend == "fused" and out.jit == jit, (out.backend, out.jit)
    return out, sinks.tables[0]


def same_rows(a, b) -> bool:
    """Whether two iterate tables hold the same numbers (NaN equal to NaN), time aside."""
    return a.column_names == b.column_names and all(
        np.array_equal(a[c].to_numpy(), b[c].to_numpy(), equal_nan=a[c].type == "double")
        for c in a.column_names if c != "time_s")


def target_7(quick: bool) -> list[Row]:
    if missing():
        return skipped("7. machine code, one run per method", missing())
    steps, rows, loops = (20_000 if quick else 200_000), [], hand_loops()
    for name in METHODS:
        with machine_code("off"):
            python = logged_run(name, steps, jit=False)[1]
        with machine_code():
            out, table = logged_run(name, steps)  # (compiled here, or opened from the cache)
            assert same_rows(table, python), name
            done = out.iterations
            buffer = np.empty((4, done))
            loops[name](done, METHODS[name], buffer)
            assert np.allclose(buffer[:2, -1], out.state.x, rtol=0, atol=1e-6), name
            t_opt, t_hand = best_of(3 if quick else 7, lambda n=name: logged_run(n, steps),
                                    lambda n=name, d=done: loops[n](d, METHODS[n], np.empty((4, d))), clock=CPU)
        rows.append(Row(f"7. {name}, {done:,} logged steps (machine code)", f"{t_opt / done * 1e9:.1f} ns/step",
                        f"{t_hand / done * 1e9:.1f} ns/step (@njit)", t_opt / t_hand, 2.0,
                        note="set-up included; iterates = the Python lowering's"))
    return rows


# -- 8. batches ----------------------------------------------------------------------------------
def hand_batch(update_name: str):
    from numba import njit

    adam = update_name == "adam"

    @njit
    def batch(starts, lrs, steps, out):  # out: f, ||grad f||, step size, x_0, x_1 per run and step
        for r in range(len(starts)):
            x0, x1, lr = starts[r, 0], starts[r, 1], lrs[r]
            m0 = m1 = s0 = s1 = 0.0
            d = x1 - x0 * x0
            g0, g1 = -400.0 * x0 * d - 2.0 * (1.0 - x0), 200.0 * d
            for k in range(steps):
                if adam:
                    m0, m1 = 0.9 * m0 + 0.1 * g0, 0.9 * m1 + 0.1 * g1
                    s0, s1 = 0.999 * s0 + 0.001 * g0 * g0, 0.999 * s1 + 0.001 * g1 * g1
                    c1, c2 = 1.0 - 0.9 ** (k + 1), 1.0 - 0.999 ** (k + 1)
                    x0 = x0 - lr * (m0 / c1) / (math.sqrt(s0 / c2) + 1e-8)
                    x1 = x1 - lr * (m1 / c1) / (math.sqrt(s1 / c2) + 1e-8)
                else:
                    x0, x1 = x0 - lr * g0, x1 - lr * g1
                d = x1 - x0 * x0
                g0, g1 = -400.0 * x0 * d - 2.0 * (1.0 - x0), 200.0 * d
                out[0, r, k] = 100.0 * d * d + (1.0 - x0) ** 2
                out[1, r, k] = math.sqrt(g0 * g0 + g1 * g1)
                out[2, r, k], out[3, r, k], out[4, r, k] = lr, x0, x1
    return batch


def target_8(quick: bool) -> list[Row]:
    if missing():
        return skipped("8. machine code, batches", missing())
    from optlab.engine.run_set import run_set
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.solvers import SOLVERS

    count, steps = (200, 2_000) if quick else (1_000, 10_000)
    rng = np.random.default_rng(2)
    starts = np.column_stack([rng.uniform(-1.5, 1.5, count), rng.uniform(-0.5, 2.5, count)])
    rows = []
    for name, lrs in (("gd", np.resize([2.5e-4, 5e-4, 1e-3], count)), ("adam", np.full(count, 1e-2))):
        solver, stop, hand = SOLVERS[name](lr=float(lrs[0])), Stop(max_iter=steps, gtol=0), hand_batch(name)

        def ours(solver=solver, lrs=lrs, stop=stop):
            with machine_code():
                return run_set(Rosenbrock(), solver, starts, stop, lrs=lrs)  # every iterate kept in memory

        done = ours()
        assert all(o.backend == "batched" and o.jit for o in done)
        taken = sum(o.iterations for o in done)  # (a few runs stall before the last step)
        del done
        hand(starts, lrs, steps, np.empty((5, count, steps)))

        def by_hand(hand=hand, lrs=lrs):
            return hand(starts, lrs, steps, np.empty((5, count, steps)))  # (a new result, as a batch makes)

        t_opt, t_hand = best_of(2 if quick else 3, ours, by_hand, clock=CPU)
        rows.append(Row(f"8. batched {name}, {count:,} starts x {steps:,} steps (machine code)", seconds(t_opt),
                        seconds(t_hand) + " (@njit)", t_opt / t_hand, 1.2,
                        note=f"every iterate kept; {taken / (count * steps):.1%} of the steps taken"))
    return rows


# -- 9. large n ----------------------------------------------------------------------------------
def one_pass():
    from numba import njit

    @njit
    def der(x):
        n, g = len(x), np.empty(len(x))
        g[0] = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
        for i in range(1, n - 1):
            g[i] = 200 * (x[i] - x[i - 1] ** 2) - 400 * x[i] * (x[i + 1] - x[i] ** 2) - 2 * (1 - x[i])
        g[n - 1] = 200 * (x[n - 1] - x[n - 2] ** 2)
        return g

    @njit
    def hess_prod(x, p):
        n, hp = len(x), np.empty(len(x))
        hp[0] = (1200 * x[0] ** 2 - 400 * x[1] + 2) * p[0] - 400 * x[0] * p[1]
        for i in range(1, n - 1):
            hp[i] = (-400 * x[i - 1] * p[i - 1] + (202 + 1200 * x[i] ** 2 - 400 * x[i + 1]) * p[i]
                     - 400 * x[i] * p[i + 1])
        hp[n - 1] = -400 * x[n - 2] * p[n - 2] + 200 * p[n - 1]
        return hp

    return der, hess_prod


def code_at(mode: str, x: np.ndarray):
    """The gradient and Hessian-vector product code of extended Rosenbrock under OPTLAB_JIT=mode."""
    from optlab.autodiff.compile import Compiled
    from optlab.objectives import Rosenbrock
    from optlab.objectives.derivatives import derivatives_of

    old = os.environ.get("OPTLAB_JIT")
    os.environ["OPTLAB_JIT"] = mode
    try:
        compiled = Compiled(derivatives_of(Rosenbrock(dim=x.size)).f, x)
        return compiled._get("array_grad"), compiled._get("array_hvp")
    finally:
        if old is None:
            del os.environ["OPTLAB_JIT"]
        else:
            os.environ["OPTLAB_JIT"] = old


def target_9(quick: bool) -> list[Row]:
    from scipy.optimize import rosen_der, rosen_hess_prod

    n = 10**5 if quick else 10**6
    rng = np.random.default_rng(1)
    x, v = rng.uniform(-1.0, 2.0, n), rng.standard_normal(n)
    reps = 9 if quick else 21
    rows = []
    grad, hvp = code_at("off", x)
    for what, mine, ref, args in (("gradient", grad, rosen_der, (x,)), ("Hessian-vector product", hvp,
                                                                         rosen_hess_prod, (x, v))):
        assert np.allclose(mine(*args), ref(*args), rtol=1e-12, atol=1e-9)
        t_opt, t_ref = best_of(reps, lambda m=mine, a=args: m(*a), lambda r=ref, a=args: r(*a), clock=CPU)
        rows.append(Row(f"9. {what}, n = {n:,}, array code", seconds(t_opt), seconds(t_ref) + " (scipy)",
                        t_opt / t_ref, 2.0, note="without the extra (OPTLAB_JIT=off)"))
    if missing():
        return rows + skipped("9. fused machine code", missing())
    grad, hvp = code_at("on", x)
    der, hess_prod = one_pass()
    for what, mine, ref, args in (("gradient", grad, der, (x,)), ("Hessian-vector product", hvp, hess_prod,
                                                                   (x, v))):
        assert "fused machine code" in mine.__doc__ and np.allclose(mine(*args), ref(*args), rtol=1e-12, atol=1e-9)
        t_opt, t_ref = best_of(reps, lambda m=mine, a=args: m(*a), lambda r=ref, a=args: r(*a), clock=CPU)
        rows.append(Row(f"9. {what}, n = {n:,}, fused machine code", seconds(t_opt), seconds(t_ref) + " (@njit)",
                        t_opt / t_ref, 1.5, note="one pass by hand"))
    return rows


# -- 10. fixed costs ----------------------------------------------------------------------------
PROBE = """
import json, os, sys
os.environ["OPTLAB_JIT"] = "on"
from optlab.autodiff import native
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import Rosenbrock
from optlab.solvers import SOLVERS
(out,) = run_set(Rosenbrock(), SOLVERS["gd"](lr=float(sys.argv[1])), None, Stop(max_iter=1000, gtol=0))
print(json.dumps({"setup_s": out.setup_s, "compile_s": sum(s for _, s in native.COMPILED),
                  "numba": "numba" in sys.modules, "jit": out.jit}))
"""


def probes(lrs: list[float], cache: str, parallel: int = 2) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPTLAB_JIT_CACHE": cache}
    found = []
    for i in range(0, len(lrs), parallel):
        running = [subprocess.Popen([sys.executable, "-c", PROBE, str(lr)], env=env, stdout=subprocess.PIPE, text=True)
                   for lr in lrs[i:i + parallel]]
        found += [json.loads(p.communicate()[0]) for p in running]
    return found


def target_10(quick: bool) -> list[Row]:
    import optlab

    rows = []
    if missing():
        rows += skipped("10. machine code from the cache", missing())
    else:
        with tempfile.TemporaryDirectory() as cache:
            first, second = probes([1e-3], cache) + probes([2e-3], cache)
            rows.append(Row("10. a second process, same program: set-up", seconds(second["setup_s"]),
                            seconds(first["setup_s"]) + " (first)", second["setup_s"], 0.2,
                            shown=f"{second['setup_s']:.3f} s",
                            note=f"compiled {second['compile_s']:.1f} s ({first['compile_s']:.1f} s in the first); "
                                 f"numba imported: {second['numba']}"))
        with tempfile.TemporaryDirectory() as cache:
            jobs = probes(list(np.geomspace(1e-4, 1e-2, 8 if quick else 24)), cache)
            compiled = sum(j["compile_s"] > 0 for j in jobs)
            rows.append(Row(f"10. lr sweep of {len(jobs)} jobs, 2 at a time: jobs compiling", str(compiled), "1",
                            compiled, 1, shown=str(compiled), note="one program for every rate"))
    reused = optlab.objectives.OBJECTIVES["rosenbrock"]()
    optlab.minimize("rosenbrock", "newton"), optlab.minimize(reused, "newton")
    t_name, t_reused = best_of(9 if quick else 41, lambda: optlab.minimize("rosenbrock", "newton"),
                               lambda: optlab.minimize(reused, "newton"), clock=CPU)
    rows.append(Row("10. minimize by name, 7-iteration Newton", seconds(t_name), seconds(t_reused) + " (reused)",
                    t_name / t_reused, 1.5, note="objective checked once per class and state"))
    return rows


MACHINE_TARGETS = {"7": target_7, "8": target_8, "9": target_9, "10": target_10}

