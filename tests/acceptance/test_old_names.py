"""Import paths of optlab 0.1 keep working for one release (optlab.moved, optlab.legacy): each
listed name is the new object, with a DeprecationWarning naming its new place; nothing else
passes through an old module."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import optlab
from optlab.moved import MOVED


@pytest.mark.parametrize("old, name", [(old, name) for old, names in MOVED.items() for name in names])
def test_every_listed_old_name_is_the_new_object_with_a_warning(old, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"use {MOVED[old][name]}.{name}"):
        found = getattr(module, name)
    assert found is getattr(importlib.import_module(MOVED[old][name]), name)


def test_an_old_module_is_no_door_to_anything_else():
    import optlab.runner

    with pytest.raises(AttributeError, match="moved in optlab 0.2; allowed: Outcome, STATUSES, Stop, run"):
        optlab.runner.np  # noqa: B018 - (the new module imports numpy; the old name does not hand it on)


def test_the_old_functions_run_as_before():
    from optlab.objectives import Rosenbrock
    from optlab.solvers import SOLVERS

    with pytest.warns(DeprecationWarning):
        from optlab.batch import run_batch
        from optlab.runner import Stop, run
    outcome = run(Rosenbrock(), SOLVERS["gd"](lr=1e-3), [0.0, 2.0], Stop(max_iter=50))
    new = optlab.minimize("rosenbrock", "gd", x0=[0.0, 2.0], solver_options={"lr": 1e-3}, max_iter=50)
    np.testing.assert_array_equal(outcome.state.x, new.x)
    assert outcome.iterations == new.iterations == 50
    results = run_batch(Rosenbrock(), SOLVERS["gd"](lr=1e-3), [[0.0, 2.0], [-1.2, 1.0]], Stop(max_iter=50))
    assert len(results) == 2 and results[0].iterates.num_rows == 51
    np.testing.assert_array_equal(results[0].outcome.state.x, new.x)
