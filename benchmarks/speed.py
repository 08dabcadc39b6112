"""optlab's speed targets, each measured against a reference run in the same process.

    python benchmarks/speed.py            # all five targets, about two minutes
    python benchmarks/speed.py --quick    # smaller sizes, a rough check in about twenty seconds
    python benchmarks/speed.py --only 1,3

Prints one table: optlab's time, the reference's, their ratio, the target and pass/fail.
Times are the best of several repetitions (optlab and reference alternate), because other
processes on the machine only ever add time.

1. Single run, small dimension. Gradient descent on 2-D Rosenbrock from (0, 2), lr 0.001,
   50,000 steps, every iterate logged (``optlab.runner.run`` with an in-memory log, a fresh
   objective each time, so compiling its derivatives is included), against the source note's
   loop written by hand on Python floats (``y = f(x0, x1)``, the gradient typed out,
   ``x -= lr * grad``), which logs nothing. Newton with the autodiff Hessian, run to
   convergence from 200 start points on one objective (its code is compiled in the first
   run), against the same loop with the gradient and Hessian typed out and
   ``numpy.linalg.solve``.
2. Large dimension: Rosenbrock's gradient and Hessian-vector product for n = 1,000 and
   100,000, against scipy's ``rosen_der`` and ``rosen_hess_prod``.
3. Batched: 1,000 start points and learning rates of 2-D Rosenbrock gradient descent, 10,000
   steps each, every iterate logged in memory, one batch (``optlab.batch.run_batch``) against
   the same runs one after the other through ``optlab.runner.run``. Also shown: both writing
   one run directory per start (``run_batch_to_dirs`` against ``store.run_to_dir``).
4. End to end: ``python -m optlab solver=gd objective=rosenbrock solver.lr=0.001
   stop.max_iter=50000 stop.gtol=0``, process start to parquet written, against
   ``python -c "import hydra"``, in fresh processes with Python's bytecode cache on (as an
   installed package has it); wall time, and CPU time (issue 20's target: at most 0.4 s above).
   The floor beside it: what a one-key Hydra app (composing, scanning the installed plugins,
   writing its .hydra/) and importing numpy and pyarrow.parquet cost above ``import hydra``.
   Also checked: no matplotlib and no report imported.
5. Log cost: the run of target 1 with and without its log; and memory: 100,000 steps at
   n = 1,000 with every coordinate logged to disk, peak memory growth against the size of
   the whole history.
6. The other first-order methods on the same fused path: momentum, Nesterov and Adam on 2-D
   Rosenbrock from (0, 2), every iterate logged, per step against fused gradient descent
   (target 1's run) and against the same method written by hand on Python floats; and Adam
   from 1,000 starts x 10,000 steps as one batch against the same runs one after another.

Objectives of the same class and options share their compiled code within a process, so
the fresh objective of each run compiles only in the first one (as in a sweep).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from optlab.engine.log import IterateLog  # noqa: E402
from optlab.engine.stopping import Stop  # noqa: E402
from optlab.legacy import run, run_batch, run_batch_to_dirs, run_to_dir  # noqa: E402
from optlab.objectives import Rosenbrock  # noqa: E402
from optlab.solvers import SOLVERS, GradientDescent, Newton  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_loops import NEWTON, hand_adam, hand_momentum, hand_newton, note_loop  # noqa: E402
from rows import Row, best_of, seconds  # noqa: E402
from speed_machine import MACHINE_TARGETS  # noqa: E402


# -- 1. single runs ---------------------------------------------------------------------------
def optlab_gd(steps: int, lr: float, logged: bool = True):
    log = IterateLog(2) if logged else None
    out = run(Rosenbrock(), GradientDescent(lr=lr), None, Stop(max_iter=steps, gtol=0), log=log)
    if log is not None:
        log.table()
    return out


def target_1(quick: bool) -> list[Row]:
    steps = 5_000 if quick else 50_000
    x = note_loop(steps, 1e-3)
    out = optlab_gd(steps, 1e-3)
    assert out.iterations == steps and np.allclose(out.state.x, x, rtol=0, atol=1e-9), (out.state.x, x)
    if not quick:
        assert np.max(np.abs(out.state.x - 1.0)) < 1e-6  # the note: it only just reaches (1, 1)
    t_opt, t_ref = best_of(3 if quick else 7, lambda: optlab_gd(steps, 1e-3), lambda: note_loop(steps, 1e-3))
    rows = [Row(f"1. gd, 2-D Rosenbrock, {steps:,} steps, logged", seconds(t_opt), seconds(t_ref), t_opt / t_ref, 3.0,
                note=f"{t_opt / steps * 1e6:.2f} vs {t_ref / steps * 1e6:.2f} us/step")]
    starts = 40 if quick else 200
    for name, (cls, grad, hess, points) in NEWTON.items():
        xs = points(np.random.default_rng(0), starts)
        obj = cls()

        def optlab_newton(obj=obj, xs=xs):
            ends = []
            for x0 in xs:
                log = IterateLog(obj.dim)
                ends.append(run(obj, Newton(), x0, Stop(max_iter=100), log=log))
                log.table()
            return ends

        def hand(xs=xs, grad=grad, hess=hess):
            return [hand_newton(x0, grad, hess, 1e-12, 100) for x0 in xs]

        mine, theirs = optlab_newton(), hand()
        same = sum(np.allclose(o.state.x, x, rtol=0, atol=1e-9)
                   for o, x in zip(mine, theirs) if o.status == "converged")
        iterations = sum(o.iterations for o in mine)
        t_opt, t_ref = best_of(3 if quick else 9, optlab_newton, hand)
        rows.append(Row(f"1. newton, {name}, {starts} starts", seconds(t_opt), seconds(t_ref), t_opt / t_ref, 5.0,
                        note=f"{iterations} iterations; {same}/{starts} end where the hand loop ends"))
    return rows


# -- 2. large dimension --------------------------------------------------------------------------
def target_2(quick: bool) -> list[Row]:
    from scipy.optimize import rosen_der, rosen_hess_prod

    rows = []
    for n in (1_000, 100_000):
        rng = np.random.default_rng(1)
        x, v = rng.uniform(-1.0, 2.0, n), rng.standard_normal(n)
        obj = Rosenbrock(dim=n)
        assert np.allclose(obj.grad(x), rosen_der(x), rtol=1e-12, atol=1e-9)
        assert np.allclose(obj.hvp(x, v), rosen_hess_prod(x, v), rtol=1e-12, atol=1e-9)
        reps = (200 if n == 1_000 else 5) * (1 if quick else 5)

        def many(fn, *args, reps=reps):
            return lambda: [fn(*args) for _ in range(reps)]

        t_opt, t_ref = (t / reps for t in best_of(5, many(obj.grad, x), many(rosen_der, x)))
        rows.append(Row(f"2. gradient, Rosenbrock n = {n:,}", seconds(t_opt), seconds(t_ref), t_opt / t_ref, 1.5,
                        note="reference: scipy rosen_der"))
        t_opt, t_ref = (t / reps for t in best_of(5, many(obj.hvp, x, v), many(rosen_hess_prod, x, v)))
        rows.append(Row(f"2. Hessian-vector product, n = {n:,}", seconds(t_opt), seconds(t_ref), t_opt / t_ref, 3.0,
                        note="reference: scipy rosen_hess_prod"))
    return rows


# -- 3. batched -------------------------------------------------------------------------------
def target_3(quick: bool) -> list[Row]:
    count, steps = (200, 2_000) if quick else (1_000, 10_000)
    rng = np.random.default_rng(2)
    starts = np.column_stack([rng.uniform(-1.5, 1.5, count), rng.uniform(-0.5, 2.5, count)])
    lrs = np.resize([2.5e-4, 5e-4, 1e-3], count)
    stop = Stop(max_iter=steps, gtol=0)
    obj, gd = Rosenbrock(), GradientDescent()

    def batch():
        return run_batch(obj, gd, starts, stop, lrs=lrs)

    def one_after_another():  # every run's outcome and iterate table kept, as run_batch keeps them
        ends = []
        for x0, lr in zip(starts, lrs):
            log = IterateLog(2)
            ends.append((run(obj, GradientDescent(lr=lr), x0, stop, log=log), log.table()))
        return ends

    batched, single = batch(), one_after_another()
    assert all(np.array_equal(b.outcome.state.x, s.state.x) and b.iterates.num_rows == t.num_rows
               for b, (s, t) in zip(batched, single))
    del batched, single
    t_batch, t_single = best_of(2 if quick else 3, batch, one_after_another)
    rows = [Row(f"3. batched gd, {count:,} starts x {steps:,} steps, in memory", seconds(t_batch), seconds(t_single),
                t_batch / t_single, 0.1, shown=f"{t_single / t_batch:.1f}x faster",
                note="reference: the same runs one after another; every iterate logged")]

    tmp = Path(tempfile.mkdtemp(prefix="optlab-speed-"))
    try:
        part = max(1, count // 4)  # the single runs to disk are timed on a quarter of the starts and scaled

        def batch_to_dirs():
            shutil.rmtree(tmp / "batch", ignore_errors=True)
            run_batch_to_dirs([tmp / "batch" / str(i) for i in range(count)], obj, gd, starts, stop, lrs=lrs)

        def single_to_dirs():
            shutil.rmtree(tmp / "single", ignore_errors=True)
            for i, (x0, lr) in enumerate(zip(starts[:part], lrs[:part])):
                run_to_dir(tmp / "single" / str(i), obj, GradientDescent(lr=lr), x0, stop)

        t_batch, t_single = best_of(1 if quick else 2, batch_to_dirs, single_to_dirs)
        t_single *= count / part
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows.append(Row("3. (the same, one run directory per start)", seconds(t_batch), seconds(t_single),
                    t_batch / t_single, 0.1, shown=f"{t_single / t_batch:.1f}x faster",
                    note=f"not the target; single runs timed on {part} starts, scaled"))
    return rows


# -- 4. end to end ------------------------------------------------------------------------------
CLI = ["-m", "optlab", "solver=gd", "objective=rosenbrock", "solver.lr=0.001", "stop.max_iter=50000",
       "stop.gtol=0"]


def target_4(quick: bool) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="optlab-speed-"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "HYDRA_FULL_ERROR")}
    env.update(PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    runs = iter(range(10**6))

    def cli():
        out = tmp / f"run{next(runs)}"
        subprocess.run([sys.executable, *CLI, f"hydra.run.dir={out}"], env=env, cwd=tmp, check=True,
                       capture_output=True)
        assert (out / "iterates.parquet").exists()

    def bare():
        subprocess.run([sys.executable, "-c", "import hydra"], env=env, cwd=tmp, check=True)

    def hydra_app():  # the least any Hydra app does: compose, scan the installed plugins, run, write .hydra/
        subprocess.run([sys.executable, str(tmp / "app.py"), f"hydra.run.dir={tmp / 'app'}"], env=env, cwd=tmp,
                       check=True, capture_output=True)

    def libraries():  # what a run writing parquet imports besides Hydra
        subprocess.run([sys.executable, "-c", "import hydra, numpy, pyarrow.parquet"], env=env, cwd=tmp, check=True)

    (tmp / "conf").mkdir()
    (tmp / "conf" / "config.yaml").write_text("a: 1\n")
    (tmp / "app.py").write_text('import hydra\n\n@hydra.main(config_path="conf", config_name="config", '
                                'version_base="1.3")\ndef main(cfg):\n    return cfg.a\n\nmain()\n')
    try:
        cli(), bare()  # warm the bytecode cache and the file system
        t_cli, t_hydra = best_of(3 if quick else 5, cli, bare)
        cpu = [children_cpu(fn, 3 if quick else 7) for fn in (cli, bare, hydra_app, libraries)]
        logged = subprocess.run([sys.executable, "-X", "importtime", *CLI, f"hydra.run.dir={tmp / 'imports'}"],
                                env=env, cwd=tmp, capture_output=True, text=True, check=True).stderr
        plain = subprocess.run([sys.executable, "-X", "importtime", "-c", "import optlab"], env=env, cwd=tmp,
                               capture_output=True, text=True, check=True).stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    heavy = [name for name in ("matplotlib", "optlab.report", "pandas")
             if any(line.split("|")[-1].strip().startswith(name) for line in logged.splitlines())]
    heavy_import = [name for name in ("matplotlib", "optlab.report", "pandas")
                    if any(line.split("|")[-1].strip().startswith(name) for line in plain.splitlines())]
    return [
        Row("4. python -m optlab ... 50,000 gd steps", seconds(t_cli), seconds(t_hydra) + " (import hydra)",
            t_cli - t_hydra, 1.0, shown=f"+{t_cli - t_hydra:.2f} s", note="target: at most 1.0 s above"),
        Row("4. the same, CPU time", f"{cpu[0]:.3f} s", f"{cpu[1]:.3f} s (import hydra)", cpu[0] - cpu[1], 0.4,
            shown=f"+{cpu[0] - cpu[1]:.3f} s", note="target (issue 20): at most 0.4 s above"),
        Row("4. floor: a one-key Hydra app; import numpy, pyarrow.parquet", f"+{cpu[2] - cpu[1]:.3f} s",
            f"+{cpu[3] - cpu[1]:.3f} s", cpu[2] + cpu[3] - 2 * cpu[1], math.inf,
            shown=f"+{cpu[2] + cpu[3] - 2 * cpu[1]:.3f} s", note="CPU above import hydra, before any optlab code"),
        Row("4. imports: import optlab / the run", ", ".join(heavy_import) or "-", ", ".join(heavy) or "-",
            float(bool(heavy or heavy_import)), 0.0, shown="none" if not (heavy or heavy_import) else "imported",
            note="matplotlib, the report, pandas"),
    ]


def children_cpu(fn: Callable[[], object], repeats: int) -> float:
    """The least CPU time (user + system) of the processes ``fn`` runs, over ``repeats`` calls."""
    best = math.inf
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


# -- 5. log cost and memory ----------------------------------------------------------------------
# VmHWM, not ru_maxrss: the latter keeps the high-water mark of the forking parent across exec.
MEMORY_PROBE = """
import sys
from optlab.objectives import Rosenbrock
from optlab.solvers import GradientDescent
from optlab.engine.stopping import Stop
from optlab.legacy import run_to_dir
def status_kb(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1])
before = status_kb('VmRSS')
run_to_dir(sys.argv[1], Rosenbrock(dim=1000), GradientDescent(lr=1e-4), None,
           Stop(max_iter=int(sys.argv[2]), gtol=0), max_coords=1000)
