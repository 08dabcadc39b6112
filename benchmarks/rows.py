"""The benchmarks' rows: a figure of optlab's against a reference measured in the same process."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable


@dataclasses.dataclass
class Row:
    target: str
    optlab: str
    reference: str
    ratio: float
    limit: float
    shown: str = ""  # how the ratio is printed, when not as a plain ratio
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.ratio <= self.limit


def best_of(repeats: int, *fns: Callable[[], object]) -> list[float]:
    """The best wall time of each function over ``repeats`` alternating rounds."""
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def seconds(t: float) -> str:
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"
