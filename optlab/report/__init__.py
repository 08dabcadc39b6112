"""Sweep reports: ``python -m optlab.report PATH [PATH ...] [--out DIR]`` or :func:`build_report`.

Reads run directories or trees of them (safely: see :mod:`.reader`) and writes a folder with
``index.html``, every figure as PNG (and SVG on request), ``summary.csv`` (one row per run) and
``solvers.csv`` (one row per solver setting and problem).

In a notebook, :func:`read` gives the data and the ``*_figure`` functions give
``matplotlib.figure.Figure`` objects, built in the report's style without touching the caller's
matplotlib settings or backend::

    from optlab import report
    data = report.read("outputs/sweeps/...")
    fig = report.convergence_figure(data)          # f - f* against iteration
    figs = report.figures(data)                    # every figure of the page, by file name
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["basin_figure", "build_report", "convergence_figure", "figures", "heatmap_figure", "outcome_figure",
           "path_figure", "profile_figure", "read"]

_FIGURES = {
    "convergence_figure": "convergence", "path_figure": "landscape", "heatmap_figure": "heatmap",
    "basin_figure": "basins", "profile_figure": "profiles", "outcome_figure": "profiles",
}


def build_report(path: str | Path | list[str | Path], out: str | Path | None = None, *, tol: float = 1e-6,
                 max_paths: int = 25, cost: str = "evals", svg: bool = False, data_files: bool = False,
                 jobs: int | None = None, force: bool = False, progress: bool = True) -> Path:
    """Write the report of the runs under ``path`` (one path or several) into ``out``; returns index.html.

    ``out`` defaults to ``path/report`` and is required with several paths. ``tol``: a run is solved
    at its first iterate with f - f* <= tol (f(x0) - f*); ``max_paths``: paths drawn per panel at
    most; ``cost``: what profiles count, "nfev", "evals" (nfev + ngev + nhev) or "time"; ``svg``:
    SVG files besides the PNGs; ``data_files``: open data files named in run records (e.g. a
    least_squares ``data=`` path) to draw their landscape; ``jobs``: processes drawing figures
    (default: the cores, when there are many figures); ``force``: draw again even if the runs have
    not changed; ``progress``: a line per stage on stderr. Raises :class:`ReportError` (a
    ``ValueError``) when a path is missing or no run is found, before creating anything.
    """
    from .build import build

    paths = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
    return build(paths, Path(out) if out is not None else None, tol=tol, max_paths=max_paths, cost=cost, svg=svg,
                 data_files=data_files, jobs=jobs, force=force, progress=progress)


def read(path: str | Path | list[str | Path], *, tol: float = 1e-6, cost: str = "evals",
         data_files: bool = False) -> Any:
    """The report's data (runs, iterates, problems, ranking) for one path or several."""
    from .data import read as read_data

    return read_data(path, tol=tol, cost=cost, data_files=data_files)


def figures(data: Any, max_paths: int = 25) -> dict[str, Any]:
    """Every figure of the report as ``{file stem: matplotlib Figure}``, in page order."""
    from .build import _functions, tasks_of

    functions = _functions()
    return {plot.name: functions[name](data, **kwargs) for plot, name, kwargs in tasks_of(data, max_paths)}


def __getattr__(name: str) -> Any:
    if name in _FIGURES:
        import importlib

        return getattr(importlib.import_module(f".{_FIGURES[name]}", __name__), name)
    if name == "ReportError":
        from .build import ReportError

        return ReportError
    raise AttributeError(f"module 'optlab.report' has no attribute {name!r}")
