"""||v||, summed as every path of optlab sums it: the stopping rules (one run, a batch, generated
code) and the solvers that state or use ||grad f|| all call :func:`norm`, so they agree to the bit."""

from __future__ import annotations

import math

import numpy as np

SMALL = 16  # vectors up to this size are summed in Python, first to last


def norm(v: np.ndarray) -> float:
    """||v||: for small vectors sqrt(v_0 v_0 + v_1 v_1 + ...) summed first to last, as
    generated code and :func:`row_norms` sum (Python floats beat numpy's call overhead there)."""
    if v.size <= SMALL:
        total = 0.0
        for c in v.ravel().tolist():
            total += c * c
        return math.sqrt(total)
    v = v if v.ndim == 1 else v.ravel()
    return math.sqrt(float(np.dot(v, v)))
