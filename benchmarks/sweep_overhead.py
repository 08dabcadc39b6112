"""What a sweep costs per job above the runs themselves, against the target of 50 ms of CPU.

    python benchmarks/sweep_overhead.py [--jobs 24] [--iters 1000] [--repeat 3] [--profile]

A learning-rate sweep of ``--jobs`` short gradient-descent runs on Rosenbrock
(``python -m optlab -m solver.lr=...``, no report) and the same command with one rate, each in
a fresh process, with Hydra's basic sweeper and with optlab's (``hydra/sweeper=optlab``, the
default). A job's CPU is the slope between the two, (CPU(n jobs) - CPU(1 job)) / (n - 1), so
start-up and imports cancel; its overhead is that minus the run's own time (``wall_time_s`` in
its run.json; compiling, ``setup_s``, counts as overhead). The minimum over ``--repeat`` rounds is kept.

``--profile`` also profiles the n-job sweep in this process and prints where a job's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0


def sweep(sweeper: str, lrs: list[float], iters: int, out: Path) -> tuple[float, float]:
    """(CPU seconds of the whole command, seconds the runs took by their records)."""
    args = [sys.executable, "-m", "optlab", "-m", f"hydra/sweeper={sweeper}", f"solver.lr={','.join(map(str, lrs))}",
            f"stop.max_iter={iters}", "report.auto=false", f"hydra.sweep.dir={out}"]
    before = os.times()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"the sweep failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    records = [json.loads(p.read_text()) for p in out.glob("*/run.json")]
    if len(records) != len(lrs):
        sys.exit(f"expected {len(lrs)} runs in {out}, found {len(records)}")
    own = sum(r["wall_time_s"] for r in records)
    return cpu, own


def per_job(sweeper: str, jobs: int, iters: int, repeat: int, root: Path) -> tuple[float, float]:
    """(CPU ms per job, the run's own ms per job), the minima over ``repeat`` rounds."""
    lrs = [1e-4 * (1 + i) for i in range(jobs)]
    marginal, own = [], []
    for r in range(repeat):
        cpu_1, own_1 = sweep(sweeper, lrs[:1], iters, root / f"{sweeper}-{r}-1")
        cpu_n, own_n = sweep(sweeper, lrs, iters, root / f"{sweeper}-{r}-{jobs}")
        marginal.append((cpu_n - cpu_1) / (jobs - 1))
        own.append((own_n - own_1) / (jobs - 1))
    return 1e3 * min(marginal), 1e3 * min(own)


def profile(jobs: int, iters: int, root: Path) -> None:
    import cProfile
    import pstats

    lrs = ",".join(str(1e-4 * (1 + i)) for i in range(jobs))
    sys.argv = ["optlab", "-m", f"solver.lr={lrs}", f"stop.max_iter={iters}", "report.auto=false",
                f"hydra.sweep.dir={root / 'profiled'}"]
    sys.path.insert(0, str(REPO))
    from optlab.app.cli import main

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        main()
    except SystemExit:
        pass
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    parts = {  # (file ending, function): what it stands for
        ("hydra_compose.py", "load_sweep_config"): "composing the job's config (optlab sweeper)",
        ("config_loader_impl.py", "load_configuration"): "Hydra composing from scratch",
        ("core/utils.py", "run_job"): "Hydra's run_job (config copies, .hydra/*.yaml, logging), task included",
        ("core/utils.py", "_save_config"): "  of which writing .hydra/*.yaml",
        ("optlab/cli.py", "_task"): "  of which optlab's job",
        ("optlab/store.py", "run_to_dir"): "    of which the run and its files",
    }
    total = sum(s[3] for (file, _, name), s in stats.items() if name == "<module>" and file.endswith("__main__.py"))
    print(f"\nprofile of a {jobs}-job sweep (cProfile inflates Python-heavy code; shares are what count):")
    for (ending, name), label in parts.items():
        cum = sum(s[3] for (file, _, fn), s in stats.items() if fn == name and file.endswith(ending))
        print(f"  {label:<75} {1e3 * cum / jobs:7.1f} ms/job")
    if total:
        print(f"  (whole process under the profiler: {total:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.jobs < 2:
        parser.error(f"--jobs must be at least 2, got {args.jobs}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"{args.jobs}-job lr sweep, gd on rosenbrock, {args.iters} iterations per run, no report; "
              f"min of {args.repeat} rounds")
        print(f"{'sweeper':<8} {'CPU/job ms':>11} {'run ms':>7} {'overhead ms':>12} {'vs 50 ms':>9}")
        for sweeper in ("basic", "optlab"):
            cpu, own = per_job(sweeper, args.jobs, args.iters, args.repeat, root)
            overhead = cpu - own
            verdict = "PASS" if overhead <= TARGET_MS else "FAIL"
            print(f"{sweeper:<8} {cpu:11.1f} {own:7.2f} {overhead:12.1f} {overhead / TARGET_MS:8.2f}x  {verdict}")
        if args.profile:
            profile(args.jobs, args.iters, root)


if __name__ == "__main__":
    main()
