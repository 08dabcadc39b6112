"""Sweep reports: ``python -m optlab.report PATH [--out DIR]`` or :func:`build_report`.

Reads any run directory or tree through :func:`optlab.load` and writes a folder with
``index.html``, every figure as PNG and SVG, ``summary.csv`` (one row per run) and
``solvers.csv`` (one row per solver setting and problem). Corrupt or half-written run
directories are skipped with a warning and listed on the page.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_report"]


def build_report(path: str | Path, out: str | Path | None = None, *, tol: float = 1e-6,
                 max_paths: int = 25) -> Path:
    """Write the report of the runs under ``path`` into ``out`` (default ``path/report``); returns index.html.

    ``tol``: a run is solved at its first iterate with f - f* <= tol (f(x0) - f*);
    ``max_paths``: at most this many paths per panel of the path figures.
    """
    import numpy as np

    from ..errors import check_number
    from .convergence import convergence_plots
    from .data import read
    from .heatmap import heatmap_plots
    from .landscape import basin_plots, path_plots
    from .page import write_page
    from .profiles import profile_plots
    from .summary import write_tables

    tol = float(check_number("tol", tol, low=0))
    max_paths = int(check_number("max_paths", max_paths, low=1, strict=False, integer=True))
    root = Path(path)
    out_dir = Path(out) if out is not None else (root if root.is_dir() else root.parent) / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = read(root, tol=tol)
    runs, solvers = write_tables(data, out_dir)
    plots = []
    if data.valid.empty:  # nothing ran (an empty tree, or only invalid jobs): the tables say so
        return write_page(data, plots, runs, solvers, out_dir)
    with np.errstate(over="ignore", invalid="ignore"):  # huge values of diverged runs are drawn off the axes
        for make in (convergence_plots, lambda d, o: path_plots(d, o, max_paths), heatmap_plots, basin_plots,
                     profile_plots):
            plots += make(data, out_dir)
    return write_page(data, plots, runs, solvers, out_dir)
