"""COCO's BBOB functions (``objective=bbob``) as black boxes, evaluated by COCO's own code (``cocoex``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError, check_number, describe
from .base import check_dim
from .black_box import DIFFERENCES, BlackBox

FUNCTIONS = range(1, 25)
DIMENSIONS = (2, 3, 5, 10, 20, 40)  # the dimensions COCO's bbob suite defines
#: COCO's targets for data profiles: f - f* <= 10^k, k = 2, 1.8, ..., -8 (51 targets).
TARGET_EXPONENTS = np.round(np.linspace(2.0, -8.0, 51), 10)


def _cocoex() -> Any:
    try:
        import cocoex
    except ImportError:
        raise ConfigError("objective=bbob needs COCO's cocoex, which is not installed; allowed: install it with "
                          "pip install 'optlab[bbob]' (the coco-experiment package)") from None
    return cocoex


def _uniform(n: int, seed: int) -> list[float]:
    """BBOB's uniform random numbers (``bbob2009_unif`` of COCO's legacy code): a Park-Miller
    generator shuffled through a table of 32, so f* comes out to the bit without evaluating."""
    seed = max(abs(seed), 1)
    table = [0] * 32
    for i in range(39, -1, -1):
        tmp = seed // 127773
        seed = 16807 * (seed - tmp * 127773) - 2836 * tmp
        if seed < 0:
            seed += 2147483647
        if i < 32:
            table[i] = seed
    current, out = table[0], []
    for _ in range(n):
        tmp = seed // 127773
        seed = 16807 * (seed - tmp * 127773) - 2836 * tmp
        if seed < 0:
            seed += 2147483647
        j = current // 67108865
        current, table[j] = table[j], seed
        out.append(current / 2.147483647e9 or 1e-99)
    return out


def _gauss(seed: int) -> float:
    u = _uniform(2, seed)
    return math.sqrt(-2.0 * math.log(u[0])) * math.cos(2.0 * math.pi * u[1]) or 1e-99


def f_opt(function: int, instance: int, dim: int) -> float:
    """f* of BBOB function ``function`` (1..24), instance ``instance``, in ``dim`` dimensions, to the
    bit as COCO's ``best_value``: ``bbob2009_compute_fopt``, a value in [-1000, 1000] rounded to 0.01
    (Hansen et al., Real-Parameter Black-Box Optimization Benchmarking 2009: Noiseless Functions
    Definitions, INRIA RR-6829), plus, for Schwefel's f20, the raw function's value at its optimum,
    which COCO evaluates rather than takes as 0 (a few 1e-15: 4.390000000000002, not 4.39)."""
    seed = {4: 3, 18: 17}.get(function, function) + 10000 * instance
    value = 100.0 * 100.0 * _gauss(seed) / _gauss(seed + 1)
    shift = min(1000.0, max(-1000.0, math.floor(value + 0.5) / 100.0))
    return _schwefel_at_optimum(dim) + shift if function == 20 else shift


def _schwefel_at_optimum(dim: int) -> float:
    """COCO's ``f_schwefel_raw`` at its optimum (every coordinate 420.96874633), summed as COCO sums."""
    total = 0.0
    for _ in range(dim):
        total += SCHWEFEL_OPTIMUM * math.sin(math.sqrt(SCHWEFEL_OPTIMUM))
    return 0.01 * (0.0 + 418.9828872724339 - total / dim)


SCHWEFEL_OPTIMUM = 420.96874633


class BBOB(BlackBox):
    """Function ``function`` (1..24) of COCO's noiseless BBOB suite, instance ``instance`` (a
    shift, rotation and f* drawn from its number), in ``dim`` dimensions: separable (1-5),
    moderate (6-9), ill-conditioned (10-14), multi-modal (15-19) and weakly structured
    multi-modal (20-24) functions on the domain [-5, 5]^n. Values come from COCO's own code
    (``cocoex``); f* is the instance's optimal value (so ``stop.target=1e-8`` is COCO's final
    target). Gradients are finite differences, each difference counted as a function evaluation
    (``differences``: central or forward). The start is COCO's (the domain's middle, 0) unless
    ``x0`` is given; ``dim`` is one of COCO's 2, 3, 5, 10, 20, 40. References: Hansen, Finck, Ros
    and Auger, INRIA RR-6829, 2009; Hansen et al., COCO: a platform for comparing continuous optimizers in a black-box
    setting, Optim. Methods Softw. 36, 2021.
    """

    name = "bbob"

    def __init__(self, function: int = 1, instance: int = 1, dim: int = 2, x0: Any = None,
                 differences: str = "central") -> None:
        function = check_number("objective.function", function, integer=True)
        if function not in FUNCTIONS:
            raise ConfigError(f"objective.function={describe(function)} is not a BBOB function; allowed: 1 to 24")
        instance = check_number("objective.instance", instance, low=1, strict=False, integer=True)
        dim = check_dim(dim)
        if dim not in DIMENSIONS:
            raise ConfigError(f"objective.dim={dim} is not a dimension of COCO's bbob suite; allowed: "
                              f"{', '.join(map(str, DIMENSIONS))}")
        if differences not in DIFFERENCES:
            raise ConfigError(f"objective.differences={differences!r} is unknown; allowed: {', '.join(DIFFERENCES)}")
        suite = _cocoex().Suite("bbob", f"instances: {instance}",
                                f"function_indices: {function} dimensions: {dim}")
        self.problem = suite.get_problem_by_function_dimension_instance(function, dim, instance)
        problem = self.problem

        def evaluate(x: np.ndarray) -> float:
            return float(problem(x))

        start = np.asarray(problem.initial_solution, dtype=float) if x0 is None else x0
        box = np.stack([problem.lower_bounds, problem.upper_bounds], axis=1)
        super().__init__(evaluate, dim=dim, x0=start, box=box, f_star=f_opt(function, instance, dim),
                         differences=differences)
        self.function, self.instance, self.x0_option = function, instance, x0
        self.id = problem.id

    def params(self) -> dict[str, Any]:
        x0 = self.x0_option
        return {"function": self.function, "instance": self.instance, "dim": self.dim,
                "x0": None if x0 is None else np.asarray(x0, dtype=float).tolist(), "differences": self.differences}

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a BBOB objective holds COCO's problem, which cannot be pickled; build it again from "
                        "BBOB(**params()) in the other process")
