"""The chart of a group of runs on one problem, for the run pages: where each went (its path over the
landscape), f - f* and the step size at every iteration, a colour per run.

Paths are cut at the box like the paths figure's (:func:`.landscape.clip_path`), a diverged run drawn up
to where it leaves; f - f* shares the convergence figures' rules (:mod:`.layout`: the floor for values
<= 0, the top of the axis, a diverged run's ✕ where it leaves).
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from .data import ReportData
from .landscape import clip_path, plot_box, shading
from .layout import exit_point, floor_of, x_axis
from .problems import ProblemInfo
from .style import COLORS
from .svg import Panel, Scale, chart, thin

PANEL_W, PANEL_H = 300.0, 220.0
LEFT, GAP, TOP = 70.0, 90.0, 34.0
DASHES = ["", "6 3", "2 3"]
MAX_RUNS = 25  # drawn in one chart; the page's table lists them all


def run_colors(n: int) -> list[tuple[str, str]]:
    """``(colour, dash)`` for n runs: ten colours, then the same with dashes."""
    return [(COLORS[k % len(COLORS)], DASHES[(k // len(COLORS)) % len(DASHES)]) for k in range(n)]


def landscape_uri(info: ProblemInfo) -> str:
    """The 2-D problem's filled contours as a PNG data URI (the same shading as the paths figure)."""
    from PIL import Image

    rgba, _ = shading(info)
    buffer = io.BytesIO()
    Image.fromarray((np.asarray(rgba)[::-1] * 255).round().astype(np.uint8), "RGBA").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def run_chart(data: ReportData, problem: str, run_ids: list[str], labels: list[str],
              landscape: str | None = None) -> str:
    """An SVG chart of ``run_ids`` (at most ``MAX_RUNS``, labelled ``labels`` in its legend) on ``problem``;
    ``landscape``: the shading's URI for a 2-D problem the report could rebuild."""
    info = data.problems[problem]
    status = dict(zip(data.valid.run_id, data.valid.status))
    f_ref = dict(zip(data.valid.run_id, data.valid.f_ref.astype(float)))
    runs = [(r, data.traces[r], status[r] == "diverged") for r in run_ids[:MAX_RUNS]]
    styles = run_colors(len(runs))
    panels = []
    if info.drawable:
        panels.append(_paths(info, runs, styles, landscape))
    panels.append(_gaps(runs, f_ref, styles, len(panels), info.f_star is not None))
    panels.append(_steps(runs, styles, len(panels)))
    width = LEFT + len(panels) * PANEL_W + (len(panels) - 1) * GAP + 20
    legend = [(c, d, text) for (c, d), text in zip(styles, labels)]
    height = TOP + PANEL_H + 50 + 18 * math.ceil(len(legend) / 3) + 6
    return chart(panels, width, height, legend, f"{len(runs)} runs on {info.label}")


def _at(k: int) -> float:
    return LEFT + k * (PANEL_W + GAP)


def _paths(info: ProblemInfo, runs: list[tuple[str, Any, bool]], styles: list[tuple[str, str]],
           landscape: str | None) -> Panel:
    box = plot_box(info, [t for _, t, _ in runs])
    two = info.dim == 2
    p = Panel(_at(0), TOP, PANEL_W, PANEL_H, Scale(*box[0]), Scale(*box[1]), "path of the iterates",
              "x₀" if two else "x", "x₁" if two else "f(x)")
    if two and landscape:
        p.image(landscape)
    elif not two and info.plottable:
        xs, fs = info.surface()
        p.line(xs, fs, "#999999", width=1.5)
    (x0, x1), (y0, y1) = box
    for (_, t, diverged), (color, dash) in zip(runs, styles):
        x, y = t.x[:, 0], (t.x[:, 1] if two else t.f)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            continue
        if diverged:  # up to where it first leaves the box
            out = np.flatnonzero(ok & ~((x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)))
            if out.size:
                x, y, ok = x[: out[0] + 1], y[: out[0] + 1], ok[: out[0] + 1]
        keep = thin(len(x), symlog=True)
        px, py, _ = clip_path(x[keep], y[keep], box)
        p.line(px, py, color, dash)
        xs, ys = x[ok], y[ok]
        inside = (x0 <= xs) & (xs <= x1) & (y0 <= ys) & (ys <= y1)
        if inside[0]:
            p.mark(xs[0], ys[0], "start", color)
        drawn = np.flatnonzero(np.isfinite(px))
        if diverged and drawn.size:
            p.mark(px[drawn[-1]], py[drawn[-1]], "diverged", color)
        elif inside[-1]:
            p.mark(xs[-1], ys[-1], "end", color)
    for m in info.minimizers:
        p.mark(m[0], m[1] if two else info.value(m), "minimum", "black")
    return p


