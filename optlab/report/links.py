"""From the page's figures to the runs behind them: page names, and the areas of a figure that link.

A figure marks what links with matplotlib's own ``artist.set_url(href)`` (curves, heatmap and table
cells, legend entries); the SVG export keeps those links as they are. For the PNG on the page,
:func:`areas` reads, once the figure is drawn, where each marked artist landed in pixels: a line as a
polyline, a cell or a legend entry as a rectangle. The page lays them over the image as an SVG of
links (:mod:`.page`), so that clicking a profile curve or a heatmap cell opens its runs.

Pages live in ``runs/`` beside ``index.html``, named after what they show and a short hash of it
(the same name in every build of the same runs).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np

RUNS_DIR = "runs"
MAX_VERTICES = 200  # per linked polyline


def slug(text: str) -> str:
    """``text`` as a file name's part: runs of other characters than letters and digits as "_"."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "x"


def _name(kind: str, key: Any, label: str) -> str:
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True, default=str).encode(), digest_size=4).hexdigest()
    return f"{RUNS_DIR}/{kind}-{slug(label)[:40]}-{digest}.html"


def unit_href(setting: str, problem_label: str) -> str:
    """The page of one solver setting's runs on one problem (a row of the table by setting and problem)."""
    return _name("u", [setting, problem_label], f"{setting} {problem_label}")


def setting_href(setting: str) -> str:
    """The page of all runs of one solver setting (a profile curve)."""
    return _name("s", setting, setting)


def cell_href(problem_label: str, panel: str, lr: float, start: str) -> str:
    """The page of the runs in one heatmap cell."""
    return _name("c", [problem_label, panel, repr(float(lr)), start], f"{panel} lr {lr:g} {start} {problem_label}")


def areas(fig: Any) -> list[tuple[str, str, list[float]]]:
    """``(href, "poly" or "rect", pixel coordinates from the top left)`` of every artist of the drawn
    ``fig`` that has a url: lines as polylines (cut to their axes), anything else as its box."""
    from matplotlib.cbook import STEP_LOOKUP_MAP
    from matplotlib.lines import Line2D

    renderer = fig.canvas.get_renderer()
    height = fig.bbox.height
    out: list[tuple[str, str, list[float]]] = []
    for artist in fig.findobj(lambda a: a.get_url() is not None and a.get_visible()):
        href = artist.get_url()
        if isinstance(artist, Line2D):
            x, y = (np.asarray(v, dtype=float) for v in artist.get_data())
            x, y = STEP_LOOKUP_MAP[artist.get_drawstyle()](x, y)
            xy = artist.get_transform().transform(np.column_stack([x, y]))
            box = artist.axes.bbox if artist.axes is not None else fig.bbox
            for piece in _pieces(xy, box, height):
                out.append((href, "poly", piece))
        else:
            ext = artist.get_window_extent(renderer)
            if ext.width > 0 and ext.height > 0:
                out.append((href, "rect", [round(float(v), 1) for v in
                                           (ext.x0, height - ext.y1, ext.width, ext.height)]))
    return out


def _pieces(xy: np.ndarray, box: Any, height: float) -> list[list[float]]:
    """The finite stretches of a line in pixels, held inside ``box``, at most ``MAX_VERTICES`` each."""
    ok = np.all(np.isfinite(xy), axis=1)
    xy = np.column_stack([np.clip(xy[:, 0], box.x0, box.x1), height - np.clip(xy[:, 1], box.y0, box.y1)])
    pieces = []
    for run in np.split(np.arange(len(xy)), np.flatnonzero(np.diff(ok.astype(int)) != 0) + 1):
        if run.size >= 2 and ok[run[0]]:
            keep = np.unique(np.linspace(0, run.size - 1, min(run.size, MAX_VERTICES)).round().astype(int))
            pieces.append([round(float(v), 1) for v in xy[run[keep]].ravel()])
    return pieces
