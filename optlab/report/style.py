"""Shared plotting pieces: the report's style (applied in ``matplotlib.rc_context`` only), figures
laid out in inches without pyplot, colours and line styles, log axes with a floor for exact values.

Nothing here changes the caller's matplotlib state: figures are ``matplotlib.figure.Figure``
objects (no pyplot, no backend switch), and the style is a context entered around building and
saving each figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from .links import setting_href

RC = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 8, "figure.titlesize": 11,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "svg.fonttype": "none", "axes.grid": True, "grid.alpha": 0.3,
    "figure.dpi": 100, "savefig.dpi": 100, "text.usetex": False, "text.parse_math": False,
    "axes.formatter.use_mathtext": False, "axes.titlelocation": "center", "legend.frameon": False,
    "path.simplify": True, "agg.path.chunksize": 20000, "figure.max_open_warning": 0,
}

# Qualitative colours (tab10 order, grey last) and line styles: setting k gets colour k mod 10 and style
# k mod 3, a distinct pair for up to 30 settings, neighbours differing in both. A legend names the best
# MAX_LEGEND_SETTINGS; the others are drawn thin in OTHERS_COLOR and summarised in one entry.
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
          "#7f7f7f"]
STYLES = ["-", "--", ":"]
START_STYLES = ["-", "--", ":", "-."]  # starts told apart within one colour
DIVERGED_COLOR = "#d62728"
NA_COLOR = "#f0f0f0"
MAX_LEGEND_SETTINGS = 16
OTHERS_COLOR = "#bbbbbb"
# viridis without its palest yellows, so every line stays visible on white
LR_CMAP = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, 256)), name="lr")
NO_LR_COLOR = "#222222"
MAX_DISCRETE_RATES = 8


@dataclasses.dataclass
class Plot:
    """A figure of the report: file stem, section, title and a caption saying what it shows."""

    name: str
    section: str
    title: str
    caption: str


@contextlib.contextmanager
def context() -> Iterator[None]:
    """The report's style, for the duration of the block only."""
    with matplotlib.rc_context(RC):
        yield


def setting_style(rank: int) -> dict[str, Any]:
    return {"color": COLORS[rank % len(COLORS)], "ls": STYLES[rank % len(STYLES)]}


def line_style(data: Any, setting: str) -> dict[str, Any]:
    """A setting's line in a figure whose legend lists the best ``MAX_LEGEND_SETTINGS`` (:func:`capped_legend`):
    their colour x style, distinct for each; the others thin and grey."""
    if data.rank(setting) < MAX_LEGEND_SETTINGS:
        return {**data.style(setting), "lw": 1.6, "alpha": 1.0}
    return {"color": OTHERS_COLOR, "ls": "-", "lw": 0.8, "alpha": 0.7}


def capped_legend(data: Any, settings: list[str], names: list[str]) -> list:
    """Legend entries of ``settings`` (best first, labelled ``names``): the best ``MAX_LEGEND_SETTINGS``
    by name, each linking to its runs, the rest summarised in one grey entry."""
    from matplotlib.lines import Line2D

    shown = [(s, n) for s, n in zip(settings, names) if data.rank(s) < MAX_LEGEND_SETTINGS]
    handles = [Line2D([], [], lw=1.6, label=n, url=setting_href(s), **data.style(s)) for s, n in shown]
    if len(settings) > len(shown):
        handles.append(Line2D([], [], color=OTHERS_COLOR, lw=0.8, label=f"{len(settings) - len(shown)} more "
                              "settings, grey (all in solvers.csv)"))
    return handles


def start_style(k: int) -> str:
    return START_STYLES[k % len(START_STYLES)]


@dataclasses.dataclass
class Grid:
    """A figure of ``rows`` x ``cols`` panels of fixed size in inches, with margins for legends and bars."""

    fig: Figure
    axes: np.ndarray
    right_x: float  # figure fraction where the right margin starts
    top_y: float  # figure fraction of the top of the panels
    bottom_y: float


def text_width(text: str, points: float) -> float:
    """Inches that ``text`` takes at ``points`` (DejaVu Sans: at most about 0.62 em a character)."""
    return 0.62 * points / 72 * len(text)


LEGEND_ROW = 0.19  # inches per legend entry at 8 pt


