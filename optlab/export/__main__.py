"""``python -m optlab.export {coco,ioh} PATH [PATH ...] --out DIR [--cost nfev|evals] [--force]``."""

from __future__ import annotations

import argparse
import sys
import warnings

from . import COSTS, FORMATS, ExportError, export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optlab.export",
        description="Write runs in COCO's format (for cocopp) or IOHprofiler's (for iohinspector and IOHanalyzer).")
    parser.add_argument("format", choices=FORMATS, help="coco or ioh")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a run directory or a tree of them (a sweep)")
    parser.add_argument("--out", required=True, help="the output folder (new or empty)")
    parser.add_argument("--cost", choices=COSTS, default="nfev",
                        help="what an evaluation is: nfev (function evaluations, COCO's count; default) or evals "
                             "(nfev + ngev + nhev)")
    parser.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *rest, **kw: f"optlab.export: warning: {message}\n"
    try:
        out = export(args.format, args.paths, args.out, cost=args.cost, force=args.force)
    except (ExportError, OSError) as exc:
        print(f"optlab.export: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
