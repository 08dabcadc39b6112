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


def best_of(repeats: int, *fns: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """The best time of each function over ``repeats`` alternating rounds (wall time, or the
    process's CPU time with ``clock=time.process_time``: on a busy machine it counts only what
    this process ran)."""
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = clock()
            fn()
            best[i] = min(best[i], clock() - t)
    return best


def seconds(t: float) -> str:
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"
