"""objective=bbob: COCO's values, f* of every function, counts COCO agrees with, and the report's
COCO runtime profile."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pandas as pd
import pytest

import optlab
from optlab.errors import ConfigError
from optlab.report.profiles import COCO_EXPONENTS, coco_ecdf, coco_runtimes

from ..conftest import run_cli


@pytest.fixture
def cocoex():
    return pytest.importorskip("cocoex", reason="objective=bbob needs COCO's cocoex (the bbob extra)")


def coco_problem(cocoex, function: int, dim: int, instance: int):
    suite = cocoex.Suite("bbob", f"instances: {instance}", f"function_indices: {function} dimensions: {dim}")
    return suite.get_problem_by_function_dimension_instance(function, dim, instance)


@pytest.mark.parametrize("dim", [2, 5])
def test_values_are_cocos_own(cocoex, dim):
    from optlab.objectives.bbob import BBOB

    rng = np.random.default_rng(dim)
    for function in range(1, 25):
        for instance in (1, 3):
            ours, theirs = BBOB(function, instance, dim), coco_problem(cocoex, function, dim, instance)
            for x in rng.uniform(-5, 5, size=(3, dim)):
                assert ours.value(x) == theirs(x)
            assert ours.box.tolist() == [[-5.0, 5.0]] * dim
            np.testing.assert_array_equal(ours.x0, theirs.initial_solution)


def test_f_star_is_the_value_at_cocos_optimum(cocoex, tmp_path, monkeypatch):
    from optlab.objectives.bbob import BBOB

    monkeypatch.chdir(tmp_path)  # COCO writes the optimum it is asked for into the working directory
    for function in range(1, 25):
        for instance, dim in ((1, 2), (2, 5), (15, 3)):
            problem = coco_problem(cocoex, function, dim, instance)
            problem._best_parameter("print")
            x_opt = np.loadtxt(tmp_path / "._bbob_problem_best_parameter.txt").reshape(dim)
            f_star = BBOB(function, instance, dim).f_star
            value = problem(x_opt)
            assert abs(value - f_star) <= 1e-9 * max(1.0, abs(f_star)), (function, instance, dim)
            assert problem.final_target_hit  # COCO's own check: f(x_opt) is within 1e-8 of its f*
            assert round(f_star, 2) == f_star and -1000 <= f_star <= 1000


def test_counts_agree_with_cocos_and_the_final_target(cocoex):
    from optlab.objectives.bbob import BBOB

    box = BBOB(function=8, instance=1, dim=5)
    run = optlab.minimize(box, "bfgs", max_fev=5000, target=1e-8)
    assert run.status == "target" and run.gap <= 1e-8
    assert run.nfev == box.problem.evaluations  # every call COCO received, finite differences included
    assert run.iterates.nfev.iloc[1] - run.iterates.nfev.iloc[0] >= 2 * 5
    assert box.params() == {"function": 8, "instance": 1, "dim": 5, "x0": None, "differences": "central"}


def test_mistakes_are_one_line(cocoex, monkeypatch):
    from optlab.objectives.bbob import BBOB

    with pytest.raises(ConfigError, match=r"^objective.function=25 is not a BBOB function; allowed: 1 to 24$"):
        BBOB(function=25)
    with pytest.raises(ConfigError, match=r"^objective.dim=4 is not a dimension of COCO's bbob suite; allowed: "
                                          r"2, 3, 5, 10, 20, 40$"):
        BBOB(dim=4)
    with pytest.raises(ConfigError, match=r"^objective.instance=0 is out of range"):
        BBOB(instance=0)
    real_import = builtins.__import__

    def no_cocoex(name, *args, **kwargs):
        if name == "cocoex":
            raise ImportError("No module named 'cocoex'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "cocoex")
    monkeypatch.setattr(builtins, "__import__", no_cocoex)
    with pytest.raises(ConfigError, match=r"^objective=bbob needs COCO's cocoex, which is not installed; allowed: "
                                          r"install it with pip install 'optlab\[bbob\]'"):
        BBOB()


def test_coco_runtimes_and_their_distribution():
    f_star = 10.0
    f = f_star + np.array([500.0, 50.0, 0.5, 0.7, 1e-3])  # not monotone: the best so far counts
    nfev = np.array([1, 4, 9, 12, 20])
    runtimes = coco_runtimes(f, nfev, f_star)
    assert len(COCO_EXPONENTS) == 51 and COCO_EXPONENTS[0] == 2 and COCO_EXPONENTS[-1] == -8
    expected = np.where(COCO_EXPONENTS >= np.log10(50.0), 4, np.where(COCO_EXPONENTS >= np.log10(0.5), 9,
                        np.where(COCO_EXPONENTS >= -3, 20, np.inf)))
    np.testing.assert_array_equal(runtimes, expected)
    # 51 pairs: 10^2 and 10^1.8 (>= 50) by 4 evaluations, ... none below 10^-3
    frac = coco_ecdf(runtimes / 2, np.array([1.0, 2.0, 4.5, 10.0, 1e9]))
    reached = [np.sum(runtimes / 2 <= b) / 51 for b in (1.0, 2.0, 4.5, 10.0, 1e9)]
    np.testing.assert_allclose(frac, reached)
    assert frac[-1] == pytest.approx(26 / 51)  # targets 10^2 .. 10^-3: 26 of the 51


def test_sweep_over_two_functions_has_the_coco_profile(cocoex, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("-m", "objective=bbob", "objective.function=1,8", "objective.dim=2", "solver=bfgs,nelder_mead",
                  "stop.max_fev=1500", "stop.target=1e-8", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    runs, _ = optlab.load(sweep)
    assert sorted(runs["objective.function"]) == [1, 1, 8, 8] and set(runs.objective) == {"bbob"}
    assert runs.f_star.notna().all() and set(runs.status) <= {"target", "converged", "max_fev", "stalled"}
    report = sweep / "report"
    assert (report / "profiles_coco.png").stat().st_size > 10_000
    page = (report / "index.html").read_text()
    assert "COCO runtime profile" in page and "51 targets" in page
    summary = pd.read_csv(report / "summary.csv")
    assert len(summary) == 4 and set(summary.objective) == {"bbob"}
