"""Two studies that ``benchmarks/vs_scipy.py`` writes into docs/scipy-comparison.md.

- :func:`cg_choices`: CG's line-search constant c2 and restart rule, by the total function
  evaluations to ||grad f|| <= gtol over the comparison's problems and over classic problems
  of Moré, Garbow and Hillstrom (``mgh_problems``), with scipy's CG alongside.
- :func:`bbob_f6`: L-BFGS on COCO's f6 (attractive sector) with central differences, against
  scipy's L-BFGS-B given the same differenced gradients through optlab's plugin.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from scipy.optimize import minimize as scipy_minimize

from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import Objective
from optlab.solvers import SOLVERS
from optlab.solvers.cg import RESTARTS

C2S = (0.05, 0.1, 0.2, 0.4)  # optlab's default, Nocedal and Wright's, between, scipy's
MAX_ITER = 10_000


@dataclasses.dataclass
class Totals:
    """Function evaluations summed over a set of problems, and which problems were solved."""

    nfev: int = 0
    solved: list[str] = dataclasses.field(default_factory=list)

    def add(self, name: str, nfev: int, solved: bool) -> None:
        self.nfev += nfev
        if solved:
            self.solved.append(name)


def scipy_cg(objective: Objective, gtol: float) -> tuple[int, bool]:
    """scipy's CG with exact gradients to ||grad f||_2 <= gtol: (nfev, solved)."""

    def stop_at_gtol(intermediate_result):
        if np.linalg.norm(objective.grad(intermediate_result.x)) <= gtol:
            raise StopIteration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = scipy_minimize(objective.value, objective.start(), jac=objective.grad, method="CG",
                             callback=stop_at_gtol, options={"gtol": gtol, "norm": 2.0, "maxiter": MAX_ITER})
    return int(res.nfev), bool(np.linalg.norm(objective.grad(res.x)) <= gtol and math.isfinite(res.fun))


def optlab_cg(objective: Objective, gtol: float, **options: object) -> tuple[int, bool]:
    out = run_set(objective, SOLVERS["cg"](**options), None, Stop(max_iter=MAX_ITER, gtol=gtol))[0]
    return out.nfev, out.status == "converged"


def cg_choices(problem_sets: dict[str, list[tuple[str, Objective]]], gtol: float) -> list[str]:
    """The table: scipy's CG, then optlab's CG for every c2 of :data:`C2S` and restart rule, per set
    of problems and over all; then the choice that solves the most problems, with the fewest
    evaluations among those."""
    default = SOLVERS["cg"]()
    scipy_totals = {name: Totals() for name in problem_sets}
    for name, problems in problem_sets.items():
        for label, objective in problems:
            scipy_totals[name].add(label, *scipy_cg(objective, gtol))
    choices = {}
    for c2 in C2S:
        for restart in RESTARTS:
            choices[c2, restart] = {name: Totals() for name in problem_sets}
            for name, problems in problem_sets.items():
                for label, objective in problems:
                    choices[c2, restart][name].add(label, *optlab_cg(objective, gtol, c2=c2, restart=restart))
    sizes = {name: len(problems) for name, problems in problem_sets.items()}
    reference = sum(t.nfev for t in scipy_totals.values())

    def cells(totals: dict[str, Totals]) -> tuple[str, list[str]]:
        missed = [p for name in totals for p in sorted(set(scipy_totals[name].solved) - set(totals[name].solved))]
        nfev = [totals[name].nfev for name in totals] + [sum(t.nfev for t in totals.values())]
        solved = [len(totals[name].solved) for name in totals] + [sum(len(t.solved) for t in totals.values())]
        references = [t.nfev for t in scipy_totals.values()] + [reference]
        counts = [*sizes.values(), sum(sizes.values())]
        shown = [f"{n:>6} ({n / r:.2f}x) {k:>2}/{size:<2}".ljust(22)
                 for n, r, k, size in zip(nfev, references, solved, counts)]
        return " | ".join(shown), missed

    head = f"{'c2':>5} {'restart':<9} | " + " | ".join(f"{name:<22}" for name in [*problem_sets, "all"])
    lines = [head, f"{'':>5} {'':<9} | " + " | ".join(f"{'nfev (x scipy) solved':<22}" for _ in range(len(sizes) + 1)),
             "-" * len(head)]
    lines.append(f"{'scipy':>5} {'CG':<9} | " + cells(scipy_totals)[0])
    ranked = []
    for (c2, restart), totals in choices.items():
        shown, missed = cells(totals)
        mark = " *" if (c2, restart) == (default.c2, default.restart) else "  "
        lines.append(f"{c2:>5g} {restart:<9} | {shown}{mark} " + (f"not {', '.join(missed)}" if missed else ""))
        ranked.append((-sum(len(t.solved) for t in totals.values()), sum(t.nfev for t in totals.values()), c2, restart))
    unsolved, nfev, c2, restart = min(ranked)
    lines = [line.rstrip() for line in lines]
    lines.append(f"most problems solved ({-unsolved}), with the fewest evaluations among those ({nfev}): c2 = {c2:g}, "
                 f"restart = {restart}")
    return lines


@dataclasses.dataclass(frozen=True)
class F6Run:
    dim: int
    instance: int
    status: str
    gap: float
    nfev: int


def bbob_f6(dims: tuple[int, ...] = (2, 3, 5), instances: tuple[int, ...] = (1, 2, 3, 4, 5),
            target: float = 1e-8) -> tuple[list[str], int, int]:
    """The f6 table, the number of runs where L-BFGS ends at most at scipy's gap, and the runs."""
    from optlab.objectives.bbob import BBOB
    from optlab.solvers.scipy_method import ScipyMethod

    head = (f"{'dim':>3} {'instance':>8} | {'lbfgs':<9} {'f - f*':>9} {'nfev':>6} | {'L-BFGS-B':<9} {'f - f*':>9} "
            f"{'nfev':>6}")
    lines, at_most, total = [head, "-" * len(head)], 0, 0
    for dim in dims:
        for instance in instances:
            ends = []
            for solver in (SOLVERS["lbfgs"](), ScipyMethod("L-BFGS-B", options={"maxfun": 10**6, "maxiter": 10**5})):
                objective = BBOB(function=6, instance=instance, dim=dim)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = run_set(objective, solver, None, Stop(gtol=0.0, max_fev=2000 * dim, target=target))[0]
                ends.append(F6Run(dim, instance, out.status, out.state.f - objective.f_star, out.nfev))
            ours, theirs = ends
            total += 1
            at_most += ours.gap <= max(theirs.gap, target)
            lines.append(f"{dim:>3} {instance:>8} | {ours.status:<9} {ours.gap:>9.2e} {ours.nfev:>6} | "
                         f"{theirs.status:<9} {theirs.gap:>9.2e} {theirs.nfev:>6}")
    return lines, at_most, total
