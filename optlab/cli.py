"""``python -m optlab``: the thin Hydra layer over :func:`optlab.store.run_to_dir`.

Hydra composes the config; this module turns it into an objective, a solver and
stopping rules, runs, and prints a summary. A user's mistake ends in one line on
stderr and exit code 2 (``HYDRA_FULL_ERROR=1`` shows the traceback instead).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import hydra_callbacks
from .errors import ConfigError, NotApplicable, check_number
from .objectives.base import Objective
from .solvers.base import Solver
from .stopping import FAILURES, Stop

EXIT_USAGE = 2
PLUGIN_BASES = {"objective": Objective, "solver": Solver}
EXIT_INTERRUPTED = 130
_show_traceback = [False]  # set by main() from HYDRA_FULL_ERROR


def config_dir() -> str:
    """The packaged configs (``optlab/conf``) or, in a source checkout, the top-level ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"optlab's configs are missing: neither {here / 'conf'} nor {here.parent / 'conf'}")


# One id per process, cached by OmegaConf like ${now:}, so two sweeps started in the same
# second get different directories while the jobs of one sweep agree on theirs.
OmegaConf.register_new_resolver("optlab.uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)


def build_plugins(cfg: DictConfig) -> tuple[Objective, Solver, Stop]:
    """The objective, the solver and the stopping rules of a composed config."""
    stop = Stop(**OmegaConf.to_container(cfg.stop, resolve=True))
    return build("objective", cfg.objective), build("solver", cfg.solver), stop


def build(group: str, node: DictConfig) -> Any:
    """Instantiate a plugin from its config node, naming bad options in one line."""
    options = OmegaConf.to_container(node, resolve=True)
    target = options.pop("_target_", None)
    if not target:
        raise ConfigError(f"{group} has no _target_; allowed: a config with _target_: package.module.Class")
    module_name, _, class_name = str(target).rpartition(".")
    try:  # imported here rather than by Hydra, which logs a multi-line error first
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # noqa: BLE001 - a missing module, a typo, or an error inside the user's module
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"{group}._target_={target!r} cannot be imported ({reason}); allowed: a class "
                          "importable from the working directory, PYTHONPATH or an installed package") from None
    base = PLUGIN_BASES[group]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        # Only plugin classes are called: a config cannot name an arbitrary function to run.
        raise ConfigError(f"{group}._target_={target!r} is not a {group} class; allowed: a subclass of "
                          f"{base.__module__.rsplit('.', 1)[0]}.{base.__name__}")
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in options:
            if key not in params:
                allowed = ", ".join(params) or "none"
                raise ConfigError(f"{group}.{key} is not an option of {group} {target}; allowed: {allowed}")
    return cls(**options)


