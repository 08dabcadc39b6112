"""Shared plotting pieces: figures without pyplot (Agg), saving as PNG and SVG, colours by learning rate."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")  # before matplotlib loads: never a window

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator  # noqa: E402

matplotlib.rcParams.update({
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 8,
    "figure.titlesize": 11.5, "svg.fonttype": "none", "axes.grid": True, "grid.alpha": 0.3,
    "figure.dpi": 100, "savefig.dpi": 100,
})

# viridis without its last, palest yellows, so every line stays visible on white
LR_CMAP = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, 256)), name="lr")
NO_LR_COLOR = "#222222"
DIVERGED_COLOR = "#d62728"
PANEL_W, PANEL_H = 3.6, 2.7
SETTING_COLORS = [matplotlib.colormaps["tab20"](i) for i in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11,
                                                             13, 15, 17, 19)]


@dataclasses.dataclass
class Plot:
    """A figure written to the report: file stem, section, title and a caption saying what it shows."""

    name: str
    section: str
    title: str
    caption: str


def new_figure(rows: int, cols: int, *, w: float = PANEL_W, h: float = PANEL_H, extra_w: float = 0.0,
               **subplot_kw: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(w * cols + extra_w, h * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **subplot_kw)
    return fig, axes


def save(fig: Figure, out_dir: Path, name: str) -> None:
    fig.savefig(out_dir / f"{name}.png", dpi=100)
    fig.set_layout_engine("none")  # keep the layout of the PNG: the SVG need not compute it again
    fig.savefig(out_dir / f"{name}.svg")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "x"


class LrColors:
    """Learning rate -> colour on a log scale shared by every panel of a figure."""

    def __init__(self, lrs: Any) -> None:
        lrs = np.unique([v for v in lrs if isinstance(v, float) and math.isfinite(v) and v > 0])
        self.active = lrs.size > 1  # one rate needs no colour scale: it is named in the figure's corner
        self.single = float(lrs[0]) if lrs.size == 1 else None
        lo, hi = (float(lrs.min()), float(lrs.max())) if lrs.size else (1.0, 1.0)
        if hi <= lo * 1.0001:
            lo, hi = lo / 2, hi * 2
        self.norm = LogNorm(vmin=lo, vmax=hi)

    def __call__(self, lr: float) -> Any:
        return LR_CMAP(self.norm(lr)) if math.isfinite(lr) else NO_LR_COLOR

    def note(self) -> str:
        """For the title when every run shares one rate (then there is no colour bar)."""
        return "" if self.single is None else f"\nlearning rate {self.single:g} in every run that has one"

    def colorbar(self, fig: Figure, axes: np.ndarray) -> None:
        if not self.active:
            return
        import matplotlib.cm as cm

        mappable = cm.ScalarMappable(norm=self.norm, cmap=LR_CMAP)
        bar = fig.colorbar(mappable, ax=list(np.ravel(axes)), shrink=0.8, pad=0.01, aspect=30)
        bar.set_label("learning rate (solver.lr, log scale)")
        log_ticks(bar.ax.yaxis, self.norm.vmin, self.norm.vmax)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(v: float, pos: object = None) -> str:
    if not (v > 0 and math.isfinite(v)):
        return ""
    k = math.log10(v)
    if abs(k - round(k)) > 1e-6:
        return ""
    return "1" if round(k) == 0 else "10" + str(round(k)).translate(_SUPERSCRIPT)


def decades(axis: Any) -> None:
    """Label a log axis 10⁻³, 10⁰, ... in plain text (mathtext is slow to lay out on many panels)."""
    axis.set_major_locator(LogLocator(base=10, numticks=8))
    axis.set_major_formatter(FuncFormatter(_power_of_ten))
    axis.set_minor_locator(NullLocator())  # minor ticks over 30 decades cost more than the rest of the panel


def log_ticks(axis: Any, low: float, high: float) -> None:
    """Decades on a wide log axis; 1-2-5 steps as plain numbers when it spans under two decades."""
    if high > 0 and low > 0 and high / low < 100:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        plain_numbers(axis)
    else:
        decades(axis)


def plain_numbers(axis: Any) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, pos=None: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def log_floor(values: np.ndarray) -> float:
    """The bottom of a log axis: a decade below the smallest positive value shown."""
    v = values[np.isfinite(values) & (values > 0)]
    return float(v.min()) / 10 if v.size else 1e-16


def panel_grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in np.ravel(axes)[used:]:
        ax.set_visible(False)
