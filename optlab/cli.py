"""``python -m optlab``: the thin Hydra layer over :func:`optlab.store.run_to_dir`.

Hydra composes the config; :func:`optlab.config.read_config` turns it into a job, which runs
into Hydra's output directory, and a summary is printed. A user's mistake ends in one line on
stderr and exit code 2 (``HYDRA_FULL_ERROR=1`` shows the traceback instead).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .config import JobConfig
from .errors import ConfigError, NotApplicable
from .scoring import score
from .stopping import verdict

EXIT_USAGE = 2
SWEEPER = "hydra_plugins.optlab_sweeper.optlab_sweeper.OptlabSweeper"
EXIT_INTERRUPTED = 130


def config_dir() -> str:
    """The packaged configs (``optlab/conf``) or, in a source checkout, the top-level ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"optlab's configs are missing: neither {here / 'conf'} nor {here.parent / 'conf'}")


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    # One id per process, cached by OmegaConf like ${now:}, so two sweeps started in the same
    # second get different directories while the jobs of one sweep agree on theirs.
    OmegaConf.register_new_resolver("optlab.uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)


def _terminate(number: int, frame: Any) -> None:
    """SIGTERM (timeout, a batch system's time limit, docker stop) ends a run as Ctrl-C does:
    status interrupted, every iterate counted kept."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and the sweep's stop signal (:data:`optlab.log.STOP_SIGNAL`) raise
    KeyboardInterrupt in the block, also in a launcher's worker process that ignores Ctrl-C
    (joblib's), so its job records ``interrupted``. Only the first does: a job often gets two
    (a terminal's Ctrl-C to its process group, then the sweep's stop signal), and a second one
    while the job ends would leave its record unwritten."""
    from .log import STOP_SIGNAL

    raised = False

    def first_only(number: int, frame: Any) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise KeyboardInterrupt

    previous = {}
    try:
        for number in dict.fromkeys((signal.SIGINT, signal.SIGTERM, STOP_SIGNAL)):
            previous[number] = signal.signal(number, first_only)
    except ValueError:  # not the main thread: signals are not delivered here anyway
        pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def job_messages(out_dir: Path) -> Callable[..., None]:
    """``say(text, error=False)``: print a job's message (stderr for errors) and put it in the
    job's log file, Hydra's ``JOB/NAME.log`` (not on the console twice)."""
    logger = logging.getLogger("optlab.job")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]

    def say(text: str, error: bool = False) -> None:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
        logger.log(logging.WARNING if error else logging.INFO, text)

    return say


