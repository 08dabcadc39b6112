"""Building the report folder: read, tables, figures (in parallel processes when there are many),
page; a line per stage on stderr; nothing drawn again when the runs have not changed.

The folder holds ``report.json`` with a content hash of every run record and iterate file read
(and of the report's options). When a new build finds the same hash and the files of the last
build, it keeps them (a resumed sweep whose jobs were all skipped does not redraw its report).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

STAMP = "report.json"
PARALLEL_MIN_FIGURES = 8


class ReportError(ValueError):
    """Nothing to report (a missing path, no runs), or options that make no sense: one line."""


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = self.last = time.perf_counter()

    def __call__(self, message: str, timed: bool = True) -> None:
        """``message``, with the seconds since the last line (the stage it ends) when ``timed``."""
        now = time.perf_counter()
        if self.enabled:
            took = f" in {now - self.last:.1f} s" if timed else ""
            print(f"optlab.report: {message}{took}", file=sys.stderr, flush=True)
        if timed:
            self.last = now

    @property
    def total(self) -> float:
        return time.perf_counter() - self.t0


def _functions() -> dict[str, Any]:
    from .basins import basin_figure
    from .convergence import convergence_figure
    from .heatmap import heatmap_figure
    from .landscape import path_figure
    from .profiles import outcome_figure, profile_figure
    from .stats_figures import FIGURES as comparison_figures

    return {f.__name__: f for f in (convergence_figure, path_figure, heatmap_figure, basin_figure, profile_figure,
                                    outcome_figure)} | comparison_figures


def tasks_of(data: Any, max_paths: int) -> list[tuple[Any, str, dict[str, Any]]]:
    """Every figure of the report as ``(plot, function name, keyword arguments)``, in page order."""
    from .basins import basin_tasks
    from .comparisons import comparison_tasks
    from .convergence import convergence_tasks
    from .heatmap import heatmap_tasks
    from .landscape import path_tasks
    from .profiles import profile_tasks

    if data.valid.empty:
        return []
    return (profile_tasks(data) + convergence_tasks(data) + path_tasks(data, max_paths) + heatmap_tasks(data)
            + basin_tasks(data) + comparison_tasks(data))


_SHARED: dict[str, Any] = {}  # the data, tasks and options, inherited by forked workers


def _draw(i: int) -> tuple[int, list[str], dict[str, Any]]:
    """Figure i drawn and saved: its files, and its size and linked areas in pixels (see :mod:`.links`)."""
    import numpy as np

    from .links import areas
    from .style import save

    data, tasks, out_dir, svg = _SHARED["args"]
    plot, name, kwargs = tasks[i]
    with np.errstate(all="ignore"):
        fig = _functions()[name](data, **kwargs)
        files = save(fig, out_dir, plot.name, svg)
        return i, files, {"size": (fig.bbox.width, fig.bbox.height), "areas": areas(fig)}


def _workers(n_tasks: int, jobs: int | None) -> int:
    if jobs is not None:
        return max(1, int(jobs))
    if n_tasks < PARALLEL_MIN_FIGURES or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, n_tasks // 4))


def draw_all(data: Any, tasks: list, out_dir: Path, svg: bool, jobs: int | None, progress: Progress
             ) -> tuple[list[str], dict[str, Any]]:
    """Every figure: the files written, and each figure's size and linked areas by file stem."""
    files: list[str] = []
    drawn: dict[str, Any] = {}
    workers = _workers(len(tasks), jobs)
    _SHARED["args"] = (data, tasks, out_dir, svg)
    progress(f"drawing {len(tasks)} figures" + (f" in {workers} processes" if workers > 1 else "") + " ...",
             timed=False)
    try:
        if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
            for i in range(len(tasks)):
                _, written, drawn[tasks[i][0].name] = _draw(i)
                files += written
        else:
            step = max(1, math.ceil(len(tasks) / 4))
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [pool.submit(_draw, i) for i in range(len(tasks))]
                for done, future in enumerate(as_completed(futures), 1):
                    i, written, drawn[tasks[i][0].name] = future.result()
                    files += written
                    if done % step == 0 and done < len(tasks):
                        progress(f"{done} of {len(tasks)} figures drawn", timed=False)
    finally:
        _SHARED.clear()
    progress(f"{len(tasks)} figures drawn")
    return files, drawn


