"""One job of ``python -m optlab``: a run, or one run per start point, into Hydra's output directory."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.stopping import Stop, verdict
from ..errors import ConfigError, NotApplicable
from ..interrupts import interrupt_signals
from ..objectives.base import Objective
from ..rundir.layout import start_dir_name
from ..solvers.base import Solver
from .config import JobConfig
from .scoring import score

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130



def run_starts(job_dir: str | Path, objective: Objective, solver: Solver, points: np.ndarray, stop: Stop,
               spec: dict[str, Any], *, extra: dict[str, Any] | None = None,
               finished: Callable[[Path], dict[str, Any] | None] | None = None,
               **store_options: Any) -> list[dict[str, Any]]:
    """Run ``solver`` from every row of ``points``, each into ``job_dir/start_NNN/``.

    Each run is a run like any other (its own run id, ``run.json`` and iterates) whose record
    also holds ``start`` (the ``spec`` of the starts, with this start's index and the count).
    ``finished(dir)`` returns the record of a start already complete there (it is then kept,
    not run again), so a resumed job redoes only what is missing. The remaining starts go to
    :func:`optlab.batch.run_batch_to_dirs`: all at once when the solver and objective have a
    batched form (gradient descent at a constant rate), else one after the other.
    """
    from ..engine.batch import run_batch_to_dirs

    job_dir = Path(job_dir)
    dirs = [job_dir / start_dir_name(i, len(points)) for i in range(len(points))]
    records = [finished(d) if finished is not None else None for d in dirs]
    todo = [i for i, r in enumerate(records) if r is None]
    if todo:
        extras = [{**(extra or {}), "start": {**spec, "index": i, "count": len(points)}} for i in todo]
        ran = run_batch_to_dirs([dirs[i] for i in todo], objective, solver, np.asarray(points)[todo], stop,
                                extras=extras, **store_options)
        for i, record in zip(todo, ran):
            records[i] = record
    return records


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

    from ..rundir.layout import RECORD
    from ..rundir.lock import LockHeld, locked
    from ..rundir.store import read_finished, write_invalid
    from .config import read_config, settings_key
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
    from ..rundir.store import read_finished
    from .job import run_starts

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
    from ..rundir.store import run_to_dir

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
