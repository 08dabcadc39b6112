"""A composed Hydra config read into what one job runs: plugins, start points, stopping rules, log options.

Every mistake is a one-line :class:`~optlab.errors.ConfigError`, raised before anything runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError, check_number
from .objectives.base import Objective
from .plugins import instantiate
from .solvers.base import Solver
from .stopping import Stop

STARTS_OPTIONS = ("n", "seed", "points", "box")


@dataclasses.dataclass
class JobConfig:
    """What a job runs: one run from ``x0``, or one run per start point when ``starts`` is set."""

    objective: Objective
    solver: Solver
    stop: Stop
    x0: Any
    starts: dict[str, Any] | None
    max_coords: int
    chunk_rows: int
    log_grad_norm: bool = False

    def start_points(self) -> np.ndarray:
        from .starts import start_points

        options = {k: v for k, v in self.starts.items() if k != "kind"}
        return start_points(self.objective, self.starts.get("kind"), **options)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def read_config(cfg: DictConfig) -> JobConfig:
    """The job of a composed config (raises :class:`ConfigError`)."""
    stop = Stop(**_plain(cfg.stop))
    objective = instantiate("objective", _plain(cfg.objective))
    solver = instantiate("solver", _plain(cfg.solver))
    x0 = _plain(cfg.x0)
    if isinstance(x0, str):
        raise ConfigError(f"x0={x0!r} is not a list of numbers; allowed: null or a list like [0,2]")
    starts = _plain(cfg.get("starts"))
    if starts is not None:
        if x0 is not None:
            raise ConfigError(f"x0={x0} is given together with starts; allowed: one of x0 and starts")
        if not isinstance(starts, dict):
            raise ConfigError(f"starts={starts!r} is not a starts config; allowed: starts=grid, random or list")
        for key in starts:
            if key != "kind" and key not in STARTS_OPTIONS:
                raise ConfigError(f"starts.{key} is not an option of starts; "
                                  f"allowed: kind, {', '.join(STARTS_OPTIONS)}")
    max_coords = check_number("log.max_coords", cfg.log.max_coords, low=0, strict=False, integer=True)
    chunk_rows = check_number("log.chunk_rows", cfg.log.chunk_rows, low=1, strict=False, integer=True)
    grad_norm = cfg.log.get("grad_norm", False)
    if not isinstance(grad_norm, bool):
        raise ConfigError(f"log.grad_norm={grad_norm!r} is not true or false; allowed: true, false")
    return JobConfig(objective, solver, stop, x0, starts, max_coords, chunk_rows, grad_norm)
