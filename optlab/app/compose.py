"""A sweep's job configs composed once per choice of config groups.

Hydra composes every job of a sweep from scratch (defaults list, YAML files, merges), twice
with the basic sweeper (once to check the batch, once to launch it): ~60 ms per composition,
more than a short run. Jobs that choose the same config groups differ only in values
(``solver.lr=1e-3``, ``x0=[0,2]``), which Hydra applies last, after the composition, with
:meth:`ConfigLoaderImpl._apply_overrides_to_config`. :class:`ComposeOnce` composes each choice
of groups once with Hydra and applies the values to a copy, exactly as Hydra's own
``_load_configuration_impl`` does; ``tests/app/test_hydra_compose.py`` checks the configs are equal
to Hydra's for every job of every experiment and for overrides of every kind.
"""

from __future__ import annotations

import copy
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict


class ComposeOnce:
    """Hydra's config loader (``loader``) with a cache of the compositions of a sweep's jobs.

    Only :meth:`load_sweep_config` differs; everything else is the loader's. An override is
    applied to a cached composition only when Hydra would apply it as a value: not a config
    group (nor a dict), not a package override, not in ``hydra.`` (which Hydra lists apart).
    """

    def __init__(self, loader: ConfigLoaderImpl) -> None:
        self.loader = loader
        self._compositions: dict[tuple[str, ...], DictConfig] = {}
        self._repos: dict[tuple[str, ...], Any] = {}
        self._parser = OverridesParser.create()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "loader":  # (pickling and copying look these up)
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict[str, Any]:  # a worker process composes again; the cache stays here
        return {"loader": self.loader}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["loader"])

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        parsed = self._parser.parse_overrides(overrides=list(sweep_overrides))
        hydra_lines = tuple(OmegaConf.to_container(master_config.hydra.overrides.hydra))
        values = self._values(master_config, parsed, hydra_lines + tuple(o.input_line for o in parsed
                                                                           if o.is_hydra_override()))
        if not values:
            return self.loader.load_sweep_config(master_config, list(sweep_overrides))
        groups = tuple(o.input_line for o in parsed if o not in values)
        base = self._compositions.get(groups)
        if base is None:
            base = self._compositions[groups] = self.loader.load_sweep_config(master_config, list(groups))
        cfg = copy.deepcopy(base)
        # What Hydra's _load_configuration_impl does after composing, for the value overrides.
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        app = [o for o in parsed if not o.is_hydra_override()]
        cfg.hydra.overrides.task = [o.input_line for o in app]
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=app,
            kv_sep=cfg.hydra.job.config.override_dirname.kv_sep,
            item_sep=cfg.hydra.job.config.override_dirname.item_sep,
            exclude_keys=cfg.hydra.job.config.override_dirname.exclude_keys,
        )
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def _values(self, master_config: DictConfig, parsed: list[Override],
                hydra_lines: tuple[str, ...]) -> list[Override]:
        """The overrides Hydra would apply as values after composing (its ``Overrides`` split),
        in their order; the config groups are those of the search path these overrides give."""
        repo = self._repos.get(hydra_lines)
        if repo is None:
            _, repo = self.loader._parse_overrides_and_create_caching_repo(
                master_config.hydra.job.config_name, list(hydra_lines))
            self._repos[hydra_lines] = repo
        return [o for o in parsed
                if not o.is_hydra_override() and o.package is None and not o.is_sweep_override()
                and (isinstance(o.value(), dict) or not repo.group_exists(o.key_or_group))]


class RunComposedOnce:
    """A single run's config composed once, not twice: Hydra composes the whole config to read
    ``hydra.mode`` (:meth:`Hydra.get_mode`, for multirun rules), then again to run. Here the first
    composition is made for a run; when it says neither mode (the usual case) it is kept, with the
    ``hydra.mode=RUN`` that Hydra then adds applied to it, and handed to :meth:`Hydra.run` instead
    of composing again. Anything else (a sweep's values, a config that sets the mode, an error)
    takes Hydra's own path. ``tests/app/test_hydra_compose.py`` checks the config equals Hydra's."""

    def __init__(self) -> None:
        self.kept: tuple[tuple, DictConfig] | None = None

    def install(self) -> None:
        from hydra._internal.hydra import Hydra
        from hydra.types import RunMode

        # Hydra's own methods, not those of an earlier install (main() called again in one process)
        get_mode = getattr(Hydra.get_mode, "hydras", Hydra.get_mode)
        compose = getattr(Hydra.compose_config, "hydras", Hydra.compose_config)
        once = self

        def get_mode_once(hydra: Any, config_name: str | None, overrides: list[str]) -> Any:
            try:
                cfg = compose(hydra, config_name=config_name, overrides=list(overrides), run_mode=RunMode.RUN)
            except Exception:  # noqa: BLE001 - sweep values, or a mistake: Hydra's own path says which
                return get_mode(hydra, config_name, overrides)
            if cfg.hydra.mode is not None:
                return cfg.hydra.mode
            line = "hydra.mode=RUN"  # what Hydra adds to the overrides before it composes the run's config
            with open_dict(cfg):
                cfg.hydra.mode = RunMode.RUN
                cfg.hydra.overrides.hydra.append(line)
            once.kept = ((config_name, (*overrides, line)), cfg)
            return None

        def compose_once(hydra: Any, config_name: str | None, overrides: list[str], run_mode: Any,
                         with_log_configuration: bool = False, **options: Any) -> DictConfig:
            kept, once.kept = once.kept, None
            if kept is not None and run_mode == RunMode.RUN and kept[0] == (config_name, tuple(overrides)):
                if with_log_configuration:  # (what Hydra's compose_config does with it)
                    import logging

                    from hydra._internal import hydra as module
                    from hydra.core.utils import configure_log

                    configure_log(kept[1].hydra.hydra_logging, kept[1].hydra.verbose)
                    module.log = logging.getLogger(module.__name__)
                return kept[1]
            return compose(hydra, config_name=config_name, overrides=overrides, run_mode=run_mode,
                           with_log_configuration=with_log_configuration, **options)

        get_mode_once.hydras, compose_once.hydras = get_mode, compose  # type: ignore[attr-defined]
        Hydra.get_mode, Hydra.compose_config = get_mode_once, compose_once
