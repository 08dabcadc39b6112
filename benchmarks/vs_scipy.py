"""optlab's solvers against the matching ``scipy.optimize.minimize`` methods, on every objective.

Both sides start at the objective's standard start, stop at the same gradient tolerance
(||grad f||_2 <= gtol) and get exact derivatives: scipy is handed optlab's autodiff (or
analytic) value, gradient, Hessian and Hessian-vector product functions. Printed side by
side: iterations, function / gradient / Hessian evaluations and the final gap f - f*.
Iterations of trust-region methods include rejected steps, as scipy counts them, and those
of Nelder-Mead are simplex iterations (scipy's ``nit`` less one: it counts from 1).

A method *solves* a problem when it stops by its convergence test (||grad f|| <= gtol;
Nelder-Mead: its simplex test) at a finite f. The summary line counts the comparisons in
which optlab needs at most 10% more iterations and evaluations than scipy, and the
problems scipy solves that optlab does not. The problems are every objective plus three
quadratics of condition 1e10, 1e12 and 1e16 (the badly scaled ones are objectives:
brown_badly_scaled, powell_badly_scaled).

Statuses: optlab's status is printed beside scipy's success flag, and the table after the
totals lists every pair where they disagree (optlab converged and scipy reports failure, or
the reverse). Evaluations after the last improvement: the function evaluations made after
the last one that found a new best f (on both sides counted the same way, on the calls of f
themselves), summed per method.

Both sides use the same line search (Moré and Thuente's, MINPACK-2 ``dcsrch``) and the same
first trial steps for BFGS, so BFGS takes scipy's path. Known differences that remain by
design: optlab's CG restarts along -g every max(n, 10) iterations (scipy's does not, and
instead extends a line search until the next direction descends sufficiently); where a line
search finds no progress, optlab's CG, BFGS and L-BFGS retry once along -g (scipy's
L-BFGS-B does too; its BFGS and CG stop); optlab's exact trust-region step is the model's
minimiser in the ball, where scipy's trust-exact accepts a step within its tolerances
k_easy = 0.1 and k_hard = 0.2 of it; optlab's Nelder-Mead confirms a converged simplex by a
restart (``nelder_mead(no restart)`` is scipy's method step for step; both sides use Gao and
Han's coefficients for n > 2).

With ``--page PATH`` the whole comparison, CG's choice of c2 and restart rule
(:mod:`vs_scipy_studies`) and L-BFGS on BBOB's f6 with differenced gradients are written as
a Markdown page (docs/scipy-comparison.md): every figure there comes from this run.

    python benchmarks/vs_scipy.py [--gtol 1e-5] [--only bfgs,cg] [--objectives rosenbrock,beale]
    python benchmarks/vs_scipy.py --page docs/scipy-comparison.md
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import minimize as scipy_minimize

from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import OBJECTIVES, Objective
from optlab.solvers import SOLVERS

MAX_ITER = 10_000
SIMPLEX_TOL = 1e-8  # Nelder-Mead's xatol and fatol on both sides
SLACK = 1.10  # "not more than 10% more"


@dataclasses.dataclass(frozen=True)
class Pair:
    label: str
    solver: str
    options: dict
    method: str
    derivatives: tuple[str, ...]  # which of jac, hess, hessp scipy gets


PAIRS = [
    Pair("bfgs", "bfgs", {}, "BFGS", ("jac",)),
    Pair("lbfgs", "lbfgs", {}, "L-BFGS-B", ("jac",)),
    Pair("cg", "cg", {}, "CG", ("jac",)),
    # Newton with a line search needs a modified Hessian where H is indefinite (scipy's
    # Newton-CG truncates its CG there instead): the eigenvalue modification, the closest match
    Pair("newton(wolfe,eigen)", "newton", {"line_search": "wolfe", "hessian_modification": "eigenvalue"},
         "Newton-CG", ("jac", "hess")),
    Pair("newton_cg", "newton_cg", {}, "Newton-CG", ("jac", "hessp")),
    Pair("trust_region(steihaug)", "trust_region", {"subproblem": "steihaug"}, "trust-ncg", ("jac", "hess")),
    Pair("trust_region(exact)", "trust_region", {"subproblem": "exact"}, "trust-exact", ("jac", "hess")),
    Pair("nelder_mead", "nelder_mead", {"xatol": SIMPLEX_TOL, "fatol": SIMPLEX_TOL}, "Nelder-Mead", ()),
    Pair("nelder_mead(no restart)", "nelder_mead", {"xatol": SIMPLEX_TOL, "fatol": SIMPLEX_TOL, "restart": False},
         "Nelder-Mead", ()),
]


@dataclasses.dataclass
class Tally:
    solved: bool
    nit: int
    nfev: int
    ngev: int
    nhev: int
    gap: float | None
    seconds: float
    status: str = ""  # optlab's status; scipy: success where it solved the problem (gtol or its own test)
    wasted: int = 0  # evaluations of f after the last improvement


class Recorded(Objective):
    """``inner`` with every value of f it returns recorded, in order (the same on both sides)."""

    def __init__(self, inner: Objective) -> None:
        self.inner, self.values = inner, []
        self.name, self.dim, self.x0, self.box = inner.name, inner.dim, inner.x0, inner.box
        self.minimizers, self.f_star = inner.minimizers, inner.f_star

    def f(self, x):
        return self.inner.f(x)

    def value(self, x):
        self.values.append(self.inner.value(x))
        return self.values[-1]

    def value_and_grad(self, x):
        f, g = self.inner.value_and_grad(x)
        self.values.append(f)
        return f, g

    def grad(self, x):
        return self.inner.grad(x)

    def hessian(self, x):
        return self.inner.hessian(x)

    def hvp(self, x, v):
        return self.inner.hvp(x, v)

    def after_last_improvement(self) -> int:
        """Evaluations of f after the last one that found a new best value."""
        values = np.asarray(self.values, dtype=float)
        if len(values) == 0:
            return 0
        best = np.minimum.accumulate(np.where(np.isfinite(values), values, np.inf))
        better = np.flatnonzero(np.diff(best) < 0)
        return len(values) - 1 - (int(better[-1]) + 1 if len(better) else 0)


def _gap(objective, f: float) -> float | None:
    return None if objective.f_star is None else f - objective.f_star


def run_optlab(objective, pair: Pair, gtol: float) -> Tally:
    solver = SOLVERS[pair.solver](**pair.options)
    derivative_free = pair.solver == "nelder_mead"
    recorded = Recorded(objective)
    t0 = time.perf_counter()
    out = run_set(recorded, solver, None, Stop(max_iter=MAX_ITER, gtol=0.0 if derivative_free else gtol))[0]
    seconds = time.perf_counter() - t0
    # iterations as scipy counts them: rejected trust-region steps, every simplex iteration
    nit = out.iterations + getattr(out.state, "rejected", 0)
    nit = getattr(out.state, "simplex_iterations", nit)
    solved = out.status == "converged" and math.isfinite(out.state.f)
    return Tally(solved, nit, out.nfev, out.ngev, out.nhev, _gap(objective, out.state.f), seconds, out.status,
                 recorded.after_last_improvement())


def run_scipy(objective, pair: Pair, gtol: float) -> Tally:
    counts = {"hessp": 0}
    recorded = Recorded(objective)

    def hessp(x, p):
        counts["hessp"] += 1
        return objective.hvp(x, p)

    given = {"jac": objective.grad, "hess": objective.hessian, "hessp": hessp}
    kwargs = {name: given[name] for name in pair.derivatives}
    gradient_norm = {"value": math.inf}

    def stop_at_gtol(intermediate_result):
        # uncounted gradient, as optlab's runner checks ||grad f|| after every iteration
        gradient_norm["value"] = float(np.linalg.norm(objective.grad(intermediate_result.x)))
        if gradient_norm["value"] <= gtol:
            raise StopIteration

    if pair.method == "Nelder-Mead":
        options = {"xatol": SIMPLEX_TOL, "fatol": SIMPLEX_TOL, "maxiter": MAX_ITER, "maxfev": 100 * MAX_ITER,
                   "adaptive": objective.dim > 2}  # Gao and Han's coefficients, as optlab's default
        callback = None
    else:
        # scipy's own stopping tests are set so that the gradient test decides, as in optlab
        options = {"maxiter": MAX_ITER, **NATIVE_TOLERANCES[pair.method](gtol)}
        callback = stop_at_gtol
    x0 = objective.start()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = scipy_minimize(recorded.value, x0, method=pair.method, callback=callback, options=options, **kwargs)
    seconds = time.perf_counter() - t0
    if pair.method == "Nelder-Mead":
        solved = res.status == 0
    else:
        final = float(np.linalg.norm(objective.grad(res.x)))
        solved = final <= gtol and math.isfinite(res.fun)
    nhev = counts["hessp"] if "hessp" in pair.derivatives else int(getattr(res, "nhev", 0) or 0)
    nit = int(res.nit) - (pair.method == "Nelder-Mead")  # scipy's Nelder-Mead counts iterations from 1
    return Tally(solved, nit, int(res.nfev), int(getattr(res, "njev", 0) or 0), nhev,
                 _gap(objective, float(res.fun)), seconds, "success" if solved else "failure",
                 recorded.after_last_improvement())


NATIVE_TOLERANCES = {
    "BFGS": lambda gtol: {"gtol": gtol, "norm": 2.0},
    "CG": lambda gtol: {"gtol": gtol, "norm": 2.0},
    "L-BFGS-B": lambda gtol: {"gtol": 0.0, "ftol": 0.0},
    "Newton-CG": lambda gtol: {"xtol": 1e-300},
    "trust-ncg": lambda gtol: {"gtol": gtol},
    "trust-exact": lambda gtol: {"gtol": gtol},
}


def _ratio(ours: int, theirs: int) -> float:
    if theirs == 0:
        return 1.0 if ours == 0 else math.inf
    return ours / theirs


def _fmt_gap(gap: float | None) -> str:
    return "n/a" if gap is None else f"{gap:.1e}"


def problems_of(names: str = "") -> list[tuple[str, Objective]]:
    """Every objective (bar black boxes) and three ill-conditioned quadratics, or those ``names`` lists."""
    specs = [(n, {}) for n in OBJECTIVES if n not in ("black_box", "bbob")]
    specs += [("quadratic", {"dim": 5, "cond": c}) for c in (1e10, 1e12, 1e16)]
    chosen = [(n, o) for n, o in specs if not names or n in names.split(",")]
    return [(n if not o else f"{n}({o['cond']:.0e})", OBJECTIVES[n](**o)) for n, o in chosen]


HEADER = (f"{'objective':<19} {'method':<23} {'scipy method':<12} | {'it':>5} {'nfev':>5} {'ngev':>5} "
          f"{'nhev':>5} {'gap':>8} {'status':>9} | {'it':>5} {'nfev':>5} {'ngev':>5} {'nhev':>5} {'gap':>8} "
          f"{'success':>7} | {'worst':>5}")


def row(label: str, pair: Pair, ours: Tally, theirs: Tally, worst: float) -> str:
    return (f"{label:<19} {pair.label:<23} {pair.method:<12} | {ours.nit:>5} {ours.nfev:>5} {ours.ngev:>5} "
            f"{ours.nhev:>5} {_fmt_gap(ours.gap):>8} {ours.status:>9} | "
            f"{theirs.nit:>5} {theirs.nfev:>5} {theirs.ngev:>5} {theirs.nhev:>5} "
            f"{_fmt_gap(theirs.gap):>8} {'yes' if theirs.solved else 'NO':>7} | {worst:>5.2f}")


@dataclasses.dataclass
class Report:
    """What the comparison found: the rows of the table, per-method totals and the verdicts."""

    rows: list[str] = dataclasses.field(default_factory=list)
    totals: list[str] = dataclasses.field(default_factory=list)
    disagreements: list[str] = dataclasses.field(default_factory=list)
    summary: str = ""


def compare(problems: list[tuple[str, Objective]], pairs: list[Pair], gtol: float, echo: bool = False) -> Report:
    """Every pair on every problem (each row printed as it comes with ``echo``)."""
    report = Report()
    within = total = missed = optlab_only = 0
    worst_overall = (0.0, "")
    sums = {p.label: np.zeros((2, 5), dtype=int) for p in pairs}  # per method: optlab, scipy totals
    for label, objective in problems:
        for pair in pairs:
            ours = run_optlab(objective, pair, gtol)
            theirs = run_scipy(objective, pair, gtol)
            keys = ("nit", "nfev", "ngev", "nhev")
            worst = max(_ratio(getattr(ours, k), getattr(theirs, k)) for k in keys)
            sums[pair.label] += [[getattr(ours, k) for k in (*keys, "wasted")],
                                 [getattr(theirs, k) for k in (*keys, "wasted")]]
            if ours.solved != theirs.solved:
                report.disagreements.append(f"{label:<19} {pair.label:<23} optlab {ours.status:<9} "
                                            f"scipy {theirs.status}")
            total += 1
            within += worst <= SLACK
            missed += theirs.solved and not ours.solved
            optlab_only += ours.solved and not theirs.solved
            if worst > worst_overall[0]:
                worst_overall = (worst, f"{pair.label} on {label}")
            report.rows.append(row(label, pair, ours, theirs, worst))
            if echo:
                print(report.rows[-1], flush=True)
    report.totals = [f"{label:<23} {' '.join(f'{v:>6}' for v in o)} | {' '.join(f'{v:>6}' for v in t)}"
                     for label, (o, t) in sums.items()]
    wasted = [sum(int(o[4]) for o, _ in sums.values()), sum(int(t[4]) for _, t in sums.values())]
    report.totals.append(f"evaluations after the last improvement, all methods: optlab {wasted[0]}, scipy "
                         f"{wasted[1]} (ratio {wasted[0] / max(wasted[1], 1):.2f})")
    report.summary = (f"{total} comparisons on {len(problems)} problems; optlab within {SLACK - 1:.0%} of scipy on "
                      f"iterations and every evaluation count in {within}/{total}; problems scipy solves and "
                      f"optlab does not: {missed}; optlab solves and scipy does not: {optlab_only}; worst ratio "
                      f"{worst_overall[0]:.2f} ({worst_overall[1]})")
    return report


TOTALS_HEAD = ("totals over the problems (it nfev ngev nhev, then evaluations of f after the last improvement), "
               "optlab | scipy:")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gtol", type=float, default=1e-5)
    parser.add_argument("--only", default="", help="comma-separated pair labels or solver names")
    parser.add_argument("--objectives", default="", help="comma-separated objective names")
    parser.add_argument("--page", default="", help="write every study as this Markdown page (the docs' page)")
    args = parser.parse_args(argv)
    if args.page and (args.only or args.objectives):
        parser.error("--page writes the whole comparison: leave out --only and --objectives")
    wanted = set(filter(None, args.only.split(",")))
    pairs = [p for p in PAIRS if not wanted or p.label in wanted or p.solver in wanted]
    problems = problems_of(args.objectives)
    print(f"gtol = {args.gtol:g} (||grad f||_2), max_iter = {MAX_ITER}; left: optlab, right: scipy; "
          "worst = largest optlab/scipy ratio over it, nfev, ngev, nhev")
    print(HEADER + "\n" + "-" * len(HEADER))
    report = compare(problems, pairs, args.gtol, echo=True)
    print("-" * len(HEADER) + "\n" + TOTALS_HEAD)
    print("\n".join("  " + line for line in report.totals))
    print(f"pairs where optlab's status and scipy's success flag disagree ({len(report.disagreements)}):")
    print("\n".join("  " + line for line in report.disagreements) or "  none")
    print(f"summary: {report.summary}")
    if args.page:
        from scipy_page import write_page

        write_page(Path(args.page), report, problems, args.gtol, HEADER, TOTALS_HEAD)
        print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
