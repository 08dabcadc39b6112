"""``python -m optlab``: the thin Hydra layer over the jobs of :mod:`optlab.app.job`.

Hydra composes the config and hands it to :func:`optlab.app.job.task`, which runs the job into
Hydra's output directory. A user's mistake ends in one line on stderr and exit code 2
(``HYDRA_FULL_ERROR=1`` shows the traceback instead); Ctrl-C and SIGTERM, at any moment, end
the command with 130 and every started run recorded ``interrupted`` (:mod:`optlab.interrupts`).
"""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any

from ..errors import ConfigError
from ..interrupts import requested, session
from .config import config_dir
from .job import EXIT_INTERRUPTED, EXIT_USAGE, task

SWEEPER = "hydra_plugins.optlab_sweeper.optlab_sweeper.OptlabSweeper"


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    # One id per process, cached by OmegaConf like ${now:}, so two sweeps started in the same
    # second get different directories while the jobs of one sweep agree on theirs.
    OmegaConf.register_new_resolver("optlab.uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)


def main() -> None:
    """Console entry: run Hydra, turning user mistakes into one line and exit code 2. A sweep
    whose jobs could not all run exits 1 (:class:`optlab.app.callbacks.SweepSummary`); Ctrl-C
    and SIGTERM end it with 130."""
    if "--version" in sys.argv[1:]:  # (Hydra's own --version would show Hydra's)
        from .. import __version__

        print(f"optlab {__version__}")
        return
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    try:
        with session():  # (also entered by python -m optlab before this module is imported)
            _main(user_setting)
            if requested():  # a signal after the last job's run, or one a library swallowed
                raise KeyboardInterrupt
    except KeyboardInterrupt:  # at start-up, or between jobs
        if user_setting == "1":
            raise
        print("optlab: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if user_setting is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = user_setting


def _register_sweeper() -> None:
    """``hydra/sweeper=optlab`` (the default), also where Hydra's scan of ``hydra_plugins`` does
    not see it (an editable install)."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # (scans hydra_plugins, importing what it finds)
    if SWEEPER not in plugins.class_name_to_class:
        from hydra_plugins.optlab_sweeper.optlab_sweeper import OptlabSweeper

        plugins.register(OptlabSweeper)


def _main(user_setting: str | None) -> None:
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ..rundir.lock import LockHeld
    from .compose import RunComposedOnce
    from .guard import install
    from .hydra_errors import one_line

    register_resolvers()
    install()
    RunComposedOnce().install()
    _register_sweeper()
    if os.getcwd() not in sys.path:  # user plugins in the working directory, as with python -m
        sys.path.insert(0, os.getcwd())
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's printer

    def optlab(cfg: Any) -> float | None:
        return task(cfg, show_traceback=user_setting == "1")

    try:
        hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")(optlab)()
    except (ConfigError, HydraException, OmegaConfBaseException) as exc:
        if user_setting == "1":
            raise
        message = str(exc) if isinstance(exc, ConfigError) else one_line(exc, config_dir())
        print(f"optlab: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except LockHeld as exc:
        if user_setting == "1":
            raise
        print(f"optlab: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # Hydra writing the job's .hydra/ into a read-only or full folder
        if user_setting == "1":
            raise
        print(f"optlab: error: cannot write {exc.filename or 'the output'}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - raised by Hydra while composing the command's config
        if user_setting == "1":
            raise
        print(f"optlab: error: {one_line(exc, config_dir())}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