def _landscapes(data: Any) -> None:
    """Each drawable problem's landscape computed once, before the figures are drawn in forked processes
    (which inherit it) and the run pages."""
    from .landscape import shading

    for key in data.problem_order():
        info = data.problems[key]
        if info.plottable:
            info.surface()
            if info.dim == 2:
                shading(info)


def _written_here(name: str) -> bool:
    """Whether a file named in a report's stamp is one a build writes: a figure beside index.html, or a
    run page or chart in runs/ (so that removing it cannot touch anything else)."""
    from .links import RUNS_DIR

    parts = name.split("/") if isinstance(name, str) else []
    return (len(parts) == 1 and name.endswith((".png", ".svg"))) or \
        (len(parts) == 2 and parts[0] == RUNS_DIR and name.endswith((".html", ".svg")))


def _code_hash() -> str:
    """The report's own source: a new version of the report draws every folder again."""
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _stamp(out_dir: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((out_dir / STAMP).read_text())
        return stamp if isinstance(stamp, dict) else {}
    except (OSError, ValueError):
        return {}


def build(paths: list[Path], out: Path | None, *, tol: float, max_paths: int, cost: str, svg: bool,
          data_files: bool, jobs: int | None, force: bool, progress: bool) -> Path:
    from .data import COSTS, read, sweep_labels
    from .reader import read_sources

    say = Progress(progress)
    if not paths:
        raise ReportError("no path given")
    for p in paths:
        if not p.exists():
            raise ReportError(f"{p} does not exist")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ReportError(f"tol={tol!r} is not a number >= 0")
    if cost not in COSTS:
        raise ReportError(f"cost={cost!r}; allowed: {', '.join(COSTS)}")
    if out is None:
        if len(paths) > 1:
            raise ReportError("several paths need an output folder (--out DIR)")
        out = (paths[0] if paths[0].is_dir() else paths[0].parent) / "report"
    from .tuning_axes import declared

    salt = json.dumps([_code_hash(), tol, max_paths, cost, svg, data_files, declared(paths)])
    raw = read_sources([(p.resolve(), s) for p, s in zip(paths, sweep_labels(paths))], salt)
    say(f"read {len(raw.runs)} run records from {len(paths)} path(s)")
    if not raw.runs:
        why = "; ".join(raw.notes + raw.skipped[:3])
        raise ReportError(f"no runs found under {', '.join(str(p) for p in paths)}" + (f" ({why})" if why else ""))
    stamp = _stamp(out)
    index = out / "index.html"
    if not force and stamp.get("digest") == raw.digest and index.is_file() and \
            all((out / f).is_file() for f in stamp.get("files", [])):
        say(f"runs unchanged since the last report: kept {index}", timed=False)
        return index
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP).unlink(missing_ok=True)  # written again once the whole report is
    data = read(paths, tol=tol, cost=cost, data_files=data_files, raw=raw)
    if data.runs.empty:
        raise ReportError(f"no usable runs under {', '.join(str(p) for p in paths)}: every record was skipped")
    say(f"{len(data.traces)} runs with iterates, {len(data.runs) - len(data.traces)} without: measured")
    from .comparisons import write_comparison_tables
    from .page import write_page
    from .summary import write_tables

    runs, solvers = write_tables(data, out)
    write_comparison_tables(data, out)
    tasks = tasks_of(data, max_paths)
    say(f"tables written; {len(tasks)} figures to draw")
    _landscapes(data)
    files, drawn = draw_all(data, tasks, out, svg, jobs, say)
    from .pages import write_pages

    titles, pages = write_pages(data, out)
    files += pages
    say(f"{sum(p.endswith('.html') for p in pages)} run pages written")
    for old in set(stamp.get("files", [])) - set(files):  # files of the last build that this one has not
        if _written_here(old):
            (out / old).unlink(missing_ok=True)
    index = write_page(data, [t[0] for t in tasks], runs, solvers, out, svg=svg, drawn=drawn, titles=titles)
    (out / STAMP).write_text(json.dumps({"digest": raw.digest, "files": sorted(files)}, indent=1))
    say(f"page written: {index} (the report took {say.total:.1f} s)", timed=False)
    return index
