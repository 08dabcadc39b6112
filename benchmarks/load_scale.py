"""How fast ``optlab.load`` reads a large tree, against polars, pyarrow and duckdb reading the same files.

    python benchmarks/load_scale.py [--runs 2000] [--iters 1000] [--dir DIR] [--rounds 5]

Writes (or reuses, with ``--dir``) a tree of ``--runs`` optlab run directories of ``--iters``
iterates each (batched gradient descent on Rosenbrock from random starts, written by optlab
itself), then times in this process, round after round (each reader once per round, the order
turned by one each round, since a reader runs slower right after some others; the best round of
each is kept, wall clock, with its CPU time beside it):

- the references, given the list of the tree's ``iterates.parquet`` files (found before the
  clock starts): ``polars.read_parquet(files)``, ``pyarrow.dataset.dataset(files).to_table()``
  and ``duckdb.read_parquet(files).arrow()``, each reading the iterates and nothing else;
- ``optlab.load(tree)``: finds the runs, reads and checks every record, checks every iterate file
  and attaches its run, and gives the runs table and the iterates with the coordinates as
  columns; as Arrow, polars and pandas, and as Arrow without polars (pyarrow's reader alone).

Prints each time and the ratio of each ``optlab.load`` to polars. Target (issue 20):
``optlab.load`` within 1.5x of polars on 2,000 runs x 1,000 iterates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET = 1.5


def make_tree(root: Path, runs: int, iters: int) -> None:
    from optlab.engine.stopping import Stop
    from optlab.legacy import run_batch_to_dirs
    from optlab.objectives import Rosenbrock
    from optlab.solvers import SOLVERS

    rng = np.random.default_rng(0)
    starts = rng.uniform([-2.0, -1.0], [2.0, 3.0], size=(runs, 2))
    dirs = [root / f"{i // 100}" / f"run_{i:05d}" for i in range(runs)]
    run_batch_to_dirs(dirs, Rosenbrock(), SOLVERS["gd"](lr=1e-4), starts, Stop(max_iter=iters - 1, gtol=0.0))


def readers(root: Path, files: list[str]) -> dict[str, Callable[[], object]]:
    """Name -> a call reading the tree; the references first."""
    import pyarrow.dataset as ds

    import optlab
    from optlab.rundir import iterates

    found: dict[str, Callable[[], object]] = {}
    try:
        import polars as pl

        found["polars.read_parquet(files)"] = lambda: pl.read_parquet(files)
    except ImportError:
        pass
    found["pyarrow.dataset(files).to_table()"] = lambda: ds.dataset(files, format="parquet").to_table()
    try:
        import duckdb

        found["duckdb.read_parquet(files).arrow()"] = lambda: duckdb.read_parquet(files).arrow().read_all()
    except ImportError:
        pass
    for mode in ("arrow", "polars", "pandas"):
        if mode != "polars" or iterates.scanner() is not None:
            found[f"optlab.load(as_={mode!r})"] = lambda mode=mode: optlab.load(root, as_=mode)

    def without_polars() -> object:
        scanner, iterates.scanner = iterates.scanner, lambda: None
        try:
            return optlab.load(root, as_="arrow")
        finally:
            iterates.scanner = scanner

    found["optlab.load(as_='arrow'), pyarrow alone"] = without_polars
    return found


def rows_of(out: object) -> int:
    table = out[1] if isinstance(out, tuple) else out
    return table.num_rows if hasattr(table, "num_rows") else len(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None, help="reuse (or create) the tree here")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp) / "tree"
        if not root.exists() or not any(root.rglob("run.json")):
            t0 = time.perf_counter()
            make_tree(root, args.runs, args.iters)
            print(f"tree: {args.runs} runs x {args.iters} iterates written in {time.perf_counter() - t0:.1f} s")
        files = sorted(str(p) for p in root.rglob("iterates.parquet"))
        version = pq.read_metadata(files[0]).metadata.get(b"optlab.schema", b"?").decode()
        print(f"tree: {root}, {len(files)} iterate files (schema version {version})")
        calls = readers(root, files)
        reference = next(iter(calls))
        rows = {name: rows_of(call()) for name, call in calls.items()}  # a first call of each: imports, caches
        wall: dict[str, list[float]] = {name: [] for name in calls}
        cpu: dict[str, list[float]] = {name: [] for name in calls}
        names = list(calls)
        for r in range(args.rounds):  # each reader once per round, the order turned by one each round
            for name in names[r % len(names):] + names[:r % len(names)]:  # (a reader runs slower after some)
                c0, t0 = time.process_time(), time.perf_counter()
                calls[name]()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        report(calls, reference, wall, cpu, rows, args.rounds)


def report(calls: dict, reference: str, wall: dict, cpu: dict, rows: dict, rounds: int) -> None:
    """Best times, and the median over rounds of each round's ratio to the reference (the
    reference ran moments before, so a machine busy with other work weighs on both alike)."""
    print(f"{rounds} rounds; best wall clock and CPU time (all threads); ratio to {reference}: of the best "
          "times, and [median of the rounds' own ratios]:")
    for name in calls:
        ratios = [(float(np.median([w / r for w, r in zip(times[name], times[reference])])),
                   min(times[name]) / min(times[reference])) for times in (wall, cpu)]
        print(f"  {name:42s} wall {min(wall[name]):6.3f} s {ratios[0][1]:5.2f}x [{ratios[0][0]:5.2f}x]   "
              f"cpu {min(cpu[name]):6.3f} s {ratios[1][1]:5.2f}x [{ratios[1][0]:5.2f}x]   {rows[name]:>9,} rows")
    loads = [n for n in calls if n.startswith("optlab") and "alone" not in n]
    for label, times in (("wall clock", wall), ("CPU time", cpu)):
        worst = max(min(times[n]) / min(times[reference]) for n in loads)
        print(f"target: optlab.load <= {TARGET}x {reference}, {label} (best times): "
              f"{'met' if worst <= TARGET else 'NOT met'} (worst of arrow, polars, pandas: {worst:.2f}x)")


if __name__ == "__main__":
    main()
