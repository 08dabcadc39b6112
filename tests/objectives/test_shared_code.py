"""Objectives of one class and state share compiled code, checked once per class and state
(optlab.objectives.derivatives): a new objective of a known kind costs no recording of f."""

from __future__ import annotations

import numpy as np
import pytest

import optlab.autodiff as ad
from optlab.objectives import derivatives as D
from optlab.objectives.base import Objective
from optlab.objectives.derivatives import derivatives_of


class Counted(Objective):
    """sum (x - c)^2, counting the recordings of f (one per call on Variables)."""

    name = "counted"
    recordings = 0

    def __init__(self, c: float = 1.0) -> None:
        self.c, self.dim, self.x0, self.box = c, 2, np.zeros(2), np.array([[-2.0, 2.0]] * 2)

    def f(self, x):
        type(self).recordings += 1
        return ad.sum((x - self.c) ** 2)


class Shifted(Counted):
    """sum (x - shift)^2 with ``shift`` a class attribute: what f reads beyond the instance's state."""

    name = "shifted"
    shift = 1.0

    def f(self, x):
        return ad.sum((x - type(self).shift) ** 2)


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(D, "_SHARED", {})
    monkeypatch.setattr(D, "_CHECKED", {})
    Counted.recordings = 0


def compiled(obj):
    return derivatives_of(obj).compiled(np.array([0.5, 0.25]))


def test_the_second_objective_is_checked_and_the_later_ones_take_the_code_unrecorded():
    first = compiled(Counted())
    assert Counted.recordings == 2  # the recording and its check
    assert compiled(Counted()) is first and Counted.recordings == 3  # the one check of this class and state
    later = [Counted() for _ in range(5)]
    assert all(compiled(o) is first for o in later) and Counted.recordings == 3
    x = np.array([0.5, 0.25])
    assert later[-1].value_and_grad(x)[0] == 0.8125 and later[-1].grad(x).tolist() == [-1.0, -1.5]


def test_another_state_is_other_code_with_its_own_check():
    one, other = compiled(Counted(1.0)), compiled(Counted(3.0))
    assert other is not one and Counted.recordings == 4
    assert Counted(3.0).value(np.array([0.5, 0.25])) == 2.5 ** 2 + 2.75 ** 2


def test_equal_states_whose_functions_differ_share_nothing_after_the_check_fails(monkeypatch):
    first_code = compiled(Shifted())
    monkeypatch.setattr(Shifted, "shift", 3.0)
    second = Shifted()
    x = np.array([0.5, 0.25])
    assert compiled(second) is not first_code and second.value(x) == 2.5 ** 2 + 2.75 ** 2
    third = Shifted()
    assert compiled(third) is not compiled(second)  # checked and failed once: each compiles its own
    assert D._CHECKED[D._fingerprint(third)] is False


def test_the_state_digest_tells_nested_values_apart_and_falls_back_to_the_options():
    a, b = Counted(), Counted()
    a.data, b.data = ([1.0, 2.0], 3.0), ([1.0], 2.0, 3.0)
    assert D._fingerprint(a) != D._fingerprint(b)
    b.data = ([1.0, 2.0], 3.0)
    assert D._fingerprint(a) == D._fingerprint(b)
    a.model = b.model = print  # a callable in the state: only the options are digested
    assert D._fingerprint(a)[1].startswith("options ") and D._fingerprint(a) == D._fingerprint(b)
