"""``python -m optlab.report PATH [PATH ...] [--out DIR] [--tol TOL] [--cost C] [--svg] [--data]``."""

from __future__ import annotations

import argparse
import sys
import warnings

from . import build_report
from .build import ReportError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optlab.report",
        description="Write index.html, figures and summary CSVs for the runs under one or more paths.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a run directory or a tree of them (e.g. a sweep directory); several are labelled "
                             "apart in one report")
    parser.add_argument("--out", default=None, help="output folder (default: PATH/report; required with several "
                        "paths)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="a run is solved once f - f* <= TOL (f(x0) - f*) (default 1e-6)")
    parser.add_argument("--cost", choices=("nfev", "evals", "time"), default="evals",
                        help="what the profiles count: nfev, evals = nfev + ngev + nhev (default), or time")
    parser.add_argument("--max-paths", type=int, default=25, help="paths drawn per panel at most (default 25)")
    parser.add_argument("--svg", action="store_true", help="write every figure as SVG too")
    parser.add_argument("--data", action="store_true",
                        help="open data files and import black-box functions named in the run records (e.g. "
                             "least_squares data=..., black_box function=...) to draw their landscape; off by default")
    parser.add_argument("--jobs", type=int, default=None, help="processes drawing figures (default: the cores)")
    parser.add_argument("--force", action="store_true", help="draw again even if the runs have not changed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *rest, **kw: f"optlab.report: warning: {message}\n"
    try:
        index = build_report(args.paths, args.out, tol=args.tol, max_paths=args.max_paths, cost=args.cost,
                             svg=args.svg, data_files=args.data, jobs=args.jobs, force=args.force,
                             progress=not args.quiet)
    except (ReportError, OSError) as exc:
        print(f"optlab.report: error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
