"""Fixed targets counted as COCO counts them: a run ends at the first evaluation whose f reaches
``stop.target``, inside line searches, trust-region trials and finite differences alike, and
``nfev`` is the index of that evaluation (the calls a wrapped black box received)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import optlab
from optlab.engine.stopping import Stop, message
from optlab.errors import EndRun
from optlab.objectives import OBJECTIVES, BlackBox
from optlab.solvers import SOLVERS
from optlab.solvers.problem import Problem

LIMIT = 1e-6  # f* = 0: the target is f <= 1e-6


class Calls:
    """A function that keeps every point it is called at and every value it returns, in order."""

    def __init__(self, fn):
        self.fn, self.points, self.values = fn, [], []

    def __call__(self, x):
        value = self.fn(x)
        self.points.append(np.array(x, dtype=float))
        self.values.append(float(value))
        return value

    def first_at_most(self, limit: float) -> int | None:
        """The index (from 1, as nfev counts) of the first call whose value is <= limit."""
        return next((i + 1 for i, v in enumerate(self.values) if v <= limit), None)


def bowl(x):
    return float((x[0] - 1.0) ** 2 + 3.0 * x[1] ** 2)


def rosenbrock(x):
    return float(100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2)


def values_of_one_call(name, differences, x):
    """Every value of f one call of ``name`` makes, unwatched."""
    calls = Calls(bowl)
    box = BlackBox(calls, dim=2, f_star=0.0, differences=differences)
    getattr(Problem(box), name)(*x)
    return calls.values


@pytest.mark.parametrize("differences", ["central", "forward"])
@pytest.mark.parametrize("name", ["value_and_grad", "grad", "hvp", "hessian"])
def test_a_call_ends_at_the_first_of_its_finite_differences_reaching_the_limit(name, differences):
    start = [1.5, 0.1] if differences == "central" else [0.5, -0.1]  # f falls at a difference point inside
    x = (np.array(start),) + ((np.array([0.6, -0.8]),) if name == "hvp" else ())
    values = values_of_one_call(name, differences, x)
    # a value below every one before it, not the call's first or last: the first to reach a limit set there
    hit = next(j for j in range(1, len(values) - 1) if values[j] < min(values[:j]))
    calls = Calls(bowl)
    box = BlackBox(calls, dim=2, f_star=0.0, differences=differences)
    problem = Problem(box, limit=values[hit])
    with pytest.raises(EndRun) as end:
        getattr(problem, name)(*x)
    assert end.value.status == "target"
    assert problem.nfev == hit + 1 == len(calls.values)  # counted up to the hit; nothing evaluated after it
    assert (problem.ngev, problem.nhev) == (0, 0)
    assert end.value.f == values[hit] and np.array_equal(end.value.x, calls.points[hit])


def test_a_black_box_with_its_own_gradient_ends_before_the_gradient_is_evaluated():
    gradients = []

    def gradient(x):
        gradients.append(x)
        return np.array([2.0 * (x[0] - 1.0), 6.0 * x[1]])

    problem = Problem(BlackBox(bowl, dim=2, f_star=0.0, gradient=gradient), limit=0.5)
    problem.value_and_grad(np.array([0.0, 0.0]))  # f = 1: on
    with pytest.raises(EndRun):
        problem.value_and_grad(np.array([0.5, 0.0]))  # f = 0.25
    assert (problem.nfev, problem.ngev, len(gradients)) == (2, 1, 1)


def test_exact_derivatives_end_the_run_after_the_call_that_reaches_the_limit():
    quadratic = OBJECTIVES["quadratic"]()  # minimiser (1, 1), f* = 0
    problem = Problem(quadratic, limit=1e-3)
    problem.value_and_grad(quadratic.x0)
    with pytest.raises(EndRun) as end:
        problem.value_and_grad(np.full(2, 1.0 + 1e-4))
    assert (problem.nfev, problem.ngev) == (2, 2) and end.value.f <= 1e-3
    with pytest.raises(EndRun):
        Problem(quadratic, limit=1e-3).value(np.ones(2))


def test_without_a_target_nothing_ends_and_every_call_is_counted():
    calls = Calls(bowl)
    problem = Problem(BlackBox(calls, dim=2, f_star=0.0))
    problem.value_and_grad(np.array([1.0, 0.0]))  # f = 0, the minimum
    assert problem.nfev == len(calls.values) == 5 and problem.limit == -math.inf


def test_the_message_speaks_as_the_target_rule_in_evaluations():
    problem = Problem(BlackBox(bowl, dim=2, f_star=79.48), limit=Stop(target=1e-8).limit(79.48))
    with pytest.raises(EndRun) as end:
        problem.value(np.array([1.0, 0.0]))
    _, rule_text = message("target", 7, None, Stop(target=1e-8), 0.0, problem.limit, nfev=1)
    assert f"{end.value} (at iteration 7)" == rule_text


SOLVER_CASES = [
    ("bfgs", {}), ("lbfgs", {}), ("cg", {}), ("bfgs", {"line_search": "armijo"}),
    ("newton", {"line_search": "wolfe", "hessian_modification": "eigenvalue"}), ("newton_cg", {}),
    ("trust_region", {"subproblem": "steihaug"}), ("trust_region", {"subproblem": "exact"}), ("nelder_mead", {}),
]


def make_solver(name, options):
    if name.startswith("scipy:"):
        from optlab.solvers.scipy_method import ScipyMethod

        return ScipyMethod(name.split(":")[1])
    return SOLVERS[name](**options)


@pytest.mark.parametrize("differences", ["central", "forward"])
@pytest.mark.parametrize("name, options", SOLVER_CASES + [("scipy:BFGS", {}), ("scipy:trust-exact", {})])
def test_every_solver_stops_at_the_first_evaluation_reaching_the_target(name, options, differences):
    """The solver's own loop on a counted black box: line-search trials, trust-region trials,
    simplex points and finite differences each end the run as soon as one reaches the target."""
    calls = Calls(rosenbrock)
    box = BlackBox(calls, dim=2, x0=[-1.2, 1.0], f_star=0.0, differences=differences)
    problem = Problem(box, max_fev=40_000, limit=LIMIT)
    solver = make_solver(name, options)
    state = solver.init(problem, box.start())
    with pytest.raises(EndRun) as end:
        for _ in range(10_000):
            state = solver.update(problem, state)
    assert end.value.status == "target", str(end.value)
    assert problem.nfev == calls.first_at_most(LIMIT) == len(calls.values)
    assert end.value.f == calls.values[-1] <= LIMIT and np.array_equal(end.value.x, calls.points[-1])


def test_a_hit_inside_an_iteration_ends_the_run_sooner_than_a_check_after_it():
    """Central differences in 10-D: checked after the iteration, the run would also count the 20
    values of the gradient at the point that reached the target."""

    def nfev(limit: float) -> int:
        box = BlackBox(lambda x: float(np.sum((x - 1.0) ** 2)), dim=10, f_star=0.0)
        problem = Problem(box, limit=limit)
        solver = SOLVERS["bfgs"]()
        state = solver.init(problem, box.start())
        try:
            while state.f > LIMIT:
                state = solver.update(problem, state)
        except EndRun:
            pass
        return problem.nfev

    assert nfev(LIMIT) <= nfev(-math.inf) - 2 * 10


@pytest.mark.parametrize("name, options", [("bfgs", {}), ("lbfgs", {}), ("trust_region", {}), ("newton_cg", {})])
def test_a_run_with_a_target_ends_with_nfev_the_index_of_the_first_hit(name, options):
    calls = Calls(rosenbrock)
    box = BlackBox(calls, dim=2, x0=[-1.2, 1.0], f_star=0.0)
    result = optlab.minimize(box, name, solver_options=options, target=LIMIT, max_fev=40_000)
    assert result.status == "target"
    assert result.nfev == calls.first_at_most(LIMIT) == len(calls.values)


@pytest.mark.parametrize("name", ["bfgs", "lbfgs"])
def test_the_evaluation_that_reached_the_target_is_the_last_row(name):
    calls = Calls(rosenbrock)
    result = optlab.minimize(BlackBox(calls, dim=2, x0=[-1.2, 1.0], f_star=0.0), name, target=LIMIT,
                             max_fev=40_000)
    last = result.iterates.iloc[-1]
    assert result.f == last.f == calls.values[-1] <= LIMIT and last.nfev == result.nfev == len(calls.values)


def test_a_bbob_run_counts_cocos_evaluations_up_to_the_first_hit():
    pytest.importorskip("cocoex", reason="objective=bbob needs COCO's cocoex (the bbob extra)")
    from optlab.objectives.bbob import BBOB

    box = BBOB(function=8, instance=1, dim=5)
    calls = Calls(box.call)
    box.call = calls
    result = optlab.minimize(box, "bfgs", max_fev=5_000, target=1e-8)
    assert result.status == "target"
    assert result.nfev == calls.first_at_most(box.f_star + 1e-8) == box.problem.evaluations