def _iterations(runs: list[tuple[str, Any, bool]]) -> Scale:
    """The iteration axis: symlog where the runs' lengths span decades (as in the convergence figures)."""
    symlog, linthresh, hi = x_axis([t.iter for _, t, _ in runs], "iter")
    return Scale(0.0, hi, "symlog" if symlog else "linear", linthresh, integer=True)


def _gaps(runs: list[tuple[str, Any, bool]], f_ref: dict[str, float], styles: list[tuple[str, str]], k: int,
          known: bool) -> Panel:
    gaps = [t.gap(f_ref[r]) for r, t, _ in runs]
    floor, zero = floor_of(gaps, [f_ref[r] for r, _, _ in runs])
    values = [g[np.isfinite(g) & (g > 0)] for g, (_, _, div) in zip(gaps, runs) if not div] + \
        [g[:1][np.isfinite(g[:1]) & (g[:1] > 0)] for g in gaps]
    top = max([float(v.max()) for v in values if v.size] + [floor * 1e3])
    top = 10.0 ** math.ceil(math.log10(top * 3))
    ys = Scale(floor / (2.5 if zero else 10), top, "log", floor=floor if zero else None)
    p = Panel(_at(k), TOP, PANEL_W, PANEL_H, _iterations(runs), ys,
              "f − f*" if known else "f − f* (f*: the best f found)", "iteration", "f − f*")
    for (_, t, diverged), gap, (color, dash) in zip(runs, gaps, styles):
        keep = thin(len(gap), p.xs.kind == "symlog")
        xv, shown = t.iter[keep], np.where(np.isfinite(gap[keep]), np.maximum(gap[keep], floor), np.nan)
        if diverged:
            leaves = exit_point(xv, shown, top)
            if leaves is None:
                continue
            n, x_out, y_out = leaves
            xv, shown = np.r_[xv[:n], x_out], np.r_[shown[:n], y_out]
            p.mark(x_out, y_out, "diverged", color)
        p.line(xv, shown, color, dash)
        exact = np.flatnonzero(np.isfinite(gap) & (gap <= 0))
        if exact.size and (not diverged or t.iter[exact[0]] <= xv[-1]):
            p.mark(t.iter[exact[0]], floor, "exact", color)
    return p


def _steps(runs: list[tuple[str, Any, bool]], styles: list[tuple[str, str]], k: int) -> Panel:
    steps = [t.step_size for _, t, _ in runs]
    positive = np.concatenate([s[np.isfinite(s) & (s > 0)] for s in steps] + [np.empty(0)])
    xs = _iterations(runs)
    if not positive.size:
        p = Panel(_at(k), TOP, PANEL_W, PANEL_H, xs, Scale(0.0, 1.0), "step size", "iteration", "step size")
        p.note("no step sizes recorded")
        return p
    lo, top = float(positive.min()), float(positive.max())
    lo, top = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(top) + 1e-9)
    if top <= lo * 10:
        lo, top = lo / 10, top * 10
    p = Panel(_at(k), TOP, PANEL_W, PANEL_H, xs, Scale(lo, top, "log"), "step size (α, lr or radius)",
              "iteration", "step size")
    for (_, t, _), s, (color, dash) in zip(runs, steps, styles):
        keep = thin(len(s), xs.kind == "symlog")
        p.line(t.iter[keep], np.where(s[keep] > 0, s[keep], np.nan), color, dash)
    return p

