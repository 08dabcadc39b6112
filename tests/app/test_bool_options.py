"""Booleans are not numbers: ``solver.lr=true`` was taken as 1.0."""

from __future__ import annotations

import pytest

from optlab.errors import ConfigError, check_number
from optlab.objectives import BlackBox

from .test_bad_values import call, one_line


@pytest.mark.parametrize("args, words", [
    (["solver.lr=true"], "solver.lr=true is not a number"),
    (["solver.lr=false"], "solver.lr=false is not a number"),
    (["solver=adam", "solver.beta1=true"], "solver.beta1=true is not a number"),
    (["objective.dim=true"], "objective.dim=true is not a"),
    (["stop.max_iter=true"], "stop.max_iter=true is not a whole number"),
    (["stop.gtol=false"], "stop.gtol=false is not a number"),
    (["log.max_coords=true"], "log.max_coords=true is not a whole number"),
    (["objective=quadratic", "objective.cond=true"], "objective.cond=true is not a number"),
    (["starts=random", "starts.n=true"], "starts.n=true is not a whole number"),
])
def test_booleans_are_refused_where_numbers_go(args, words, tmp_path, capsys, monkeypatch):
    code, _, err = call([*args, "stop.max_iter=3" if "stop.max_iter" not in args[0] else "solver=gd",
                         f"hydra.run.dir={tmp_path / 'run'}"], capsys, monkeypatch)
    one_line(code, err, words)
    assert not (tmp_path / "run" / "run.json").exists()


def test_in_a_sweep_each_boolean_job_is_invalid(tmp_path, capsys, monkeypatch):
    code, out, _ = call(["-m", "solver.lr=0.01,true", "objective=double_well", "stop.max_iter=3",
                         "report.auto=false", f"hydra.sweep.dir={tmp_path}"], capsys, monkeypatch)
    assert code == 1 and f"sweep: 2 runs in {tmp_path}: 1 max_iter, 1 invalid" in out


def test_check_number_and_unchecked_options():
    with pytest.raises(ConfigError, match="x=true is not a number"):
        check_number("x", True)
    assert check_number("x", 1) == 1.0
    with pytest.raises(ConfigError, match="objective.f_star=true is not a number"):
        from optlab.app.plugins import instantiate

        instantiate("objective", {"_target_": "optlab.objectives.BlackBox", "function": lambda x: 0.0,
                                  "f_star": True})
    assert BlackBox(lambda x: 0.0, f_star=0).f_star == 0.0
