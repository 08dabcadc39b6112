"""IOHprofiler's data format, read by ``iohinspector`` (and IOHanalyzer).

Per algorithm and suite, a folder ``OUT/SUITE/ALGORITHM/`` holds, per function,
``IOHprofiler_fN_NAME.json`` (the function, the algorithm, and per dimension the data file and
each run's instance, evaluations and best point) and ``data_fN_NAME/IOHprofiler_fN_DIMd.dat``:
per run, the header ``evaluations raw_y``, then one line per improvement of the best f - f* so
far, the first at evaluation 1. ``raw_y`` holds f - f* (the precision), not f, so that targets
10^k mean the same for every instance; each run's f* is in the JSON file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .coco import folder_name
from .runs import ExportRun

VERSION = "0.3.3"  # the version of the format (IOHexperimenter's JSON files)


def write_ioh(runs: list[ExportRun], out: Path) -> list[Path]:
    """Write ``runs`` under ``out``; returns the algorithm folders written."""
    groups: dict[tuple[str, str], dict[tuple[int, str], dict[int, list[ExportRun]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        groups[(run.suite, run.algorithm)][(run.function_id, run.function_name)][run.dim].append(run)
    folders = []
    for (suite, algorithm), functions in sorted(groups.items()):
        folder = out / suite / folder_name(algorithm)
        folders.append(folder)
        for (fid, name), dims in sorted(functions.items()):
            data_dir = f"data_f{fid}_{name}"
            (folder / data_dir).mkdir(parents=True, exist_ok=True)
            scenarios = []
            for dim, these in sorted(dims.items()):
                these = sorted(these, key=lambda r: (r.instance, r.run_id))
                rel = f"{data_dir}/IOHprofiler_f{fid}_DIM{dim}.dat"
                lines = []
                for r in these:
                    lines.append("evaluations raw_y\n")
                    lines += [f"{int(e)} {b:.17e}\n" for e, b in zip(r.evals, r.best)]
                    if r.spent > r.evals[-1]:
                        lines.append(f"{r.spent} {r.best[-1]:.17e}\n")
                (folder / rel).write_text("".join(lines))
                scenarios.append({"dimension": dim, "path": rel, "runs": [
                    {"instance": r.instance, "evals": r.spent, "f_star": r.f_star, "optlab_run_id": r.run_id,
                     "best": {"evals": int(r.evals[-1]), "y": float(r.best[-1]), "x": r.x_best}} for r in these]})
            meta = {"version": VERSION, "suite": suite, "function_id": fid, "function_name": name,
                    "maximization": False, "algorithm": {"name": algorithm, "info": "exported by optlab"},
                    "attributes": ["evaluations", "raw_y"], "scenarios": scenarios}
            (folder / f"IOHprofiler_f{fid}_{name}.json").write_text(json.dumps(meta, indent=1))
    return folders
