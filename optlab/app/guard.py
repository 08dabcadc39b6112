"""Checks on the composed config before Hydra acts on it: what may be instantiated, a sweep's
values, and one writer per sweep directory.

Hydra instantiates ``hydra.callbacks`` right after composing the config, before optlab's task
runs, so an experiment file on the search path could otherwise name any function there
(``_target_: subprocess.getoutput``). :func:`install` puts :class:`GuardedCallbacks` in place of
Hydra's callback list: before any callback is built it checks every ``_target_`` of the
composed config against optlab's allow-list (:func:`check_targets`), and in a sweep it checks
the values that do not depend on the objective or solver (``stop.*``, ``log.*``) for every job,
locks the sweep directory and claims it (:func:`optlab.app.sweep.open_sweep`), all before the first
job is queued. A mistake is a :class:`~optlab.errors.ConfigError`: one line, exit 2.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from pathlib import Path
from typing import Any

from hydra._internal import hydra as hydra_internal
from hydra._internal.callbacks import Callbacks
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError, describe
from ..rundir.layout import STOPPED

#: ``_target_`` prefixes allowed where: callbacks are optlab's own; launchers and sweepers are
#: Hydra's plugins (Hydra itself accepts no others there), with the samplers and pruners of Optuna.
CALLBACKS = ("optlab.app.callbacks.", "optlab.app.tracking.")
PLUGINS = ("hydra_plugins.", "hydra._internal.core_plugins.", "optuna.samplers.", "optuna.pruners.")
#: Classes and factories that Python's logging config may call (``class:`` and ``()`` keys).
LOGGING = ("logging.", "colorlog.")
#: How long a sweep stopped by Ctrl-C waits for jobs in other processes to record how they ended.
WORKER_GRACE_S = 10.0


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _resolved(config: DictConfig, path: tuple[str, ...], value: Any) -> Any:
    if isinstance(value, str) and "${" in value:  # an interpolation: check what it names
        return OmegaConf.select(config, _where(path), throw_on_resolution_failure=False, default=value)
    return value


def check_targets(config: DictConfig) -> None:
    """Refuse any callable the config names outside optlab's allow-list (objectives and solvers
    are checked when they are built: :mod:`optlab.app.plugins`)."""
    tree = OmegaConf.to_container(config, resolve=False)

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*path, str(i)))
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            here = (*path, str(key))
            if key == "_target_" and path[:1] == ("hydra",):
                allowed = CALLBACKS if path[:2] == ("hydra", "callbacks") else PLUGINS
                _allow(here, _resolved(config, here, value), allowed)
            elif key in ("()", "class") and path[:2] in (("hydra", "job_logging"), ("hydra", "hydra_logging")):
                _allow(here, _resolved(config, here, value), LOGGING)
            else:
                walk(value, here)

    walk(tree, ())


def _allow(path: tuple[str, ...], target: Any, prefixes: tuple[str, ...]) -> None:
    if not (isinstance(target, str) and target.startswith(prefixes)):
        raise ConfigError(f"{_where(path)}={describe(target)} is not allowed; allowed: a name starting with "
                          f"{' or '.join(prefixes)} (a config cannot name an arbitrary function to run)")


def check_sweep_values(overrides: list[str]) -> None:
    """Every value a sweep gives to ``stop.*`` and ``log.*``, checked before any job runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ..engine.stopping import Stop
    from .config import LOG_KEYS, STOP_KEYS

    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element().lstrip("+~")
        group, _, name = key.partition(".")
        if group not in ("stop", "log") or not name or override.is_delete():
            continue
        allowed = STOP_KEYS if group == "stop" else LOG_KEYS
        if name not in allowed:
            raise ConfigError(f"{key} is not an option of {group}; allowed: {', '.join(allowed)}")
        if override.is_sweep_override() and not override.is_discrete_sweep():
            continue  # an interval for a sweeper to search: its values are checked in each job
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        for value in values:
            if group == "stop":
                if name == "max_seconds" and value == math.inf:
                    continue  # no limit
                Stop(**{name: value})
            elif name == "grad_norm":
                if not isinstance(value, bool):
                    raise ConfigError(f"log.grad_norm={describe(value)} is not true or false; allowed: true, false")
            else:
                from ..errors import check_number

                check_number(key, value, low=0 if name == "max_coords" else 1, strict=False, integer=True)


class GuardedCallbacks(Callbacks):
    """Hydra's callback list, built only from a config that passed the checks above; in a sweep it
    holds the sweep directory's lock until the sweep's end-of-run callbacks are done."""

    def __init__(self, config: DictConfig | None = None) -> None:
        self.sweep_lock: tuple[Path, str | None] | None = None
        if config is not None:
            check_targets(config)
            if OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN:
                self._claim_sweep(config)
        try:
            super().__init__(config)
        except BaseException:
            self._release()
            raise

    def _claim_sweep(self, config: DictConfig) -> None:
        from ..rundir.lock import acquire
        from .sweep import open_sweep

        overrides = list(OmegaConf.select(config, "hydra.overrides.task") or [])
        check_sweep_values(overrides)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_lock = (sweep_dir, acquire(sweep_dir))
        try:
            open_sweep(sweep_dir, overrides)
            (sweep_dir / STOPPED).unlink(missing_ok=True)  # (a stopped sweep, resumed: its jobs run)
        except BaseException:
            self._release()
            raise
        self.handlers = {}
        with contextlib.suppress(ValueError):  # (not the main thread)
            for number in (signal.SIGINT, signal.SIGTERM):
                self.handlers[number] = signal.signal(number, self._interrupted)

    def _interrupted(self, number: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM in a sweep: mark the sweep stopped (jobs a launcher starts after this
        do not run: :data:`~optlab.rundir.layout.STOPPED`), pass the signal on to the processes
        of the jobs going on this host (the owners of their directories' locks; a signal sent to
        this process alone, or Ray's workers in process groups of their own, would not reach
        them) as :data:`optlab.interrupts.STOP_SIGNAL`, wait until they have written their
        records (a launcher told to stop kills its workers), then stop."""
        from ..interrupts import forward, note
        from ..rundir.layout import LOCK
        from ..rundir.lock import owners

        note(number)
        if self.sweep_lock is not None:
            sweep_dir = self.sweep_lock[0]
            with contextlib.suppress(OSError):
                (sweep_dir / STOPPED).touch()
            forward(owners(sweep_dir.glob(f"*/{LOCK}")))
            end = time.monotonic() + WORKER_GRACE_S
            while time.monotonic() < end and any(sweep_dir.glob(f"*/{LOCK}")):
                time.sleep(0.05)
        raise KeyboardInterrupt

    def _release(self) -> None:
        from ..rundir.lock import release

        for number, handler in getattr(self, "handlers", {}).items():
            signal.signal(number, handler)
        self.handlers = {}
        if self.sweep_lock is not None:
            release(*self.sweep_lock)
            self.sweep_lock = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            super().on_multirun_end(config=config, **kwargs)
        finally:
            self._release()


def install() -> None:
    """Use :class:`GuardedCallbacks` for the runs and sweeps Hydra starts from here on."""
    hydra_internal.Callbacks = GuardedCallbacks