def _task(cfg: DictConfig) -> float | None:
    from .store import RECORD, read_finished, write_invalid

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    sweeping = hc.mode == RunMode.MULTIRUN
    prefix = f"[{hc.job.num}] " if sweeping else ""
    overrides = list(hc.overrides.task)
    if sweeping:
        done = read_finished(out_dir, overrides)
        if done is not None:
            print(f"{prefix}already complete ({done['status']}), skipped: {out_dir}")
            return _score([done])
    extra = {"overrides": overrides, "choices": {k: hc.runtime.choices.get(k) for k in ("objective", "solver")}}
    try:
        if cfg.get("starts") is not None:
            return _run_starts(cfg, out_dir, extra, sweeping, prefix)
        record = _configure_and_run(cfg, out_dir, extra, progress=not sweeping)
    except ConfigError as exc:
        if not sweeping:
            _fail(exc)
        not_applicable = isinstance(exc, NotApplicable)
        write_invalid(out_dir, str(exc), extra, not_applicable=not_applicable)
        print(f"{prefix}{'not applicable' if not_applicable else 'invalid configuration'}: {exc}", file=sys.stderr)
        return _score([])
    except OSError as exc:  # a full disk or a read-only folder: say where, keep the sweep going
        if not sweeping:
            _fail(f"cannot write the run to {out_dir}: {exc}", code=1)
        print(f"{prefix}error: cannot write the run to {out_dir}: {exc}", file=sys.stderr)
        return _score([])
    except KeyboardInterrupt:  # outside the iterations (which end the run as interrupted): before or after
        print(f"{prefix}interrupted: {out_dir}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    _summary(record, out_dir / RECORD, prefix=prefix)
    if record["status"] == "interrupted":
        sys.exit(EXIT_INTERRUPTED)  # Ctrl-C stops a sweep too; a re-run resumes it
    return _score([record])


def _score(records: list[dict[str, Any]]) -> float:
    """A job's value for a sweeper such as Optuna: the median final gap f - f* (f when f* is
    unknown) over its runs; inf for a run that diverged, failed or was invalid."""
    values = sorted(_run_score(r) for r in records)
    if not values:
        return float("inf")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


def _run_score(record: dict[str, Any]) -> float:
    value = record.get("gap") if record.get("gap") is not None else record.get("f_final")
    ok = value is not None and record.get("status") not in FAILURES
    return float(value) if ok else float("inf")


def _run_starts(cfg: DictConfig, out_dir: Path, extra: dict[str, Any], sweeping: bool, prefix: str) -> float:
    """``starts=grid|random|list``: one solver from many start points, one run dir per start."""
    from .starts import run_starts, start_points
    from .store import read_finished

    objective, solver, stop = build_plugins(cfg)
    if cfg.x0 is not None:
        raise ConfigError(f"x0={OmegaConf.to_container(cfg.x0) if OmegaConf.is_config(cfg.x0) else cfg.x0} "
                          "is given together with starts; allowed: one of x0 and starts")
    spec = OmegaConf.to_container(cfg.starts, resolve=True)
    if not isinstance(spec, dict):
        raise ConfigError(f"starts={spec!r} is not a starts config; allowed: starts=grid, random or list")
    options = {k: v for k, v in spec.items() if k != "kind"}
    known = ("n", "seed", "points", "box")
    for key in options:
        if key not in known:
            raise ConfigError(f"starts.{key} is not an option of starts; allowed: kind, {', '.join(known)}")
    points = start_points(objective, spec.get("kind"), **options)
    finished = (lambda d: read_finished(d, extra["overrides"])) if sweeping else None
    records = run_starts(out_dir, objective, solver, points, stop, spec, extra=extra, finished=finished,
                         max_coords=check_number("log.max_coords", cfg.log.max_coords, low=0, strict=False,
                                                 integer=True),
                         chunk_rows=check_number("log.chunk_rows", cfg.log.chunk_rows, low=1, strict=False,
                                                 integer=True))
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"{prefix}{solver.name} on {objective.name} from {len(records)} starts ({spec.get('kind')}): {shown}\n"
          f"  log: {out_dir}", flush=True)
    if "interrupted" in counts:
        sys.exit(EXIT_INTERRUPTED)
    return _score(records)


