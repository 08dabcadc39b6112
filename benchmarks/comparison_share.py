"""The comparison sections' share of the shootout's report (statistics over repeated runs, tuned comparison).

    python benchmarks/comparison_share.py [--shootout DIR] [--rounds 3]

Builds the report of the ``solver_shootout`` experiment (run here with ``report.auto=false``, or
given with ``--shootout DIR``) from scratch, in one process, alternately with the comparison
sections and without them (their tasks, tables and page sections switched off), with the figures
drawn in this process (``jobs=1``), and prints the best CPU and wall-clock times of each and their
ratio (best of the rounds: scipy.stats is imported once, in the first round). Then the sections'
parts alone on the same data: importing scipy.stats in a new process, the statistics, the tables
and the page sections, and each figure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def shootout(where: Path) -> Path:
    sweep = where / "shootout"
    subprocess.run([sys.executable, "-m", "optlab", "-m", "+experiment=solver_shootout", "report.auto=false",
                    f"hydra.sweep.dir={sweep}"], cwd=where, check=True, capture_output=True,
                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return sweep


def timed(call) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shootout", type=Path, default=None, help="a finished solver_shootout sweep")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from optlab.report import build_report, comparisons, page

    with tempfile.TemporaryDirectory() as tmp:
        sweep = args.shootout or shootout(Path(tmp))
        on = (comparisons.comparison_tasks, comparisons.write_comparison_tables, page.section_html)
        off = (lambda data: [], lambda data, out: [], lambda data, section: "")

        def build(parts: tuple) -> None:
            comparisons.comparison_tasks, comparisons.write_comparison_tables, page.section_html = parts
            build_report(sweep, Path(tmp) / "report", force=True, jobs=1, progress=False)

        best = {"with": (float("inf"), float("inf")), "without": (float("inf"), float("inf"))}
        for _ in range(args.rounds):
            for name, parts in (("without", off), ("with", on)):
                cpu, wall = timed(lambda parts=parts: build(parts))
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
        comparisons.comparison_tasks, comparisons.write_comparison_tables, page.section_html = on
        print(f"{'report of the shootout':40s} {'CPU s':>8s} {'wall s':>8s}")
        for name in ("without", "with"):
            print(f"{name + ' the comparison sections':40s} {best[name][0]:8.2f} {best[name][1]:8.2f}")
        print(f"{'ratio (with / without)':40s} {best['with'][0] / best['without'][0]:8.2f} "
              f"{best['with'][1] / best['without'][1]:8.2f}")
        parts_alone(sweep, Path(tmp))


def parts_alone(sweep: Path, out: Path) -> None:
    from optlab.report import read
    from optlab.report.comparisons import STATS, TUNED, comparison_of, comparison_tasks, section_html
    from optlab.report.comparisons import write_comparison_tables as write
    from optlab.report.stats_figures import FIGURES
    from optlab.report.style import save

    data = read(sweep)
    code = "import time; t = time.process_time(); import scipy.stats; print(time.process_time() - t)"
    scipy_cpu = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    rows = [("import scipy.stats (a new process)", (scipy_cpu, float("nan"))),
            ("statistics", timed(lambda: comparison_of(data))),
            ("tables and page sections", timed(lambda: (write(data, out), section_html(data, STATS),
                                                         section_html(data, TUNED))))]
    for plot, name, kwargs in comparison_tasks(data):
        rows.append((f"figure {plot.name}", timed(lambda name=name, kwargs=kwargs, plot=plot: save(
            FIGURES[name](data, **kwargs), out, plot.name))))
    print(f"\n{'the sections alone':40s} {'CPU s':>8s} {'wall s':>8s}")
    for label, (cpu, wall) in rows:
        print(f"{label:40s} {cpu:8.2f} {wall:8.2f}")
    print(f"{'total':40s} {sum(c for _, (c, _) in rows):8.2f} {sum(w for _, (_, w) in rows[1:]):8.2f}")


if __name__ == "__main__":
    main()
