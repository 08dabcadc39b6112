"""Runs handed to the benchmarking community's tools: ``python -m optlab.export {coco,ioh} PATH... --out DIR``.

- ``coco``: COCO's format, for ``cocopp`` (``python -m cocopp DIR/bbob``);
- ``ioh``: IOHprofiler's format, for ``iohinspector`` and IOHanalyzer.

Both write ``DIR/SUITE/ALGORITHM/...`` (the suite ``bbob`` for COCO's functions, ``optlab`` for the
others) and ``DIR/problems.csv``, the numbering of functions and instances; the mapping is
described in :mod:`optlab.export.runs`. Runs are read as the report reads them (safely: symlinks
out of the tree are not followed, bad records are skipped with a warning); runs without iterates
(invalid jobs) are left out.
"""

from __future__ import annotations

from pathlib import Path

FORMATS = ("coco", "ioh")
COSTS = ("nfev", "evals")


class ExportError(ValueError):
    """A path that does not exist, no runs, an output folder in use, or an unknown option: one line."""


def export(fmt: str, paths: list[str | Path], out: str | Path, *, cost: str = "nfev", force: bool = False) -> Path:
    """Write the runs under ``paths`` into ``out`` in format ``fmt`` ("coco" or "ioh"); returns ``out``.

    ``cost``: what counts as an evaluation, "nfev" (function evaluations, COCO's count) or "evals"
    (function, gradient and Hessian evaluations). ``force``: write into a folder that is not empty
    (files of the same names are replaced). Raises :class:`ExportError` before writing anything.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is unknown; allowed: {', '.join(FORMATS)}")
    if cost not in COSTS:
        raise ExportError(f"cost={cost!r}; allowed: {', '.join(COSTS)}")
    roots = [Path(p) for p in paths]
    if not roots:
        raise ExportError("no path given")
    for root in roots:
        if not root.exists():
            raise ExportError(f"{root} does not exist")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
        raise ExportError(f"{out} is not an empty folder; allowed: a new or empty folder, or --force to write "
                          "into it")
    import warnings

    from ..report.data import read
    from .coco import write_coco
    from .ioh import write_ioh
    from .runs import export_runs

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        data = read(roots, cost="evals" if cost == "evals" else "nfev")
    runs, problems = export_runs(data, cost)
    if not runs:
        raise ExportError(f"no runs with iterates under {', '.join(str(r) for r in roots)}")
    out.mkdir(parents=True, exist_ok=True)
    (write_coco if fmt == "coco" else write_ioh)(runs, out)
    problems.to_csv(out / "problems.csv", index=False)
    return out
