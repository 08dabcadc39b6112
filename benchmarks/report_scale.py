"""How fast the sweep report is, against its targets, and how it scales.

    python benchmarks/report_scale.py [--shootout DIR] [--skip-shootout] [--runs 1000] [--iters 1000] [--dir DIR]

Three measurements, each step in a fresh process (imports included) with its peak resident memory:

1. A 4-run sweep (``python -m optlab -m solver=gd,newton objective=rosenbrock,double_well``):
   the report against ``optlab.load`` of the same sweep. Target: the report at most 3 s above the load.
2. The ``solver_shootout`` experiment (run here with ``report.auto=false``, or given with
   ``--shootout DIR``): its report. Target: at most 30 s on 2 cores.
3. A tree of ``--runs`` x ``--iters`` iterates of real gradient descent on Rosenbrock (numpy, all
   runs at once; 10 learning rates from 1e-4 to 5e-3, the largest diverge from some starts)
   written as optlab run directories: pandas reading every file, ``optlab.load``, the report.

Each report is drawn from scratch (``force=True``); the script prints every time and the ratio of
each target's measured time to the target.
"""

from __future__ import annotations

import argparse
import json
import os
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

    from optlab.engine.log import INT_FIELDS, columns
    from optlab.engine.stopping import Stop
    from optlab.objectives import Rosenbrock
    from optlab.rundir.store import describe_run, write_record
    from optlab.solvers import SOLVERS

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
print(build_report(sys.argv[1], sys.argv[2], force=True, progress=False))
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


def sweep(out: Path, *overrides: str) -> None:
    """A multirun through the command line, without its report."""
    done = subprocess.run([sys.executable, "-m", "optlab", "-m", *overrides, f"hydra.sweep.dir={out}",
                           "report.auto=false"], cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the sweep {' '.join(overrides)} failed:\n{done.stderr[-2000:]}")


def row(name: str, t: float, m: float, base: float | None = None) -> None:
    ratio = f"{t / base:>10.1f}" if base else f"{'':>10}"
    print(f"{name:<52}{t:>10.2f}{ratio}{m:>16.0f}")


def target(name: str, measured: float, limit: float) -> None:
    verdict = "met" if measured <= limit else "MISSED"
    print(f"target: {name}: {measured:.2f} s against <= {limit:g} s: ratio {measured / limit:.2f} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where to build the trees (default: a temporary folder)")
    parser.add_argument("--shootout", default=None, help="an existing solver_shootout sweep directory")
    parser.add_argument("--skip-shootout", action="store_true", help="leave out the shootout (it runs ~1.5 min)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.dir or tmp)
        print(f"{'step (fresh process)':<52}{'time (s)':>10}{'x ref':>10}{'peak RSS (MiB)':>16}")
        small = base / "four"
        sweep(small, "solver=gd,newton", "objective=rosenbrock,double_well")
        load_t, load_m = measure(OPTLAB_LOAD, str(small))
        rep_t, rep_m = measure(REPORT, str(small), str(base / "four_report"))
        row("4-run sweep: optlab.load (ref)", load_t, load_m)
        row("4-run sweep: report", rep_t, rep_m, load_t)
        results = [("4-run sweep, report minus load", rep_t - load_t, 3.0)]
        if not args.skip_shootout:
            shootout = Path(args.shootout) if args.shootout else base / "shootout"
            if not args.shootout:
                t0 = time.perf_counter()
                sweep(shootout, "+experiment=solver_shootout")
                print(f"(solver_shootout ran in {time.perf_counter() - t0:.0f} s)")
            sh_t, sh_m = measure(REPORT, str(shootout), str(base / "shootout_report"))
            row("solver_shootout: report", sh_t, sh_m)
            results.append((f"solver_shootout report ({os.cpu_count()} cores)", sh_t, 30.0))
        root = base / "tree"
        t0 = time.perf_counter()
        make_tree(root, args.runs, args.iters)
        statuses: dict[str, int] = {}
        for p in root.rglob("run.json"):
            s = json.loads(p.read_text())["status"]
            statuses[s] = statuses.get(s, 0) + 1
        ref_t, ref_m = measure(PANDAS_READ, str(root))
        row(f"{args.runs} x {args.iters} tree: pandas read (ref)", ref_t, ref_m)
        row(f"{args.runs} x {args.iters} tree: optlab.load", *measure(OPTLAB_LOAD, str(root)), ref_t)
        row(f"{args.runs} x {args.iters} tree: report", *measure(REPORT, str(root), str(base / "tree_report")),
            ref_t)
        print(f"(tree built in {time.perf_counter() - t0:.1f} s; statuses {statuses})")
        for name, measured, limit in results:
            target(name, measured, limit)


if __name__ == "__main__":
    main()
