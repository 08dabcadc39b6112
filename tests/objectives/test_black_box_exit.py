"""A black box that raises SystemExit (or any exception that is not an ordinary one) ends its run
with a status, instead of leaving it ``running``."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

import optlab
from optlab.objectives import BlackBox
from optlab.objectives.black_box import load_function

from ..conftest import run_cli


class Fatal(BaseException):
    """Not an Exception: what a library's own abort might raise."""


@pytest.mark.parametrize("raised, shown", [(SystemExit(3), "SystemExit(3)"), (SystemExit("bye"), "SystemExit('bye')"),
                                           (Fatal(), "Fatal()")])
def test_the_run_ends_as_an_error(raised, shown):
    calls = []

    def simulator(x):
        calls.append(1)
        if len(calls) == 4:
            raise raised
        return float(x @ x)

    result = optlab.minimize(BlackBox(simulator, dim=2, x0=[1.0, 1.0]), "nelder_mead", max_iter=50)
    assert result.status == "error" and f"objective.function raised {shown}" in result.message
    assert len(result.iterates) == result.iterations + 1


def test_ctrl_c_is_not_made_an_error():
    """Ctrl-C inside the function stays a KeyboardInterrupt (the run's driver ends the run as
    interrupted); only what is neither an Exception nor Ctrl-C becomes the run's error."""
    def simulator(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_function("objective.function", simulator)(np.zeros(2))
    with pytest.raises(RuntimeError, match=r"objective.gradient raised SystemExit\(2\)"):
        load_function("objective.gradient", lambda x: sys.exit(2))(np.zeros(2))
    with pytest.raises(ValueError, match="its own"):  # an ordinary exception passes as it is
        load_function("objective.function", lambda x: (_ for _ in ()).throw(ValueError("its own")))(np.zeros(2))


def test_from_the_command_line(tmp_path):
    (tmp_path / "quitting.py").write_text(textwrap.dedent('''
        import sys

        def f(x):
            if abs(x[0]) > 0.0:
                sys.exit(7)
            return float((x ** 2).sum())
    '''))
    out = run_cli("objective=black_box", "objective.function=quitting.f", "solver=nelder_mead",
                  f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "error" and "objective.function raised SystemExit(7)" in record["message"]
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