print(before, status_kb('VmHWM'))
"""


def target_5(quick: bool) -> list[Row]:
    steps = 5_000 if quick else 50_000
    t_logged, t_bare = best_of(3 if quick else 7, lambda: optlab_gd(steps, 1e-3), lambda: optlab_gd(steps, 1e-3, False))
    rows = [Row(f"5. log cost, target 1's run ({steps:,} steps)", seconds(t_logged), seconds(t_bare) + " (no log)",
                t_logged / t_bare, 1.2, note="every iterate logged against no log")]
    steps = 10_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="optlab-speed-"))
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp / "run"), str(steps)], env=env,
                              capture_output=True, text=True, check=True)
        before_kb, peak_kb = map(int, done.stdout.split())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    history = (steps + 1) * (8 + 1000) * 8
    growth = (peak_kb - before_kb) * 1024
    rows.append(Row(f"5. memory, {steps:,} steps at n = 1,000 to disk", f"{growth / 2**20:.0f} MB",
                    f"{history / 2**20:.0f} MB (history)", growth / history, 0.25,
                    note="peak memory growth against the whole history"))
    return rows


# -- 6. the other first-order methods -------------------------------------------------------------
def optlab_method(name: str, lr: float, steps: int) -> object:
    log = IterateLog(2)
    out = run(Rosenbrock(), SOLVERS[name](lr=lr), None, Stop(max_iter=steps, gtol=0), log=log)
    log.table()
    return out


def target_6(quick: bool) -> list[Row]:
    steps = 5_000 if quick else 50_000
    reps = 3 if quick else 7
    t_gd = best_of(reps, lambda: optlab_gd(steps, 1e-3))[0] / steps
    rows = []
    for name, lr, hand in (("momentum", 1e-4, lambda n: hand_momentum(n, 1e-4)),
                           ("nesterov", 1e-4, lambda n: hand_momentum(n, 1e-4, nesterov=True)),
                           ("adam", 1e-3, lambda n: hand_adam(n, 1e-3))):
        done = optlab_method(name, lr, steps).iterations  # adam's x stops changing before 50,000 steps
        t_opt, t_hand = best_of(reps, lambda name=name, lr=lr: optlab_method(name, lr, steps),
                                lambda hand=hand, done=done: hand(done))
        t_opt, t_hand = t_opt / done, t_hand / done
        rows.append(Row(f"6. {name}, {done:,} logged steps, per step", f"{t_opt * 1e6:.2f} us",
                        f"{t_gd * 1e6:.2f} us (fused gd)", t_opt / t_gd, 1.5))
        rows.append(Row(f"6. {name}, against the method by hand", f"{t_opt * 1e6:.2f} us",
                        f"{t_hand * 1e6:.2f} us (hand loop)", t_opt / t_hand, 3.0,
                        note="the hand loop logs nothing"))
    count, batch_steps = (200, 2_000) if quick else (1_000, 10_000)
    rng = np.random.default_rng(2)
    starts = np.column_stack([rng.uniform(-1.5, 1.5, count), rng.uniform(-0.5, 2.5, count)])
    stop = Stop(max_iter=batch_steps, gtol=0)
    adam = SOLVERS["adam"](lr=1e-2)

    def one_after_another():
        for x0 in starts:
            log = IterateLog(2)
            run(Rosenbrock(), adam, x0, stop, log=log)
            log.table()

    t_batch, t_single = best_of(2 if quick else 3, lambda: run_batch(Rosenbrock(), adam, starts, stop),
                                one_after_another)
    rows.append(Row(f"6. batched adam, {count:,} starts x {batch_steps:,} steps, in memory", seconds(t_batch),
                    seconds(t_single), t_batch / t_single, 0.1, shown=f"{t_single / t_batch:.1f}x faster",
                    note="reference: the same runs one after another; every iterate logged"))
    return rows


TARGETS = {"1": target_1, "2": target_2, "3": target_3, "4": target_4, "5": target_5, "6": target_6,
           **MACHINE_TARGETS}


def limit_shown(row: Row) -> str:
    """The target column: a ratio, seconds above a reference (a ``+`` figure), 10x faster, or none."""
    if row.limit == math.inf or row.shown in ("none", "imported"):
        return "none" if row.limit in (0.0, math.inf) else f"<= {row.limit:g}"
    if "faster" in row.shown:
        return "<= 0.1 (10x)"
    return f"<= +{row.limit:g} s" if row.shown.startswith("+") else f"<= {row.limit:g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a rough check")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated target numbers")
    args = parser.parse_args()
    rows: list[Row] = []
    for key in args.only.split(","):
        print(f"target {key} ...", file=sys.stderr, flush=True)
        rows.extend(TARGETS[key.strip()](args.quick))
    header = ("target", "optlab", "reference", "ratio", "target", "pass", "")
    table = [(r.target, r.optlab, r.reference, r.shown or f"{r.ratio:.2f}", limit_shown(r),
              "-" if r.note.startswith("not the target") else "pass" if r.passed else "FAIL", r.note) for r in rows]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0 if all(r.passed for r in rows if not r.note.startswith("not the target")) else 1


if __name__ == "__main__":
    sys.exit(main())
