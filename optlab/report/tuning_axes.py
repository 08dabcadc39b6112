"""Tuning axes declared by a sweep, for the report's tuned comparison (:mod:`.tuning`).

The declaration is an option of the report's callback, ``hydra.callbacks.report.tune``, so that
it is kept in the sweep's ``multirun.yaml``, where the report finds it again whenever it is
built: a list of solver options (``[lr]``: every solver, over its learning rate) or a mapping
from solver to options (``{gd: [lr], adam: [lr, beta1]}``); ``solver.lr`` and ``lr`` are the
same. This module imports nothing heavy: the callback checks a declaration before any job runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError, describe

DECLARATION = "hydra.callbacks.report.tune"


def parse_tune(value: Any) -> dict[str, tuple[str, ...]] | None:
    """``{solver or "*": option names}`` from a declaration; None for none. One-line ConfigError otherwise."""
    if value is None:
        return None
    allowed = "a list of solver options (e.g. [lr]) or a mapping solver -> options (e.g. {gd: [lr]})"

    def options(v: Any) -> tuple[str, ...]:
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, (list, tuple)) or not v or not all(isinstance(o, str) and o for o in v):
            raise ConfigError(f"{DECLARATION}={describe(value)} is not valid; allowed: {allowed}")
        return tuple(sorted({o.removeprefix("solver.") for o in v}))

    if isinstance(value, dict):
        if not value or not all(isinstance(k, str) and k for k in value):
            raise ConfigError(f"{DECLARATION}={describe(value)} is not valid; allowed: {allowed}")
        return {k: options(v) for k, v in value.items()}
    return {"*": options(value)}


def declared(roots: list[Path]) -> dict[str, tuple[str, ...]] | None:
    """The declaration in the sweeps' ``multirun.yaml`` files (merged over several roots)."""
    import yaml

    found: dict[str, tuple[str, ...]] = {}
    for root in roots:
        conf = Path(root) / "multirun.yaml"
        if not conf.is_file() or conf.is_symlink() or conf.stat().st_size > 1 << 20:
            continue
        try:
            tune = ((yaml.safe_load(conf.read_text()) or {}).get("hydra", {}).get("callbacks") or {}) \
                .get("report", {}).get("tune")
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            continue
        try:
            axes = parse_tune(tune) or {}
        except ConfigError as exc:
            warnings.warn(f"{conf}: {exc}: no tuned comparison", stacklevel=2)
            continue
        for solver, names in axes.items():
            found[solver] = tuple(sorted(set(found.get(solver, ())) | set(names)))
    return found or None
