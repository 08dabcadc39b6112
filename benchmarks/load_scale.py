"""How fast ``optlab.load`` reads a large tree, against pyarrow's dataset reader and pandas.

    python benchmarks/load_scale.py [--runs 2000] [--iters 1000] [--dir DIR] [--rounds 3]

Writes (or reuses, with ``--dir``) a tree of ``--runs`` optlab run directories of ``--iters``
iterates each (batched gradient descent on Rosenbrock from random starts, written by optlab
itself), then times, best of ``--rounds`` in this process:

- ``pyarrow.dataset(files).to_table()`` on the tree's ``iterates.parquet`` files (the floor: no
  records, no checks, no run ids);
- ``pd.concat(pd.read_parquet(f) for f in files)`` (what a user would write with pandas);
- ``optlab.load(tree)`` (records checked, run ids attached, every file checked), as Arrow,
  pandas and, when installed, polars.

Prints each time and the ratio of ``optlab.load`` to the other two. Target: the Arrow load within
1.5x of pyarrow.dataset.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_tree(root: Path, runs: int, iters: int) -> None:
    from optlab.engine.stopping import Stop
    from optlab.legacy import run_batch_to_dirs
    from optlab.objectives import Rosenbrock
    from optlab.solvers import SOLVERS

    rng = np.random.default_rng(0)
    starts = rng.uniform([-2.0, -1.0], [2.0, 3.0], size=(runs, 2))
    dirs = [root / f"{i // 100}" / f"run_{i:05d}" for i in range(runs)]
    run_batch_to_dirs(dirs, Rosenbrock(), SOLVERS["gd"](lr=1e-4), starts, Stop(max_iter=iters - 1, gtol=0.0))


def best(fn, rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None, help="reuse (or create) the tree here")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd
    import pyarrow.dataset as ds

    import optlab

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp) / "tree"
        if not any(root.rglob("run.json")) if root.exists() else True:
            t0 = time.perf_counter()
            make_tree(root, args.runs, args.iters)
            print(f"tree: {args.runs} runs x {args.iters} iterates written in {time.perf_counter() - t0:.1f} s")
        files = sorted(str(p) for p in root.rglob("iterates.parquet"))
        t_ds, table = best(lambda: ds.dataset(files, format="parquet").to_table(), args.rounds)
        t_pd, _ = best(lambda: pd.concat([pd.read_parquet(f) for f in files], ignore_index=True), args.rounds)
        print(f"pyarrow.dataset(files).to_table(): {t_ds:.3f} s ({table.num_rows} rows)")
        print(f"pd.read_parquet per file + concat: {t_pd:.3f} s")
        modes = ["arrow", "pandas", "polars"] if "as_" in inspect.signature(optlab.load).parameters else ["pandas"]
        for mode in modes:
            if mode == "polars":
                try:
                    import polars  # noqa: F401
                except ImportError:
                    continue
            kwargs = {} if modes == ["pandas"] else {"as_": mode}
            t_load, (runs, its) = best(lambda kwargs=kwargs: optlab.load(root, **kwargs), args.rounds)
            print(f"optlab.load(as_={mode!r}): {t_load:.3f} s ({len(runs)} runs, {len(its)} iterates): "
                  f"{t_load / t_ds:.2f}x pyarrow.dataset, {t_load / t_pd:.2f}x pandas per file")


if __name__ == "__main__":
    main()
