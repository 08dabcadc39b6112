"""A black box: a function of a numpy vector, as code written for scipy would be.

Select it with ``objective=black_box objective.function=my_plugins.my_black_box.rosenbrock``.
"""

from __future__ import annotations

import numpy as np


def rosenbrock(x: np.ndarray) -> float:
    """sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, written with numpy: optlab sees only its values."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))