def _configure_and_run(cfg: DictConfig, out_dir: Path, extra: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Build the run from the composed config (raising ConfigError) and run it into ``out_dir``."""
    from .store import run_to_dir

    objective, solver, stop = build_plugins(cfg)
    x0 = OmegaConf.to_container(cfg.x0) if OmegaConf.is_config(cfg.x0) else cfg.x0
    if isinstance(x0, str):
        raise ConfigError(f"x0={x0!r} is not a list of numbers; allowed: null or a list like [0,2]")
    max_coords = check_number("log.max_coords", cfg.log.max_coords, low=0, strict=False, integer=True)
    chunk_rows = check_number("log.chunk_rows", cfg.log.chunk_rows, low=1, strict=False, integer=True)
    bar = _progress_bar(stop.max_iter, enabled=progress)
    try:
        return run_to_dir(out_dir, objective, solver, x0, stop, max_coords=max_coords,
                          chunk_rows=chunk_rows, extra=extra, progress=bar)
    finally:
        if bar is not None:
            bar.close()


def _fail(exc: BaseException | str, code: int = EXIT_USAGE) -> None:
    """Exit with one line; raised through Hydra as SystemExit, which it does not intercept."""
    if _show_traceback[0] and isinstance(exc, BaseException):
        raise exc
    print(f"optlab: error: {exc}", file=sys.stderr)
    sys.exit(code)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not (enabled and sys.stderr.isatty() and total >= 1000):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="it", leave=False, mininterval=0.25, dynamic_ncols=True)


def _fmt_vec(x: list[float | None], limit: int = 6) -> str:
    shown = ", ".join("nan" if v is None else f"{v:.10g}" for v in x[:limit])
    return f"[{shown}{', ...' if len(x) > limit else ''}]"


def _summary(record: dict[str, Any], where: Path, prefix: str = "") -> None:
    f = record.get("f_final")
    gap = record.get("gap")
    lines = [
        f"{prefix}{record['solver']} on {record['objective']}: {record['status']} after "
        f"{record['iterations']} iterations ({record['message']})",
        f"  x = {_fmt_vec(record['x_final'])}",
        f"  f = {'nan' if f is None else f'{f:.10g}'}"
        + ("" if gap is None else f"   f - f* = {gap:.3g}"),
        f"  log: {where.parent}",
    ]
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # output piped into `head`: the run is saved, stop printing quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


_hydra_main = hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")(_task)


def _one_line(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages as one line that names the bad value."""
    text = str(exc)
    missing = re.search(r"Could not find '(\w+)/([^']*)'.*Available options in '\w+':\n(.*?)"
                        r"(\nConfig search path|\n\n|$)", text, re.S)
    if missing:
        group, name, options = missing.groups()[:3]
        allowed = ", ".join(options.split())
        return f"{group}={name!r} is unknown; allowed: {allowed}"
    not_struct = re.search(r"Could not override '([^']+)'", text)
    if not_struct and "is not in struct" in f"{text} {exc.__cause__}":
        key = not_struct.group(1)
        return f"{key} is not an option; allowed: {_allowed_keys(key)} (add a new key with +{key}=...)"
    ambiguous = re.match(r"Ambiguous value for argument '(.*)'\n", text)
    if ambiguous:
        return (f"{ambiguous.group(1)} is ambiguous; allowed: a list key=[a,b], a quoted string key='a,b', "
                "or a sweep over the values with -m")
    if isinstance(exc, OverrideParseException):
        return (f"cannot parse the override {exc.override!r}; allowed: KEY=VALUE with a number, a word, "
                "a quoted string or a list like [0,2] (see python -m optlab --help)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("    ")]
    return "; ".join(lines) or type(exc).__name__


def _allowed_keys(key: str) -> str:
    """The keys next to ``key`` in the default config (best effort, for the message)."""
    from hydra import compose, initialize_config_dir

    parent = key.rsplit(".", 1)[0] if "." in key else ""
    choices = [a for a in sys.argv[1:] if re.match(r"^(objective|solver)=[^,]+$", a)]
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("config", overrides=choices)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [k for k in node.keys() if k != "_target_"] if isinstance(node, DictConfig) else []
    except Exception:  # noqa: BLE001 - only for the message
        keys = []
    return ", ".join(keys) if keys else "see python -m optlab --help"


def main() -> None:
    """Console entry: run Hydra, turning user mistakes into one line and exit code 2."""
    if os.getcwd() not in sys.path:  # user plugins in the working directory, as with python -m
        sys.path.insert(0, os.getcwd())
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    _show_traceback[0] = user_setting == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's printer
    hydra_callbacks.last_sweep_problems.clear()
    try:
        _hydra_main()
    except (ConfigError, HydraException, OmegaConfBaseException) as exc:
        if _show_traceback[0]:
            raise
        message = str(exc) if isinstance(exc, ConfigError) else _one_line(exc)
        print(f"optlab: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    else:
        if any(hydra_callbacks.last_sweep_problems):
            sys.exit(1)
    finally:
        if user_setting is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = user_setting