def grid(rows: int, cols: int, *, w: float = 3.4, h: float = 2.5, left: float = 0.75, right: float = 0.25,
         top: float = 0.75, bottom: float = 0.55, wspace: float = 0.25, hspace: float = 0.5,
         sharex: bool | str = False, sharey: bool | str = False, title: str = "", legend_rows: int = 0) -> Grid:
    """Panels laid out in inches (no layout engine: fast, and the same in PNG and SVG), with ``title``
    above them; the figure is made wide enough for the title and tall enough for a legend of
    ``legend_rows`` entries in its right margin, so that neither is cut off."""
    width = left + cols * w + (cols - 1) * wspace + right
    height = top + rows * h + (rows - 1) * hspace + bottom
    wide = text_width(title, RC["figure.titlesize"]) + 0.4
    if wide > width:  # the panels centred under the title
        left, right, width = left + (wide - width) / 2, right + (wide - width) / 2, wide
    tall = top + legend_rows * LEGEND_ROW + 0.3
    if tall > height:
        bottom, height = bottom + tall - height, tall
    fig = Figure(figsize=(width, height))
    if title:
        fig.suptitle(title)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=sharex, sharey=sharey)
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=wspace / w, hspace=hspace / h)
    return Grid(fig, axes, 1 - right / width + 0.1 / width, 1 - top / height, bottom / height)


BAR_WIDTH = 1.05  # inches of right margin for a colour bar of learning rates


def outer_labels(g: Grid, used: int) -> None:
    """Axis labels on the outer panels only (x below the last panel of each column, y in the
    first column) of the first ``used`` panels; the panels after them hidden."""
    ncols = g.axes.shape[1] if g.axes.ndim == 2 else len(g.axes)
    for k, ax in enumerate(g.axes.ravel()[:used]):
        if k + ncols < used:
            ax.set_xlabel("")
        else:
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % ncols:
            ax.set_ylabel("")
    for ax in g.axes.ravel()[used:]:
        ax.set_visible(False)


def bar_and_legend(g: Grid, colors: LrColors | None, handles: list) -> None:
    """The learning-rate colour bar (when the rates are too many for a legend) and the legend, in the
    right margin of ``g``."""
    x = g.right_x
    if colors is not None and colors.active and not colors.discrete:
        width = g.fig.get_figwidth()
        colors.colorbar(g.fig, [x, g.bottom_y, 0.13 / width, g.top_y - g.bottom_y])
        x += BAR_WIDTH / width
    if handles:
        legend(g.fig, handles, loc="upper left", bbox_to_anchor=(x, g.top_y), frameon=False, borderaxespad=0)


def legend(fig: Figure, handles: list, **kwargs: Any) -> Any:
    """``fig.legend`` whose entries link where their handles do (a handle's ``url``: see :mod:`.links`)."""
    made = fig.legend(handles=handles, **kwargs)
    for text, handle in zip(made.get_texts(), handles):
        if handle.get_url():
            text.set_url(handle.get_url())
    return made


def needs_bar(colors: LrColors | None) -> bool:
    return colors is not None and colors.active and not colors.discrete


def legend_width(labels: list[str], title: str = "") -> float:
    """Inches a legend of these labels takes at 8 pt."""
    longest = max([len(s) for s in labels] + [len(title)] + [4])
    return 0.75 + 0.065 * min(longest, 100)


def title(ax: Any, text: str, size: float | None = None, pad: float = 5) -> None:
    """A panel title at a fixed height (matplotlib's automatic placement costs a layout pass per panel)."""
    ax.set_title(text, y=1.0, pad=pad, fontsize=size or (8.5 if len(text) > 40 else None))


def hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in np.ravel(axes)[used:]:
        ax.set_visible(False)


