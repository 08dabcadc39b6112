"""One job of ``python -m optlab``: a run, or one run per start point, into Hydra's output directory.

A job reads its config (:mod:`optlab.app.config`), runs its starts as one set
(:func:`optlab.engine.run_set.run_set`, each run kept in a run directory) and prints a summary.
In a sweep, whatever stops a job is recorded as its status (``invalid``, ``error``) and the sweep
goes on; alone, a mistake ends the process in one line (exit 2; 1 for other failures).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.run_set import run_set
from ..engine.stopping import verdict
from ..errors import ConfigError, NotApplicable
from ..interrupts import interrupt_signals
from ..rundir.layout import STOPPED, start_dir_name
from ..rundir.lock import LockHeld, locked
from ..rundir.store import RunDirs, RunExists, read_finished, write_invalid
from .config import JobConfig, read_config, settings_key
from .scoring import score
from .sweep import job_dir, read_sweep_id, swept

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def task(cfg: Any, show_traceback: bool) -> float | None:
    """Run the job of the composed config ``cfg``; its score (:func:`optlab.app.scoring.score`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    sweeping = hc.mode == RunMode.MULTIRUN
    prefix = f"[{hc.job.num}] " if sweeping else ""
    say = job_messages(out_dir)
    extra: dict[str, Any] = {"overrides": list(hc.overrides.task),
                             "choices": {k: hc.runtime.choices.get(k) for k in ("objective", "solver")}}
    where = out_dir

    def failed(exc: BaseException, text: str, code: int, status: str | None) -> float:
        if not sweeping:
            _fail(exc, code, show_traceback)
        if status is not None:
            with contextlib.suppress(OSError):
                write_invalid(where, str(exc), extra, not_applicable=isinstance(exc, NotApplicable), status=status)
        say(f"{prefix}{text}", error=True)
        return score([])

    with interrupt_signals():
        try:
            if sweeping and (out_dir.parent / STOPPED).exists():  # the sweep was stopped before this job began
                say(f"{prefix}not run: the sweep was stopped", error=True)
                return score([])
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
                job = read_config(cfg, cwd=hc.runtime.cwd, choices=dict(hc.runtime.choices))
                records, not_run = run_job(job, where, extra, key if sweeping else None, progress=not sweeping)
        except RunExists as exc:  # never replaced, and nothing written over it
            return failed(exc, f"error: {exc}", EXIT_USAGE, None)
        except ConfigError as exc:
            text = "not applicable" if isinstance(exc, NotApplicable) else "invalid configuration"
            return failed(exc, f"{text}: {exc}", EXIT_USAGE, "invalid")
        except LockHeld as exc:  # another process writes there: nothing of it is touched
            return failed(exc, f"error: {exc}", 1, None)
        except OSError as exc:  # a full disk or a read-only folder: say where, keep the sweep going
            exc = OSError(f"cannot write the run to {where}: {exc}")
            return failed(exc, f"error: {exc}", 1, None)
        except KeyboardInterrupt:  # outside the iterations (which end the run as interrupted): before or after
            say(f"{prefix}interrupted: {where}", error=True)
            sys.exit(EXIT_INTERRUPTED)
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - a job's failure is its status, not a crash
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            if not sweeping and show_traceback:
                raise
            return failed(RuntimeError(text), f"error: {text}", 1, "error")
    varied = swept(list(hc.overrides.task), out_dir.parent, hc.sweeper.get("params")) if sweeping else []
    settings = f" ({' '.join(varied)})" if varied else ""
    summary(job, records, not_run, where, prefix, settings, say)
    if not_run or any(r["status"] == "interrupted" for r in records):
        say(f"{prefix}interrupted: {where}", error=True)  # (the runs are on record there)
        sys.exit(EXIT_INTERRUPTED)  # Ctrl-C stops a sweep too; a re-run resumes it
    return score(records)


def _chosen(points: Any, todo: list[int]) -> Any:
    """The start points still to run: rows of the checked array of a job's starts (checked again
    as a whole only), or the one x0 as given (checked once, by the run)."""
    return points[todo] if hasattr(points, "shape") else [points[i] for i in todo]


def run_job(job: JobConfig, where: Path, extra: dict[str, Any], resume_key: str | None, progress: bool
            ) -> tuple[list[dict[str, Any]], int]:
    """The job's runs, kept in ``where`` (one run) or ``where/start_NNN`` (one per start): their
    final records, and how many starts were not run (Ctrl-C came first). With ``resume_key``,
    starts already finished with those settings are kept, not run again."""
    if job.starts is None:
        dirs, points, extras = [where], None if job.x0 is None else [job.x0], [extra]
    else:
        all_points = job.start_points()
        dirs = [where / start_dir_name(i, len(all_points)) for i in range(len(all_points))]
        extras = [{**extra, "start": {**job.starts, "index": i, "count": len(all_points)}} for i in range(len(dirs))]
        points = all_points  # (rows checked as the job's start points were made: checked as a whole after)
    kept = {i: r for i, r in enumerate(read_finished(d, resume_key) for d in dirs) if r is not None} \
        if resume_key is not None else {}
    todo = [i for i in range(len(dirs)) if i not in kept]
    records = dict(kept)
    if todo:
        sinks = RunDirs([dirs[i] for i in todo], [extras[i] for i in todo], job.log.chunk_rows, job.overwrite)
        bar = _progress_bar(job.stop.max_iter, enabled=progress and len(todo) == 1)
        try:
            run_set(job.objective, job.solver, None if points is None else _chosen(points, todo), job.stop,
                    sinks, log=job.log, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        records.update({todo[j]: record for j, record in sinks.records.items()})
    return [records[i] for i in sorted(records)], len(dirs) - len(records)


def summary(job: JobConfig, records: list[dict[str, Any]], not_run: int, where: Path, prefix: str, settings: str,
            say: Callable[..., None]) -> None:
    """A run's status, x, f and where its log is; for many starts, how they ended. ``settings``
    follows the names of the solver and objective (a sweep job's own overrides)."""
    if job.starts is None and records:
        record = records[0]
        f, gap = record.get("f_final"), record.get("gap")
        lines = [f"{prefix}{record['solver']} on {record['objective']}{settings}: {record['status']} after "
                 f"{record['iterations']} iterations ({record['message']})",
                 f"  x = {_fmt_vec(record['x_final'])}",
                 f"  f = {'nan' if f is None else f'{f:.10g}'}" + ("" if gap is None else f"   f - f* = {gap:.3g}"),
                 f"  log: {where}"]
    else:
        counts: dict[str, int] = {}
        for r in records:
            counts[verdict(r)] = counts.get(verdict(r), 0) + 1
        if not_run:
            counts["not run"] = not_run
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        total = len(records) + not_run
        kind = (job.starts or {}).get("kind")
        lines = [f"{prefix}{job.solver.name} on {job.objective.name}{settings} from {total} starts ({kind}): {shown}",
                 f"  log: {where}"]
    try:
        say("\n".join(lines))
    except BrokenPipeError:  # output piped into `head`: the run is saved, stop printing quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


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


def _fail(exc: BaseException, code: int, show_traceback: bool) -> None:
    """End the process with one line; SystemExit passes through Hydra, which would otherwise
    print its own banner first."""
    if show_traceback:
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


__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "job_messages", "run_job", "summary", "task"]
