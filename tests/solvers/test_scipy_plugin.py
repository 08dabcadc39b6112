"""solver=scipy: scipy's methods on scipy's own path with optlab's counts, statuses, stopping rules,
Ctrl-C, and a sweep beside optlab's methods."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scipy", reason="solver=scipy needs scipy (the scipy extra)")

import scipy.optimize  # noqa: E402

import optlab  # noqa: E402
from optlab.engine.stopping import Stop  # noqa: E402
from optlab.errors import ConfigError  # noqa: E402
from optlab.objectives import BlackBox, Himmelblau, Rosenbrock  # noqa: E402
from optlab.objectives.derivatives import derivatives_of  # noqa: E402
from optlab.solvers.scipy_method import GRADIENT_NEXT, ScipyMethod, status_of  # noqa: E402

from ..conftest import REPO, interrupting_clock, multi_start, run_cli, to_dir  # noqa: E402
from ..faults.test_interrupts import start, wait_for  # noqa: E402

START = np.array([-1.2, 1.0])
METHODS = ["BFGS", "CG", "L-BFGS-B", "Newton-CG", "trust-ncg", "trust-exact", "trust-krylov", "dogleg", "Nelder-Mead",
           "SLSQP", "Powell", "TNC"]


def direct(objective, method: str, x0: np.ndarray, options: dict | None = None):
    """scipy.optimize.minimize called directly on the same derivatives, with counters: the iterates at
    its callback (x changed) and the counts of calls then."""
    d = derivatives_of(objective)
    calls = {"f": 0, "g": 0, "h": 0}

    def fun(x):
        calls["f"] += 1
        return d.value(x)

    def jac(x):
        calls["g"] += 1
        return d.grad(x)

    def hessp(x, p):
        calls["h"] += 1
        return d.hvp(x, p)

    def hess(x):
        calls["h"] += 1
        return d.hessian(x)

    kwargs: dict = {}
    key = method.lower()
    if key not in ("nelder-mead", "powell"):
        kwargs["jac"] = jac
        if key in ("newton-cg", "trust-ncg", "trust-krylov"):
            kwargs["hessp"] = hessp
        elif key in ("trust-exact", "dogleg"):
            kwargs["hess"] = hess
    rows, last = [], [x0]

    def callback(intermediate_result):
        x = np.array(getattr(intermediate_result, "x", intermediate_result), dtype=float)
        if not np.array_equal(x, last[0]):  # optlab counts accepted steps only
            rows.append((x, calls["f"], calls["g"], calls["h"]))
            last[0] = x

    result = scipy.optimize.minimize(fun, x0.copy(), method=method, callback=callback, options=options or {},
                                     **kwargs)
    return result, rows, calls


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("objective", [Rosenbrock, Himmelblau])
def test_iterates_and_counts_are_those_of_a_direct_scipy_run(method, objective):
    result, rows, calls = direct(objective(), method, START)
    run = optlab.minimize(objective(), ScipyMethod(method), x0=START, gtol=0)
    its = run.iterates
    assert len(its) == len(rows) + 1 == run.iterations + 1
    if not result.success:  # dogleg on Himmelblau: the Hessian at the start is indefinite
        assert run.status == status_of(result) == "failed" and result.message in run.message
        return
    assert len(rows) >= 3
    np.testing.assert_array_equal(its[["x_0", "x_1"]].to_numpy()[1:], np.array([r[0] for r in rows]))
    assert its.iter.tolist() == list(range(len(its)))
    counts = its[["nfev", "ngev", "nhev"]].to_numpy()[1:]
    expected = np.array([r[1:] for r in rows])
    if method in ("trust-ncg", "trust-exact", "dogleg"):
        assert method.lower() in GRADIENT_NEXT
        # these evaluate the gradient at a new iterate right after their callback: optlab counts it at
        # the iterate, as its own methods do (the totals are the same)
        expected[:, 1] += 1
    np.testing.assert_array_equal(counts, expected)
    assert (run.nfev, run.ngev, run.nhev) == (calls["f"], calls["g"], calls["h"])
    assert its.f.iloc[-1] == pytest.approx(result.fun, rel=0, abs=0)
    assert run.status == "converged" and "met scipy's own test" in run.message and method in run.message
    gradient = method not in ("Nelder-Mead", "Powell", "SLSQP")
    assert np.isfinite(its.grad_norm.to_numpy()).all() == gradient


def test_black_box_counts_every_call_the_function_receives():
    calls = []

    def f(x):
        calls.append(x.copy())
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

    run = optlab.minimize(BlackBox(f, dim=3, x0=[-1.2, 1.0, 1.0]), ScipyMethod("BFGS"), gtol=0)
    assert run.status == "converged" and run.nfev == len(calls) and run.ngev == 0
    # each gradient is 2n central differences, counted as function evaluations at its iterate
    assert run.iterates.nfev.iloc[0] == 1 + 2 * 3


@pytest.mark.parametrize(("method", "options", "status", "says"), [
    ("BFGS", {"maxiter": 5}, "max_iter", "Maximum number of iterations has been exceeded."),
    ("Nelder-Mead", {"maxfev": 30}, "max_fev", "Maximum number of function evaluations has been exceeded."),
    ("CG", {"gtol": 0}, "stalled", "precision loss"),
    ("L-BFGS-B", {"maxiter": 4}, "max_iter", "ITERATIONS REACHED LIMIT"),
])
def test_scipy_endings_map_to_statuses(method, options, status, says):
    run = optlab.minimize(Rosenbrock(), ScipyMethod(method, options=options), x0=START, gtol=0)
    assert run.status == status and f"scipy's {method}: " in run.message and says in run.message
    assert len(run.iterates) == run.iterations + 1


@pytest.mark.parametrize(("message", "success", "status"), [
    ("Optimization terminated successfully.", True, "converged"),
    ("Maximum number of iterations has been exceeded.", False, "max_iter"),
    ("STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT", False, "max_fev"),
    ("Return from COBYLA because the objective function has been evaluated MAXFUN times.", False, "max_fev"),
    ("Desired error not necessarily achieved due to precision loss.", False, "stalled"),
    ("ABNORMAL: ", False, "stalled"),
    ("A bad approximation caused failure to predict improvement.", False, "stalled"),
    ("A linalg error occurred, such as a non-psd Hessian.", False, "failed"),
    ("NaN result encountered.", False, "failed"),
])
def test_status_of_scipy_messages(message, success, status):
    result = scipy.optimize.OptimizeResult(success=success, message=message)
    assert status_of(result) == status
    ending = ScipyMethod("BFGS").ending(result)
    expected = {"stalled": "NoProgress", "failed": "SolverFailure"}.get(status, "EndRun")
    assert type(ending).__name__ == expected and message.strip() in str(ending)


@pytest.mark.parametrize(("stop", "status"), [
    ({"max_iter": 7}, "max_iter"), ({"max_fev": 12}, "max_fev"), ({"target": 1e-3}, "target"),
    ({"gtol": 1e-2}, "converged"), ({"xtol": 1e-3}, "stalled"),
])
def test_optlab_stopping_rules_end_scipy_early(stop, status):
    full = optlab.minimize(Rosenbrock(), ScipyMethod("BFGS", options={"gtol": 1e-14}), x0=START, gtol=0)
    run = optlab.minimize(Rosenbrock(), ScipyMethod("BFGS", options={"gtol": 1e-14}), x0=START,
                          **{"gtol": 0, **stop})
    assert run.status == status and run.iterations < full.iterations
    cols = ["iter", "f", "x_0", "x_1", "nfev", "ngev", "nhev"]
    # (a run ended by its target: its last row is the evaluation that reached it, inside an iteration)
    shared = len(run.iterates) - (status == "target")
    pd.testing.assert_frame_equal(run.iterates[cols].iloc[:shared], full.iterates[cols].iloc[:shared])
    if status == "max_fev":  # no call beyond the budget is made
        assert run.nfev <= 12 and run.iterates.nfev.iloc[-1] <= 12


def test_max_seconds_ends_a_slow_scipy_run():
    def slow(x):
        time.sleep(0.002)
        return float(np.sum((x - 1.0) ** 2) + np.sum(np.cos(3 * x)))

    run = optlab.minimize(BlackBox(slow, dim=10), ScipyMethod("Nelder-Mead", options={"maxfev": 10 ** 6}),
                          max_seconds=0.3)
    assert run.status == "max_seconds" and 0.3 <= run.wall_time_s < 2.0
    assert len(run.iterates) == run.iterations + 1 > 3


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("optlab-scipy")]


def test_ctrl_c_ends_the_run_as_interrupted_with_every_iterate(tmp_path):
    calls = []

    def slow(x):
        calls.append(1)
        time.sleep(0.003)
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        method = ScipyMethod("Nelder-Mead", options={"maxfev": 10 ** 6})
        record = to_dir(tmp_path / "run", BlackBox(slow, dim=10), method, stop=Stop(gtol=0))
    finally:
        timer.cancel()
    assert record["status"] == "interrupted" and "interrupted by the user" in record["message"]
    runs, its = optlab.load(tmp_path / "run")
    assert its.iter.tolist() == list(range(record["iterations"] + 1)) and record["iterations"] > 5
    assert (np.diff(its.nfev) > 0).all()
    wait_for(lambda: not workers(), timeout=10)  # scipy was unwound
    assert len(calls) == record["nfev"]  # nothing was evaluated after the counts were recorded


def test_workers_end_with_their_runs():
    for _ in range(3):
        optlab.minimize(Rosenbrock(), ScipyMethod("BFGS"), x0=START, max_iter=3)
    gc.collect()
    wait_for(lambda: not workers(), timeout=10)


def test_options_are_checked_and_recorded():
    with pytest.raises(ConfigError, match=r"^solver.method='BFGSX' is unknown; allowed: one of scipy's methods"):
        ScipyMethod("BFGSX")
    with pytest.raises(ConfigError, match=r"^solver.options.xatol is not an option of scipy's BFGS; allowed: .*gtol"):
        ScipyMethod("BFGS", options={"xatol": 1e-3})
    with pytest.raises(ConfigError, match=r"^solver.hessian='exact' is unknown; allowed: auto, hess, hessp, none"):
        ScipyMethod("trust-ncg", hessian="exact")
    with pytest.raises(ConfigError, match=r"^solver.hessian=hessp does not apply to scipy's trust-exact; allowed: "
                                          r"auto, none \(hessian=hessp for newton-cg, trust-ncg"):
        ScipyMethod("trust-exact", hessian="hessp")
    with pytest.raises(ConfigError, match=r"^solver.tol=-1 is out of range"):
        ScipyMethod("BFGS", tol=-1)
    hess = optlab.minimize(Rosenbrock(), ScipyMethod("Newton-CG", hessian="hess"), x0=START)
    assert hess.status == "converged" and hess.nhev == hess.iterations  # one Hessian per step, no products
    solver = ScipyMethod("Nelder-Mead", options={"maxfev": 50, "xatol": 1e-6})
    params = solver.params()
    assert params == {"method": "Nelder-Mead", "tol": None, "hessian": "auto", "options.maxfev": 50,
                      "options.xatol": 1e-6}
    again = ScipyMethod(**params)
    assert again.options == solver.options and again.name == "scipy:Nelder-Mead" and not again.uses_gradient


def test_command_line_run_and_one_line_errors(cli):
    out = cli("solver=scipy", "solver.method=trust-exact", "objective=himmelblau", "+solver.options.gtol=1e-10")
    assert out.returncode == 0, out.stderr
    assert "scipy:trust-exact on himmelblau: converged" in out.stdout and "met scipy's own test" in out.stdout
    runs, its = optlab.load(cli.run_dir)
    assert runs["solver.options.gtol"][0] == 1e-10 and its.nhev.iloc[-1] > 0
    bad = cli("solver=scipy", "solver.method=simplex")
    assert bad.returncode == 2 and bad.stderr.startswith("optlab: error: solver.method='simplex' is unknown")


def slow_rosenbrock(x: np.ndarray) -> float:
    """A black box slow enough for a signal to arrive mid-run (tests run it by its dotted name)."""
    time.sleep(0.003)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def test_ctrl_c_on_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(["objective=black_box", "objective.function=tests.solvers.test_scipy_plugin.slow_rosenbrock",
                  "objective.dim=10", "solver=scipy", "solver.method=Nelder-Mead", "+solver.options.maxfev=1000000",
                  "stop.gtol=0", f"hydra.run.dir={run_dir}"], tmp_path)
    wait_for(lambda: (run_dir / "run.json").exists())
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    runs, its = optlab.load(run_dir)
    assert runs.status[0] == "interrupted" and runs.iterations[0] > 0
    assert its.iter.tolist() == list(range(runs.iterations[0] + 1))


@pytest.mark.slow  # (4 to 6 s: whole sweeps in subprocesses; the README's command stays under 6 minutes)
def test_sweep_of_scipy_and_optlab_methods_and_the_report(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "solver=scipy,bfgs", "objective=rosenbrock,himmelblau", "x0=[-1.2,1],[0,0]",
                  f"hydra.sweep.dir={sweep}", cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert f"sweep: 8 runs in {sweep}: 8 converged" in out.stdout
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert sorted(summary.solver.unique()) == ["bfgs", "scipy:BFGS"]
    assert (summary.groupby("solver").size() == 4).all()
    page = (sweep / "report" / "index.html").read_text()
    assert "scipy:BFGS" in page and "bfgs" in page and (sweep / "report" / "profiles.png").is_file()
    # on the same problem, optlab's BFGS and scipy's take the same first steps (the README's claim)
    runs, its = optlab.load(sweep)
    first = {r.solver: its[its.run_id == r.run_id].x_0.iloc[:4].to_numpy()
             for r in runs.itertuples() if r.objective == "rosenbrock" and list(r.x0) == [-1.2, 1.0]}
    np.testing.assert_allclose(first["bfgs"], first["scipy:BFGS"], rtol=1e-12)


def test_runs_from_python_and_multi_start_jobs(tmp_path):
    starts = np.array([[-1.2, 1.0], [0.0, 0.0], [2.0, 2.0]])
    records, _ = multi_start(tmp_path, Rosenbrock(), ScipyMethod("L-BFGS-B"), Stop(gtol=0),
                             {"kind": "list", "points": starts.tolist()})
    assert [r["status"] for r in records] == ["converged"] * 3
    runs, its = optlab.load(tmp_path)
    assert len(runs) == 3 and set(runs.solver) == {"scipy:L-BFGS-B"}
    assert sys.modules["scipy.optimize"] is scipy.optimize


def test_ctrl_c_between_two_turns_of_scipy_ends_its_worker_at_once(monkeypatch):
    """Ctrl-C while the driver logs an iterate (scipy paused, not in the driver's wait): the run
    ends interrupted and its worker ends with it, not when the outcome is collected."""
    import optlab.engine.outcome

    monkeypatch.setattr(optlab.engine.outcome, "time", interrupting_clock(12))
    gc.disable()  # (a worker ended by garbage collection would not count)
    try:
        outcome = optlab.minimize(BlackBox(lambda x: float(np.sum(x * x)), dim=3), ScipyMethod("Nelder-Mead"),
                                  x0=[1.0, 2.0, 3.0], max_iter=1000)
        assert outcome.status == "interrupted" and outcome.iterations >= 1
        wait_for(lambda: not workers(), timeout=2)
    finally:
        gc.enable()


def test_a_run_ended_at_the_target_ends_its_worker_at_once():
    """The evaluation that reaches stop.target ends the run inside scipy's turn: its worker ends
    with the run, not when the outcome is collected."""
    gc.disable()
    try:
        outcome = optlab.minimize(BlackBox(lambda x: float(np.sum(x * x)), dim=3), ScipyMethod("Nelder-Mead"),
                                  x0=[1.0, 2.0, 3.0], target=1.0, max_iter=1000)
        assert outcome.status == "target" and outcome.f <= 1.0
        wait_for(lambda: not workers(), timeout=2)
    finally:
        gc.enable()
