"""docs/scipy-comparison.md as ``benchmarks/vs_scipy.py --page`` writes it: the comparison's
tables and the two studies of :mod:`vs_scipy_studies`, each figure from the run itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mgh_problems
import numpy as np
import scipy
import vs_scipy_studies

import optlab
from optlab.objectives import OBJECTIVES, Objective

COMMAND = "python benchmarks/vs_scipy.py --page docs/scipy-comparison.md"


def versions() -> str:
    """The versions the figures depend on (the page's test regenerates it only under the same)."""
    try:
        import cocoex

        coco = f", cocoex {cocoex.__version__}"
    except ImportError:
        coco = ""
    return f"numpy {np.__version__}, scipy {scipy.__version__}{coco}"


def text_block(lines: list[str]) -> str:
    return "```text\n" + "\n".join(lines) + "\n```"


def larger_problems() -> list[tuple[str, Objective]]:
    """Where conjugacy matters: more dimensions, or a spread of curvatures."""
    return [("quadratic(5, 999)", OBJECTIVES["quadratic"](dim=5, cond=999.0)),
            ("quadratic(20, 1e4)", OBJECTIVES["quadratic"](dim=20, cond=1e4)),
            ("extended_rosenbrock(100)", mgh_problems.ExtendedRosenbrock(100)),
            ("trigonometric(50)", mgh_problems.Trigonometric(50))]


def cg_section(problems: list[tuple[str, Objective]], gtol: float) -> str:
    held_out = [(cls.name, cls()) for cls in mgh_problems.PROBLEMS]
    larger = larger_problems()
    table = vs_scipy_studies.cg_choices({"the problems below": problems, "Moré-Garbow-Hillstrom": held_out,
                                         "larger": larger}, gtol)
    return f"""## CG: the line-search constant and the restart rule

Function evaluations to ||grad f|| <= {gtol:g}, summed over the {len(problems)} problems of the
comparison, over {len(held_out)} classic problems of Moré, Garbow and Hillstrom that no method was
tuned on (`benchmarks/mgh_problems.py`, Brown and Dennis's function among them) and over
{len(larger)} larger ones ({", ".join(label for label, _ in larger)}), for scipy's CG and for
optlab's with each `c2` (0.05 optlab's default, 0.1 Nocedal and Wright's, 0.4 scipy's) and
restart rule (`solver.restart`: `periodic` every max(n, 10) iterations, `every_n`, `powell` by
Powell's test, `never` as scipy). `*` marks the defaults; *solved* counts the runs that reached
||grad f|| <= {gtol:g}; *not* names the problems scipy's CG solves and that choice does not.

{text_block(table)}
"""


def f6_section() -> str:
    try:
        table, at_most, total = vs_scipy_studies.bbob_f6()
    except ImportError:
        return "## L-BFGS on BBOB's f6\n\nNot run: COCO's cocoex is not installed (the bbob extra).\n"
    return f"""## L-BFGS on BBOB's f6 with differenced gradients

COCO's f6 (attractive sector: a gradient whose slope jumps a hundredfold across hyperplanes
through the optimum, where central differences straddling the jump are wrong) with central
differences, a budget of 2000 n evaluations and the target f - f* <= 1e-8: optlab's `lbfgs`
against scipy's L-BFGS-B through `solver=scipy`, so both get the same differenced gradients,
counted alike. `lbfgs` ends at or below scipy's gap (or reaches the target) in {at_most} of
{total} runs. Where the search along d finds no progress (d spoilt by a gradient differenced
across the jump), `lbfgs` drops its pairs and tries once more along -g, as L-BFGS-B refreshes its
memory; where that fails too, the run ends `stalled`.

{text_block(table)}
"""


def nocedal_wright(gtol: float) -> str:
    """Iterations on Rosenbrock from (-1.2, 1), as Nocedal and Wright report them (Sec. 3.3 and 6.1)."""
    runs = {name: optlab.minimize("rosenbrock", solver, [-1.2, 1.0], solver_options=options, gtol=gtol,
                                  max_iter=100_000)
            for name, solver, options in (("newton", "newton", {"line_search": "armijo"}), ("bfgs", "bfgs", {}),
                                          ("gd", "gd", {"line_search": "armijo", "lr": 1.0}))}
    return (f"On Rosenbrock from (-1.2, 1) to ||grad f|| <= {gtol:g}, Newton with Armijo backtracking takes "
            f"{runs['newton'].iterations} iterations and BFGS {runs['bfgs'].iterations} (Nocedal and Wright report 21 "
            f"and 34), steepest descent with backtracking (`lr=1`) {runs['gd'].iterations:,}.")


def page(report: Any, problems: list[tuple[str, Objective]], gtol: float, header: str, totals_head: str) -> str:
    disagreements = report.disagreements or ["none"]
    return f"""# optlab and scipy

How optlab's solvers compare with `scipy.optimize.minimize` on the same problems. Running scipy's
methods inside optlab (`solver=scipy`): [user guide](user-guide.md#scipys-methods). Back to the
[index](index.md).

Written by `{COMMAND}` ({versions()}): every figure on this page comes from that run, and
`tests/acceptance/test_scipy_comparison_page.py` checks the page is what the benchmark writes.
{nocedal_wright(gtol)}

optlab's solvers and the matching `scipy.optimize.minimize` methods start at each objective's standard
start, stop at ||grad f||_2 <= {gtol:g} and get the same exact derivatives (optlab's autodiff or
analytic ones); Nelder-Mead stops by its simplex test (xatol = fatol = 1e-8). A method *solves*
a problem when its own convergence test holds at a finite f. Iterations of trust-region methods
count rejected steps, as scipy does; those of Nelder-Mead are simplex iterations. The problems
are every objective of optlab plus three 5-D quadratics of condition 1e10, 1e12 and 1e16.

## Summary

{report.summary}.

Both sides share the line search (Moré and Thuente's) and BFGS's first trial steps, so BFGS takes
scipy's path; `nelder_mead(no restart)` takes scipy's path step for step, and `nelder_mead`
(the default) pays for the restart that confirms a converged simplex. Where a line search finds
no progress, optlab's CG, BFGS and L-BFGS retry once along -g (scipy's L-BFGS-B does too; its
BFGS and CG stop).

## Totals per method

{text_block([totals_head] + report.totals)}

## Where optlab's status and scipy's success disagree

{text_block(disagreements)}

{cg_section(problems, gtol)}
{f6_section()}
## Every pair

Left: optlab, right: scipy; *worst* is the largest optlab/scipy ratio over iterations and the
function, gradient and Hessian evaluations.

{text_block([header, "-" * len(header)] + report.rows)}
"""


def write_page(path: Path, report: Any, problems: list[tuple[str, Objective]], gtol: float, header: str,
               totals_head: str) -> None:
    path.write_text(page(report, problems, gtol, header, totals_head))
