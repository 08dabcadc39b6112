"""How the sweep report scales: 1,000 runs x 1,000 iterates, against pandas just reading the files.

    python benchmarks/report_scale.py [--runs 1000] [--iters 1000] [--dir DIR]

The tree is real gradient descent on Rosenbrock (numpy, all runs at once): 10 learning rates
from 1e-4 to 5e-3 (the largest diverge from some starts) x ``runs / 10`` seeded random starts,
written as optlab run directories (run.json + iterates.parquet). Each step is then timed in a
fresh process, with its peak resident memory: pandas reading every run.json and
iterates.parquet (the reference), ``optlab.load``, and ``python -m optlab.report``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rosenbrock(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = x[:, 0], x[:, 1]
    f = 100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2
    g = np.stack([-400.0 * a * (b - a * a) - 2.0 * (1.0 - a), 200.0 * (b - a * a)], axis=1)
    return f, g


def make_tree(root: Path, runs: int, iters: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from optlab.log import INT_FIELDS, columns
    from optlab.objectives import Rosenbrock
    from optlab.runner import Stop
    from optlab.solvers import SOLVERS
    from optlab.store import describe_run, write_record

    rng = np.random.default_rng(0)
    lrs = np.repeat(np.geomspace(1e-4, 5e-3, 10), runs // 10)
    x = rng.uniform([-2.0, -1.0], [2.0, 3.0], size=(len(lrs), 2))
    starts = x.copy()
    rows = np.empty((iters, len(lrs), 10))
    with np.errstate(all="ignore"):
        for k in range(iters):
            f, g = rosenbrock(x)
            rows[k] = np.column_stack([np.full(len(lrs), k), f, np.linalg.norm(g, axis=1),
                                       np.full(len(lrs), np.nan if k == 0 else 1.0) * lrs, np.full(len(lrs), k + 1),
                                       np.full(len(lrs), k + 1), np.zeros(len(lrs)), np.full(len(lrs), 2.5e-4 * k), x])
            x = x - lrs[:, None] * g
    objective, names = Rosenbrock(), columns(2)
    for i, lr in enumerate(lrs):
        block = rows[:, i, :]
        finite = np.isfinite(block[:, 1]) & np.isfinite(block[:, 2]) & np.all(np.isfinite(block[:, 8:]), axis=1)
        end = int(np.argmin(finite)) + 1 if not finite.all() else iters  # keep the first non-finite row
        block = block[:end]
        run_dir = root / f"{i // 100}" / f"{i % 100}"
        run_dir.mkdir(parents=True)
        table = pa.table({n: pa.array(block[:, j].astype(np.int64) if n in INT_FIELDS else block[:, j])
                          for j, n in enumerate(names)})
        pq.write_table(table, run_dir / "iterates.parquet")
        record = describe_run(objective, SOLVERS["gd"](lr=float(lr)), starts[i], Stop(max_iter=iters - 1),
                              uuid.uuid4().hex[:12])
        last = block[-1]
        diverged = end < iters
        f_final = float(last[1]) if np.isfinite(last[1]) else None
        record.update(status="diverged" if diverged else "max_iter", message="", iterations=end - 1,
                      f_final=f_final, gap=f_final, x_final=[float(v) if np.isfinite(v) else None for v in last[8:]],
                      nfev=int(last[4]), ngev=int(last[5]), nhev=0, wall_time_s=float(last[7]))
        write_record(run_dir, record)


PANDAS_READ = """
import json, sys
from pathlib import Path
import pandas as pd
root = Path(sys.argv[1])
runs, tables = [], []
for p in sorted(root.rglob("run.json")):
    runs.append(json.loads(p.read_text()))
    t = pd.read_parquet(p.parent / "iterates.parquet")
    t["run_id"] = runs[-1]["run_id"]
    tables.append(t)
its = pd.concat(tables, ignore_index=True)
print(len(runs), len(its))
"""

OPTLAB_LOAD = """
import sys
import optlab
runs, its = optlab.load(sys.argv[1])
print(len(runs), len(its))
"""

REPORT = """
import sys
from optlab.report import build_report
print(build_report(sys.argv[1], sys.argv[2]))
"""

MEASURE = """
import resource, runpy, sys, time
code = sys.argv[1]
sys.argv = ["-", *sys.argv[2:]]
t0 = time.perf_counter()
exec(compile(code, "<step>", "exec"), {"__name__": "__main__"})
elapsed = time.perf_counter() - t0
print("MEASURE", elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def measure(code: str, *args: str) -> tuple[float, float]:
    """Seconds (imports included) and peak resident memory (MiB) of ``code`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, code, *args], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("MEASURE")][-1]
    _, seconds, peak = line.split()
    return float(seconds), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where to build the tree (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp) / "tree"
        t0 = time.perf_counter()
        make_tree(root, args.runs, args.iters)
        print(f"tree: {args.runs} runs x {args.iters} iterates in {root} "
              f"(built in {time.perf_counter() - t0:.1f} s)")
        statuses = {}
        for p in root.rglob("run.json"):
            s = json.loads(p.read_text())["status"]
            statuses[s] = statuses.get(s, 0) + 1
        print(f"statuses: {statuses}")
        base_t, base_m = measure(PANDAS_READ, str(root))
        load_t, load_m = measure(OPTLAB_LOAD, str(root))
        rep_t, rep_m = measure(REPORT, str(root), str(Path(tmp) / "report"))
        print(f"{'step':<42}{'time (s)':>10}{'x pandas':>10}{'peak RSS (MiB)':>16}")
        for name, t, m in (("pandas: read every run.json + parquet", base_t, base_m),
                           ("optlab.load", load_t, load_m),
                           ("report (load, tables, figures, page)", rep_t, rep_m)):
            print(f"{name:<42}{t:>10.2f}{t / base_t:>10.1f}{m:>16.0f}")


if __name__ == "__main__":
    main()