def save(fig: Figure, out_dir: Path, name: str, svg: bool = False) -> list[str]:
    """Write ``name.png`` (and ``name.svg``); the figure keeps its Agg canvas, so that where its artists
    landed can be read afterwards (:func:`.links.areas`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with context():
        fig.savefig(out_dir / f"{name}.png", dpi=100, pil_kwargs={"compress_level": 3})
        if svg:
            fig.savefig(out_dir / f"{name}.svg")
    return [f"{name}.png"] + ([f"{name}.svg"] if svg else [])


def natural_key(text: str) -> tuple:
    """Sort key reading the numbers in ``text`` as numbers ("lr=0.0001" < "lr=0.001" < "lr=0.01")."""
    parts = re.split(r"(-?\d+(?:\.\d*)?(?:e-?\d+)?)", str(text))
    return tuple((0, float(p), "") if k % 2 else (1, 0.0, p) for k, p in enumerate(parts) if p)


# -- numbers on axes ------------------------------------------------------------------------
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_label(v: float) -> str:
    if not (v > 0 and math.isfinite(v)):
        return ""
    k = math.log10(v)
    if abs(k - round(k)) > 1e-6:
        return f"{v:g}"
    return "1" if round(k) == 0 else "10" + str(round(k)).translate(_SUPERSCRIPT)


def count_label(v: float) -> str:
    """0, 1, 10, 100, 1000, 10⁴, ...: plain numbers up to 1000."""
    if v == 0:
        return "0"
    if abs(v) < 1e4 and abs(v) >= 1e-3:
        return f"{v:g}"
    return ("−" if v < 0 else "") + power_label(abs(v))


def decade_ticks(lo: float, hi: float, most: int = 8) -> list[float]:
    """Powers of ten from ``lo`` to ``hi``, every k-th (exponents multiples of k) so that at most ``most``."""
    a, b = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    step = max(1, math.ceil((b - a + 1) / most))
    return [10.0 ** e for e in range(a, b + 1) if e % step == 0] or [10.0 ** a]


def log_y(ax: Any, floor: float | None, bottom: float, top: float, zero_label: str = "≤ 0") -> None:
    """A log y axis from ``bottom`` to ``top``; with a ``floor``, its tick reads ``zero_label``."""
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    lo = floor if floor is not None else bottom
    ticks = decade_ticks(lo, top, most=6)
    if floor is not None and ticks[0] != floor:
        ticks = [floor] + [t for t in ticks if t > floor * 9.9]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, pos=None: zero_label if floor is not None and abs(v - floor) <= floor * 1e-6 else power_label(v)))


def log_ticks(axis: Any, low: float, high: float) -> None:
    """Decades on a wide log axis; 1-2-5 steps as plain numbers when it spans under two decades."""
    if high > 0 and low > 0 and high / low < 100:
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                 for m in (1, 2, 5) if low * 0.999 <= m * 10.0 ** e <= high * 1.001]
        axis.set_major_locator(FixedLocator(ticks or [low, high]))
        axis.set_major_formatter(FuncFormatter(lambda v, pos=None: f"{v:g}"))
    else:
        axis.set_major_locator(FixedLocator(decade_ticks(low, high)))
        axis.set_major_formatter(FuncFormatter(lambda v, pos=None: count_label(v)))
    axis.set_minor_locator(NullLocator())


def count_axis(ax: Any, symlog: bool, linthresh: float, hi: float, lo: float = 0.0) -> None:
    """An x axis of counts or seconds: linear, or symlog (linear to ``linthresh``, log beyond)."""
    if symlog:
        ax.set_xscale("symlog", linthresh=linthresh, linscale=0.3)
        ticks = [0.0] + [t for t in decade_ticks(linthresh, hi, most=6) if t >= linthresh * 0.999]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, pos=None: count_label(v)))
    ax.set_xlim(lo, hi)


# -- colour by learning rate -------------------------------------------------------------
class LrColors:
    """Learning rate -> colour, shared by every panel: up to 8 rates as a discrete legend, else a
    log colour bar."""

    def __init__(self, lrs: Any) -> None:
        self.rates = [float(v) for v in np.unique([v for v in lrs if isinstance(v, float) and math.isfinite(v)
                                                   and v > 0])]
        self.active = len(self.rates) > 1
        self.discrete = len(self.rates) <= MAX_DISCRETE_RATES
        lo, hi = (self.rates[0], self.rates[-1]) if self.rates else (1.0, 1.0)
        if hi <= lo * 1.0001:
            lo, hi = lo / 2, hi * 2
        self.norm = LogNorm(vmin=lo, vmax=hi)

    def __call__(self, lr: float) -> Any:
        if not math.isfinite(lr):
            return NO_LR_COLOR
        if self.discrete and len(self.rates) > 1:
            k = int(np.argmin(np.abs(np.log(self.rates) - math.log(lr))))
            return LR_CMAP(k / (len(self.rates) - 1))
        return LR_CMAP(self.norm(lr))

    def handles(self) -> list:
        from matplotlib.lines import Line2D

        return [Line2D([], [], color=self(r), lw=2, label=f"{r:g}") for r in self.rates]

    def colorbar(self, fig: Figure, rect: list[float]) -> None:
        import matplotlib.cm as cm

        bar = fig.colorbar(cm.ScalarMappable(norm=self.norm, cmap=LR_CMAP), cax=fig.add_axes(rect))
        bar.set_label("learning rate (log scale)")
        log_ticks(bar.ax.yaxis, self.norm.vmin, self.norm.vmax)


def level_norm(levels: np.ndarray, cmap: Any) -> BoundaryNorm:
    return BoundaryNorm(levels, cmap.N, extend="both")
