"""The second-order and least-squares solvers against scipy, measured in the same process.

    python benchmarks/solvers_speed.py            # all three parts, about a minute
    python benchmarks/solvers_speed.py --quick    # fewer repetitions
    python benchmarks/solvers_speed.py --only 3   # one part
    python benchmarks/solvers_speed.py --only 4   # every solver's cost per iteration, a few minutes

1. ``trust_region`` (Steihaug-CG on Hessian-vector products) on extended Rosenbrock, n = 1,000
   and 10,000, from optlab's standard start (0, 2, 2, ...) to ||grad f|| <= 1e-5, against
   scipy's ``trust-krylov`` with scipy's own ``rosen_der`` and ``rosen_hess_prod``, the same
   start and gtol. A fresh objective per run (its compiled code is shared after the first).
2. ``gauss_newton`` and ``levenberg_marquardt`` on Beale and curve_fit, run to ||grad f||
   <= 1e-10: the cost of an iteration (a whole run less a run of one iteration, over the
   iterations between) with r and J from compiled code, against the same runs on the eager
   engine (``optlab.autodiff.eager()``: how J was built before); a whole run against MINPACK's
   ``lmder`` (scipy ``least_squares(method='lm')``, tolerances 1e-15) handed optlab's compiled
   residual and Jacobian; and a whole run on a fresh objective, as in a sweep (its
   construction included, on both sides), where the shared code is first checked against
   the objective's own recording.
3. Levenberg-Marquardt's evaluations against MINPACK's on the shipped least-squares objectives
   and MINPACK's 18 test functions (tests/least_squares_problems.py): residual and Jacobian
   evaluations with each method's own stopping rules, and residual evaluations until the first
   one reaching f_ref + 1e-10 (f(x0) - f_ref), f_ref the lowest f either side found.
4. (Only when asked.) Every solver's CPU time and evaluations per iteration on Rosenbrock at
   n = 100 and 1,000: which methods scale to large n (docs/solvers.md).

Times are CPU times (``time.process_time``), the best of several repetitions with optlab and
the reference alternating: other processes on the machine only ever add time. BLAS runs on one
thread (unless OPENBLAS_NUM_THREADS says otherwise): on a busy 2-core machine a second BLAS
thread spins while it waits, and CPU time counts the spinning (eigh of 100 x 100: 77 ms
against 3 ms, seen here under load).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")  # (before numpy starts its BLAS)

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from optlab import autodiff as ad  # noqa: E402
from optlab.engine.run_set import run_set  # noqa: E402
from optlab.engine.stopping import Stop  # noqa: E402
from optlab.objectives import OBJECTIVES  # noqa: E402
from optlab.solvers import SOLVERS  # noqa: E402
from optlab.solvers.residuals import residual_code  # noqa: E402
from tests.least_squares_problems import first_at_most, minpack_problems, optlab_lm, scipy_lm  # noqa: E402

Row = tuple[str, str, str, float, float | None]  # what, optlab, reference, ratio, limit (None: shown only)


def best_cpu(repeats: int, *fns: Callable[[], object]) -> list[float]:
    """The least CPU time of each function over ``repeats`` alternating rounds."""
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - t)
    return best


def seconds(t: float) -> str:
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


# -- 1. trust_region on extended Rosenbrock --------------------------------------------------------
def part_1(quick: bool) -> list[Row]:
    from scipy.optimize import minimize, rosen, rosen_der, rosen_hess_prod

    rows: list[Row] = []
    for n in (1_000, 10_000):
        x0 = OBJECTIVES["rosenbrock"](dim=n).start()
        stop = Stop(gtol=1e-5)

        def ours(n=n, stop=stop):
            return run_set(OBJECTIVES["rosenbrock"](dim=n), SOLVERS["trust_region"](), None, stop)[0]

        def theirs(x0=x0):
            return minimize(rosen, x0, jac=rosen_der, hessp=rosen_hess_prod, method="trust-krylov",
                            options={"gtol": 1e-5})

        out, ref = ours(), theirs()  # (the first run compiles; both are checked here)
        assert out.status == "converged" and ref.success, (out.message, ref.message)
        t_ours, t_ref = best_cpu(3 if quick else 7, ours, theirs)
        rows.append((f"1. trust_region (steihaug), Rosenbrock n = {n:,}",
                     f"{seconds(t_ours)} ({out.iterations} it, {out.nfev} f, {out.nhev} Hv)",
                     f"{seconds(t_ref)} ({ref.nit} it, {ref.nfev} f, {ref.nhev} Hv)", t_ours / t_ref, 3.0))
    return rows


# -- 2. per-iteration cost of the least-squares methods ----------------------------------------------
def lsq_run(name: str, solver: str, objective=None, *, eager: bool = False, max_iter: int = 50_000):
    """A function making one run of ``solver`` on ``objective`` (None: a new objective of ``name``
    each time, as in a sweep), on the eager engine if asked."""
    def go():
        with ad.eager() if eager else contextlib.nullcontext():
            stop = Stop(gtol=1e-10, max_iter=max_iter)
            return run_set(objective or OBJECTIVES[name](), SOLVERS[solver](), None, stop)[0]
    return go


def part_2(quick: bool) -> list[Row]:
    from scipy.optimize import least_squares

    rows: list[Row] = []
    for name in ("beale", "curve_fit"):
        for solver in ("gauss_newton", "levenberg_marquardt"):
            objective = OBJECTIVES[name]()
            code = residual_code(objective, objective.start())

            def minpack(objective=objective, code=code):
                return least_squares(code.residual, objective.start(), jac=code.jacobian, method="lm",
                                     x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15)

            runs = [lsq_run(name, solver, objective), lsq_run(name, solver, objective, max_iter=1),
                    lsq_run(name, solver, objective, eager=True), lsq_run(name, solver, objective, eager=True,
                                                                          max_iter=1),
                    lsq_run(name, solver), lsq_run(name, solver, eager=True), minpack]
            out, old, ref = runs[0](), runs[2](), minpack()
            assert out.status == old.status == "converged" and out.iterations == old.iterations, (out, old)
            t = best_cpu(5 if quick else 20, *runs)
            # the cost of an iteration: a whole run less a run of one iteration, over the iterations between
            per, per_old = (t[0] - t[1]) / (out.iterations - 1), (t[2] - t[3]) / (old.iterations - 1)
            label = f"2. {solver}, {name}"
            rows.append((f"{label}, per iteration", f"{seconds(per)} ({out.iterations} it)",
                         f"{seconds(per_old)} eager (before)", per / per_old, None))
            rows.append((f"{label}, per run", f"{seconds(t[0])}",
                         f"{seconds(t[6])} MINPACK lmder ({ref.nfev} f, {ref.njev} J)", t[0] / t[6], None))
            rows.append((f"{label}, per run, fresh objective", f"{seconds(t[4])}", f"{seconds(t[5])} eager (before)",
                         t[4] / t[5], None))
    return rows


# -- 3. Levenberg-Marquardt's evaluations against MINPACK's ------------------------------------------
TARGET = 1e-10


def lm_table() -> list[tuple[str, int, int, int, int, int, int]]:
    """Per problem: scipy nfev, njev, optlab nfev, ngev (each to its own stop), then evaluations
    to the fixed target for scipy and optlab."""
    shipped = [name for name, cls in OBJECTIVES.items() if callable(getattr(cls, "residual", None))]
    table = []
    for objective in [OBJECTIVES[name]() for name in shipped] + minpack_problems():
        theirs, _ = scipy_lm(objective)
        ours, _ = optlab_lm(objective)
        _, seen_theirs = scipy_lm(objective, ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=2000)
        _, seen_ours = optlab_lm(objective, Stop(gtol=0.0, max_iter=2000))
        f_ref = min(min(seen_theirs), min(seen_ours))
        limit = f_ref + TARGET * (seen_theirs[0] - f_ref)
        table.append((objective.name, theirs.nfev, theirs.njev, ours.nfev, ours.ngev,
                      first_at_most(seen_theirs, limit) or -1, first_at_most(seen_ours, limit) or -1))
    return table


def part_3(quick: bool) -> list[Row]:
    table = lm_table()
    print("problem                        MINPACK nfev njev | optlab nfev ngev | to target: MINPACK optlab",
          file=sys.stderr)
    for name, *counts in table:
        print(f"{name:30s} {counts[0]:12d} {counts[1]:4d} | {counts[2]:11d} {counts[3]:4d} | "
              f"{counts[4]:18d} {counts[5]:6d}", file=sys.stderr)
    total = np.sum([row[1:] for row in table], axis=0)
    return [
        ("3. LM residual evaluations, own stops", f"{total[2]}", f"{total[0]} MINPACK", total[2] / total[0], 1.5),
        ("3. LM Jacobian evaluations, own stops", f"{total[3]}", f"{total[1]} MINPACK", total[3] / total[1], 1.5),
        ("3. LM residual evaluations to the target", f"{total[5]}", f"{total[4]} MINPACK", total[5] / total[4], 1.5),
    ]


# -- 4. what an iteration costs, solver by solver ------------------------------------------------------
EVERY_SOLVER = [("gd", {"lr": 1e-4}), ("momentum", {"lr": 1e-4}), ("adam", {}), ("cg", {}), ("lbfgs", {}),
                ("bfgs", {}), ("newton_cg", {}), ("trust_region", {}),
                ("newton", {"line_search": "wolfe", "hessian_modification": "eigenvalue"}),
                ("trust_region", {"subproblem": "exact"}), ("gauss_newton", {}), ("levenberg_marquardt", {}),
                ("nelder_mead", {})]


def part_4(quick: bool) -> list[Row]:
    """CPU time per iteration on Rosenbrock from its standard start (the first iterations), and
    the evaluations per iteration; printed as a table, no target."""
    print("solver (options)                                      n   ms/iteration   f, g, Hv or H per iteration",
          file=sys.stderr)
    for n in (100, 1_000):
        for name, options in EVERY_SOLVER:
            if n > 100 and name == "nelder_mead":
                continue  # (n + 1 points, n + 2 evaluations per shrink: see the docs)
            dense = name in ("newton", "gauss_newton", "levenberg_marquardt") or options.get("subproblem") == "exact"
            steps = 3 if dense and n > 100 else 10
            run_set(OBJECTIVES["rosenbrock"](dim=n), SOLVERS[name](**options), None, Stop(max_iter=1))[0]  # compile
            t = time.process_time()
            out = run_set(OBJECTIVES["rosenbrock"](dim=n), SOLVERS[name](**options), None, Stop(max_iter=steps))[0]
            per = (time.process_time() - t) / max(out.iterations, 1)
            k = max(out.iterations, 1)
            shown = f"{name} {options}" if options else name
            print(f"{shown:50s} {n:5d} {per * 1e3:14.2f}   {out.nfev / k:.1f}, {out.ngev / k:.1f}, {out.nhev / k:.1f}",
                  file=sys.stderr)
    return []


PARTS = {"1": part_1, "2": part_2, "3": part_3, "4": part_4}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: a rough check")
    parser.add_argument("--only", default="1,2,3", help="comma-separated part numbers (4: every solver's cost)")
    args = parser.parse_args()
    rows: list[Row] = []
    for key in args.only.split(","):
        print(f"part {key} ...", file=sys.stderr, flush=True)
        rows.extend(PARTS[key.strip()](args.quick))
    header = ("what", "optlab", "reference", "ratio", "target", "pass")
    table = [(what, mine, ref, f"{ratio:.2f}", "-" if limit is None else f"<= {limit:g}",
              "-" if limit is None else "pass" if ratio <= limit else "FAIL") for what, mine, ref, ratio, limit in rows]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table] if table else []:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0 if all(limit is None or ratio <= limit for *_, ratio, limit in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
