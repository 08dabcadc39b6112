"""``python -m optlab.report PATH [--out DIR] [--tol TOL]``: the report of a run directory or tree."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import ConfigError
from . import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optlab.report",
        description="Write index.html, figures (PNG and SVG) and summary CSVs for the runs under PATH.")
    parser.add_argument("path", help="a run directory or a tree of them (e.g. a sweep directory)")
    parser.add_argument("--out", default=None, help="output folder (default: PATH/report)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="a run is solved once f - f* <= TOL (f(x0) - f*) (default 1e-6)")
    parser.add_argument("--max-paths", type=int, default=25, help="paths drawn per panel at most (default 25)")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *rest, **kw: f"optlab.report: warning: {message}\n"
    try:
        index = build_report(args.path, args.out, tol=args.tol, max_paths=args.max_paths)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"optlab.report: error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
