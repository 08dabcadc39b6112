"""BBOB's f* to the bit as COCO's own best value, for every function, dimension and many instances
(Schwefel's f20 included, whose f* is not the rounded shift alone)."""

from __future__ import annotations

import pytest

from optlab.objectives.bbob import DIMENSIONS, FUNCTIONS, f_opt

INSTANCES = (*range(1, 16), *range(100, 111), 1000, 12345)


@pytest.fixture
def cocoex():
    return pytest.importorskip("cocoex", reason="objective=bbob needs COCO's cocoex (the bbob extra)")


def test_f_star_is_cocos_best_value_for_every_function_dimension_and_instance(cocoex):
    differ = [(function, dim, instance) for function in FUNCTIONS for dim in DIMENSIONS for instance in INSTANCES
              if f_opt(function, instance, dim) != cocoex.BareProblem("bbob", function, dim, instance).best_value()]
    assert differ == []


def test_f20_is_the_shift_plus_schwefels_value_at_its_optimum(cocoex):
    from optlab.objectives.bbob import BBOB

    best = cocoex.BareProblem("bbob", 20, 2, 100).best_value()
    assert BBOB(function=20, instance=100, dim=2).f_star == best == 4.3900000000000015  # not the rounded 4.39