def _task(cfg: Any, show_traceback: bool) -> float | None:
    """One job: a run, or one run per start point. In a sweep, whatever stops a job is recorded
    as its status (``invalid``, ``error``) and the sweep goes on; alone, it ends the process in
    one line (exit 2 for a mistake in the command, 1 otherwise)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .config import read_config, settings_key
    from .lock import LockHeld, locked
    from .store import RECORD, read_finished, write_invalid
    from .sweep import job_dir, read_sweep_id

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    sweeping = hc.mode == RunMode.MULTIRUN
    prefix = f"[{hc.job.num}] " if sweeping else ""
    say = job_messages(out_dir)
    extra: dict[str, Any] = {"overrides": list(hc.overrides.task),
                             "choices": {k: hc.runtime.choices.get(k) for k in ("objective", "solver")}}
    where = out_dir
    with interrupt_signals():
        try:
            extra["settings_key"] = key = settings_key(cfg)
            if sweeping:  # (the sweep's folder: a worker process may resolve hydra.sweep.dir anew)
                extra["sweep_id"] = read_sweep_id(out_dir.parent)
                where = job_dir(out_dir.parent, out_dir, key)
                if where != out_dir:
                    say(f"{prefix}runs of these settings are kept in {where}")
            with locked(where):
                if sweeping:
                    done = read_finished(where, key)
                    if done is not None:
                        say(f"{prefix}already complete ({done['status']}), skipped: {where}")
                        return score([done])
                job = read_config(cfg, cwd=hc.runtime.cwd)
                if job.starts is not None:
                    return _run_starts(job, where, extra, sweeping, prefix, say)
                record = _run_one(job, where, extra, progress=not sweeping)
        except ConfigError as exc:
            if not sweeping:
                _fail(exc, EXIT_USAGE, show_traceback)
            not_applicable = isinstance(exc, NotApplicable)
            write_invalid(where, str(exc), extra, not_applicable=not_applicable)
            say(f"{prefix}{'not applicable' if not_applicable else 'invalid configuration'}: {exc}", error=True)
            return score([])
        except LockHeld as exc:  # another process writes there: nothing of it is touched
            if not sweeping:
                _fail(exc, 1, show_traceback)
            say(f"{prefix}error: {exc}", error=True)
            return score([])
        except OSError as exc:  # a full disk or a read-only folder: say where, keep the sweep going
            if not sweeping:
                _fail(OSError(f"cannot write the run to {where}: {exc}"), 1, show_traceback)
            say(f"{prefix}error: cannot write the run to {where}: {exc}", error=True)
            return score([])
        except KeyboardInterrupt:  # outside the iterations (which end the run as interrupted): before or after
            say(f"{prefix}interrupted: {where}", error=True)
            sys.exit(EXIT_INTERRUPTED)
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - a job's failure is its status, not a crash
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            if not sweeping:
                _fail(RuntimeError(text), 1, show_traceback, exc)
            with contextlib.suppress(OSError):
                write_invalid(where, text, extra, status="error")
            say(f"{prefix}error: {text}", error=True)
            return score([])
    _summary(record, where / RECORD, prefix=prefix, say=say)
    if record["status"] == "interrupted":
        sys.exit(EXIT_INTERRUPTED)  # Ctrl-C stops a sweep too; a re-run resumes it
    return score([record])


def _fail(exc: BaseException, code: int, show_traceback: bool, cause: BaseException | None = None) -> None:
    """End the process with one line; SystemExit passes through Hydra, which would otherwise
    print its own banner first."""
    if show_traceback:
        raise (cause or exc)
    print(f"optlab: error: {exc}", file=sys.stderr)
    sys.exit(code)


def _run_starts(job: JobConfig, out_dir: Path, extra: dict[str, Any], sweeping: bool, prefix: str,
                say: Callable[..., None]) -> float:
    """``starts=grid|random|list``: one solver from many start points, one run dir per start."""
    from .starts import run_starts
    from .store import read_finished

    finished = (lambda d: read_finished(d, extra["settings_key"])) if sweeping else None
    records = run_starts(out_dir, job.objective, job.solver, job.start_points(), job.stop, job.starts, extra=extra,
                         finished=finished, max_coords=job.max_coords, chunk_rows=job.chunk_rows)
    counts: dict[str, int] = {}
    for r in records:
        counts[verdict(r)] = counts.get(verdict(r), 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    say(f"{prefix}{job.solver.name} on {job.objective.name} from {len(records)} starts ({job.starts.get('kind')}): "
        f"{shown}\n  log: {out_dir}")
    if "interrupted" in counts:
        sys.exit(EXIT_INTERRUPTED)
    return score(records)


def _run_one(job: JobConfig, out_dir: Path, extra: dict[str, Any], progress: bool) -> dict[str, Any]:
    from .store import run_to_dir

    bar = _progress_bar(job.stop.max_iter, enabled=progress)
    try:
        return run_to_dir(out_dir, job.objective, job.solver, job.x0, job.stop, max_coords=job.max_coords,
                          chunk_rows=job.chunk_rows, extra=extra, progress=bar, log_grad_norm=job.log_grad_norm)
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total: int, enabled: bool) -> Any:
    if not (enabled and sys.stderr.isatty() and total >= 1000):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="it", leave=False, mininterval=0.25, dynamic_ncols=True)


def _fmt_vec(x: list[float | None], limit: int = 6) -> str:
    shown = ", ".join("nan" if v is None else f"{v:.10g}" for v in x[:limit])
    return f"[{shown}{', ...' if len(x) > limit else ''}]"


def _summary(record: dict[str, Any], where: Path, prefix: str = "", say: Callable[..., None] | None = None) -> None:
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
        (say or print)("\n".join(lines))
    except BrokenPipeError:  # output piped into `head`: the run is saved, stop printing quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main() -> None:
    """Console entry: run Hydra, turning user mistakes into one line and exit code 2. A sweep
    whose jobs could not all run exits 1 (:class:`optlab.hydra_callbacks.SweepSummary`); Ctrl-C
    and SIGTERM end it with 130."""
    if "--version" in sys.argv[1:]:  # (Hydra's own --version would show Hydra's)
        from . import __version__

        print(f"optlab {__version__}")
        return
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _main(user_setting)
    except KeyboardInterrupt:  # at start-up, or between jobs
        if user_setting == "1":
            raise
        print("optlab: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)
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

    from .hydra_errors import one_line
    from .hydra_guard import install
    from .lock import LockHeld

    register_resolvers()
    install()
    _register_sweeper()
    if os.getcwd() not in sys.path:  # user plugins in the working directory, as with python -m
        sys.path.insert(0, os.getcwd())
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's printer

    def optlab(cfg: Any) -> float | None:
        return _task(cfg, show_traceback=user_setting == "1")

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
