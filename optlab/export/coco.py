"""COCO's data format (the ``bbob-new2`` format of COCO's experiment loggers), read by ``cocopp``.

Per algorithm and suite, a folder ``OUT/SUITE/ALGORITHM/`` holds, per function, an index file
``bbobexp_fN.info`` (one entry per dimension: a header line, a comment line, then the data file
and one ``instance:evaluations|final precision`` item per run) and the data files
``data_fN/bbobexp_fN_DIMd.dat`` and ``.tdat``: per run, a ``%`` header line, then one line per
improvement of the best f - f* so far (evaluations, 0 constraint evaluations, best precision,
f of the iterate, best f so far), ending at the run's last evaluation. Numbers are written in
full (17 digits), so a target compares as it does in optlab.

``python -m cocopp OUT/bbob`` post-processes the BBOB runs; COCO's post-processing knows COCO's
suites only, so the suite ``optlab`` (other objectives) is for readers of the format, such as
``iohinspector``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .runs import ExportRun

PRECISION = 1e-8  # COCO's final target
HEADER = ("% f evaluations | g evaluations | best noise-free fitness - Fopt ({f_star:.12e}) + sum g_i+ | "
          "measured fitness | best measured fitness or single-digit g-values | x1 | x2...\n")


def run_lines(run: ExportRun) -> str:
    """One run's block of a ``.dat`` (and ``.tdat``) file."""
    lines = [HEADER.format(f_star=run.f_star)]
    best_f = run.f_star + run.best
    for e, precision, f, b in zip(run.evals, run.best, run.f_at, best_f):
        lines.append(f"{int(e)} 0 {precision:+.17e} {f:+.17e} {b:+.17e}\n")
    if run.spent > run.evals[-1]:  # the last evaluation, with the best so far
        lines.append(f"{run.spent} 0 {run.best[-1]:+.17e} {run.f_at[-1]:+.17e} {best_f[-1]:+.17e}\n")
    return "".join(lines)


def write_coco(runs: list[ExportRun], out: Path) -> list[Path]:
    """Write ``runs`` under ``out``; returns the algorithm folders written."""
    groups: dict[tuple[str, str], dict[int, dict[int, list[ExportRun]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        groups[(run.suite, run.algorithm)][run.function_id][run.dim].append(run)
    folders = []
    for (suite, algorithm), functions in sorted(groups.items()):
        folder = out / suite / folder_name(algorithm)
        folders.append(folder)
        for fid, dims in sorted(functions.items()):
            (folder / f"data_f{fid}").mkdir(parents=True, exist_ok=True)
            entries = []
            for dim, these in sorted(dims.items()):
                these = sorted(these, key=lambda r: (r.instance, r.run_id))
                rel = f"data_f{fid}/bbobexp_f{fid}_DIM{dim}.dat"
                block = "".join(run_lines(r) for r in these)
                for suffix in (".dat", ".tdat"):
                    (folder / rel).with_suffix(suffix).write_text(block)
                algid = algorithm.replace("'", "").replace(", ", "; ")
                items = ", ".join(f"{r.instance}:{r.spent}|{r.best[-1]:.1e}" for r in these)
                entries.append(f"suite = '{suite}', funcId = {fid}, DIM = {dim}, Precision = {PRECISION:.3e}, "
                               f"algId = '{algid}', logger = 'optlab', data_format = 'bbob-new2'\n"
                               f"% exported by optlab: {these[0].function_name}, {len(these)} runs\n{rel}, {items}\n")
            (folder / f"bbobexp_f{fid}.info").write_text("".join(entries))
    return folders


def folder_name(algorithm: str) -> str:
    return "".join(c if c.isalnum() or c in "=.-" else "_" for c in algorithm).strip("_")[:80] or "algorithm"
