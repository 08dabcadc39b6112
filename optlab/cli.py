"""``python -m optlab``: the thin Hydra layer over :func:`optlab.store.run_to_dir`.

Hydra composes the config; :func:`optlab.config.read_config` turns it into a job, which runs
into Hydra's output directory, and a summary is printed. A user's mistake ends in one line on
stderr and exit code 2 (``HYDRA_FULL_ERROR=1`` shows the traceback instead).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import JobConfig, read_config
from .errors import ConfigError, NotApplicable
from .scoring import score
from .stopping import verdict

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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


def _task(cfg: DictConfig, show_traceback: bool) -> float | None:
    """One job: a run, or one run per start point. In a sweep a rejected job is recorded and
    the sweep goes on; alone it ends the process (one line, exit 2)."""
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
            return score([done])
    extra = {"overrides": overrides, "choices": {k: hc.runtime.choices.get(k) for k in ("objective", "solver")}}
    try:
        job = read_config(cfg)
        if job.starts is not None:
            return _run_starts(job, out_dir, extra, sweeping, prefix)
        record = _run_one(job, out_dir, extra, progress=not sweeping)
    except ConfigError as exc:
        if not sweeping:
            _fail(exc, EXIT_USAGE, show_traceback)
        not_applicable = isinstance(exc, NotApplicable)
        write_invalid(out_dir, str(exc), extra, not_applicable=not_applicable)
        print(f"{prefix}{'not applicable' if not_applicable else 'invalid configuration'}: {exc}", file=sys.stderr)
        return score([])
    except OSError as exc:  # a full disk or a read-only folder: say where, keep the sweep going
        if not sweeping:
            _fail(OSError(f"cannot write the run to {out_dir}: {exc}"), 1, show_traceback)
        print(f"{prefix}error: cannot write the run to {out_dir}: {exc}", file=sys.stderr)
        return score([])
    except KeyboardInterrupt:  # outside the iterations (which end the run as interrupted): before or after
        print(f"{prefix}interrupted: {out_dir}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    _summary(record, out_dir / RECORD, prefix=prefix)
    if record["status"] == "interrupted":
        sys.exit(EXIT_INTERRUPTED)  # Ctrl-C stops a sweep too; a re-run resumes it
    return score([record])


def _fail(exc: BaseException, code: int, show_traceback: bool) -> None:
    """End the process with one line; SystemExit passes through Hydra, which would otherwise
    print its own banner first."""
    if show_traceback:
        raise exc
    print(f"optlab: error: {exc}", file=sys.stderr)
    sys.exit(code)


def _run_starts(job: JobConfig, out_dir: Path, extra: dict[str, Any], sweeping: bool, prefix: str) -> float:
    """``starts=grid|random|list``: one solver from many start points, one run dir per start."""
    from .starts import run_starts
    from .store import read_finished

    finished = (lambda d: read_finished(d, extra["overrides"])) if sweeping else None
    records = run_starts(out_dir, job.objective, job.solver, job.start_points(), job.stop, job.starts, extra=extra,
                         finished=finished, max_coords=job.max_coords, chunk_rows=job.chunk_rows)
    counts: dict[str, int] = {}
    for r in records:
        counts[verdict(r)] = counts.get(verdict(r), 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"{prefix}{job.solver.name} on {job.objective.name} from {len(records)} starts ({job.starts.get('kind')}): "
          f"{shown}\n  log: {out_dir}", flush=True)
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


def main() -> None:
    """Console entry: run Hydra, turning user mistakes into one line and exit code 2. A sweep
    whose jobs could not all run exits 1 (:class:`optlab.hydra_callbacks.SweepSummary`)."""
    from .hydra_errors import one_line

    if os.getcwd() not in sys.path:  # user plugins in the working directory, as with python -m
        sys.path.insert(0, os.getcwd())
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions reach us instead of Hydra's printer

    def optlab(cfg: DictConfig) -> float | None:
        return _task(cfg, show_traceback=user_setting == "1")

    try:
        hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")(optlab)()
    except (ConfigError, HydraException, OmegaConfBaseException) as exc:
        if user_setting == "1":
            raise
        message = str(exc) if isinstance(exc, ConfigError) else one_line(exc, config_dir())
        print(f"optlab: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    finally:
        if user_setting is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = user_setting
