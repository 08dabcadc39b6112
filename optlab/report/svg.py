"""Small SVG charts for the run pages: panels with linear, log or symlog axes, lines and marks.

The run pages hold a chart for every group of runs behind a table row, profile curve or heatmap
cell: hundreds for a large sweep. Written as SVG text they cost milliseconds each (a matplotlib
figure costs a quarter of a second), stay sharp at any zoom and scale with the page. Ticks and
their labels are those of the report's matplotlib figures (:mod:`.style`).
"""

from __future__ import annotations

import dataclasses
import math
from html import escape
from typing import Any

import numpy as np

from .style import count_label, decade_ticks, power_label

FONT = "font-family:system-ui,sans-serif"
GRID = "#e4e4e4"
MAX_POINTS = 300  # per line: a chart is ~500 px wide


@dataclasses.dataclass
class Scale:
    """Data to [0, 1] along an axis: ``linear``, ``log`` or ``symlog`` (linear up to ``linthresh``, log
    beyond, the linear part as long as 0.3 decade); ``floor``: a log axis's tick for values <= 0."""

    lo: float
    hi: float
    kind: str = "linear"
    linthresh: float = 1.0
    floor: float | None = None
    integer: bool = False  # ticks at whole numbers only (iterations)

    def _t(self, v: np.ndarray) -> np.ndarray:
        if self.kind == "log":
            return np.log10(np.maximum(v, 1e-300))
        if self.kind == "symlog":
            a = np.abs(v) / self.linthresh
            return np.sign(v) * np.where(a <= 1, 0.3 * a, 0.3 + np.log10(np.maximum(a, 1.0)))
        return np.asarray(v, dtype=float)

    def __call__(self, v: Any) -> np.ndarray:
        lo, hi = self._t(np.array([self.lo, self.hi], dtype=float))
        return (self._t(np.asarray(v, dtype=float)) - lo) / ((hi - lo) or 1.0)

    def ticks(self) -> list[tuple[float, str]]:
        """``(value, label)`` of each tick within the axis."""
        return [(v, label) for v, label in self._ticks() if self.lo - 1e-12 * abs(self.lo) <= v <= self.hi * (1 + 1e-9)]

    def _ticks(self) -> list[tuple[float, str]]:
        if self.kind == "log":
            out = [(t, power_label(t)) for t in decade_ticks(self.floor or self.lo, self.hi, most=5)]
            if self.floor is not None:
                out = [(self.floor, "≤ 0")] + [(t, s) for t, s in out if t > self.floor * 9.9]
            return out
        if self.kind == "symlog":
            return [(0.0, "0")] + [(t, count_label(t)) for t in decade_ticks(self.linthresh, self.hi, most=5)
                                   if t >= self.linthresh * 0.999]
        from matplotlib.ticker import MaxNLocator

        locator = MaxNLocator(5, integer=self.integer, steps=[1, 2, 2.5, 5, 10])
        return [(float(t), f"{t:.6g}") for t in locator.tick_values(self.lo, self.hi)]


def thin(n: int, symlog: bool) -> np.ndarray:
    """At most ``MAX_POINTS`` indices of ``n`` points, the first and last kept; spaced geometrically
    on a symlog axis, so that early iterates stay."""
    if n <= MAX_POINTS:
        return np.arange(n)
    spaced = np.geomspace(1, n, MAX_POINTS) - 1 if symlog else np.linspace(0, n - 1, MAX_POINTS)
    return np.unique(np.r_[0, spaced.round().astype(int), n - 1])


@dataclasses.dataclass
class Panel:
    """A plot area of ``w`` x ``h`` px at ``(x, y)`` in the chart, its scales, and what is drawn in it."""

    x: float
    y: float
    w: float
    h: float
    xs: Scale
    ys: Scale
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    body: list[str] = dataclasses.field(default_factory=list)  # cut to the plot area
    marks: list[str] = dataclasses.field(default_factory=list)  # on top, not cut (a ✕ on the edge)

    def px(self, xv: Any, yv: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.x + self.w * self.xs(xv), self.y + self.h * (1 - self.ys(yv))

    def line(self, xv: np.ndarray, yv: np.ndarray, color: str, dash: str = "", width: float = 1.4) -> None:
        """A polyline, broken where a value is not finite."""
        px, py = self.px(xv, yv)
        ok = np.isfinite(px) & np.isfinite(py)
        for run in np.split(np.arange(len(px)), np.flatnonzero(np.diff(ok.astype(int)) != 0) + 1):
            if run.size and ok[run[0]]:
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px[run], py[run]))
                style = f' stroke-dasharray="{dash}"' if dash else ""
                self.body.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                                 f'stroke-width="{width}"{style} stroke-linejoin="round"/>')

    def mark(self, xv: float, yv: float, kind: str, color: str) -> None:
        """``start`` (open circle), ``end`` (dot), ``diverged`` (✕), ``minimum`` (star), ``exact`` (▼)."""
        px, py = (float(v[0]) for v in self.px([xv], [yv]))
        if not (math.isfinite(px) and math.isfinite(py)):
            return
        shapes = {
            "start": f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="white" stroke="{color}" stroke-width="1.6"/>',
            "end": f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}" stroke="black" stroke-width="0.6"/>',
            "diverged": f'<text x="{px:.1f}" y="{py + 4:.1f}" text-anchor="middle" font-size="13" fill="{color}" '
                        f'stroke="#d62728" stroke-width="0.6" style="{FONT}">✕</text>',
            "minimum": f'<text x="{px:.1f}" y="{py + 5:.1f}" text-anchor="middle" font-size="15" fill="white" '
                       f'stroke="black" stroke-width="0.8" style="{FONT}">★</text>',
            "exact": f'<path d="M{px - 4:.1f},{py - 7:.1f}h8l-4,7z" fill="{color}" stroke="black" '
                     'stroke-width="0.6"/>',
        }
        self.marks.append(shapes[kind])

    def image(self, href: str) -> None:
        """A picture filling the plot area (a landscape's shading)."""
        self.body.insert(0, f'<image href="{escape(href, quote=True)}" x="{self.x:.1f}" y="{self.y:.1f}" '
                            f'width="{self.w:.1f}" height="{self.h:.1f}" preserveAspectRatio="none"/>')

    def note(self, text: str) -> None:
        self.body.append(f'<text x="{self.x + self.w / 2:.1f}" y="{self.y + self.h / 2:.1f}" text-anchor="middle" '
                         f'font-size="12" fill="grey" style="{FONT}">{escape(text)}</text>')

    def svg(self, clip: str) -> str:
        out = [f'<clipPath id="{clip}"><rect x="{self.x:.1f}" y="{self.y:.1f}" width="{self.w:.1f}" '
               f'height="{self.h:.1f}"/></clipPath>']
        for value, label in self.xs.ticks():
            px = self.x + self.w * float(self.xs(value))
            out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{self.y:.1f}" y2="{self.y + self.h:.1f}" '
                       f'stroke="{GRID}"/>')
            out.append(_text(px, self.y + self.h + 14, label, 11, "middle"))
        for value, label in self.ys.ticks():
            py = self.y + self.h * (1 - float(self.ys(value)))
            out.append(f'<line x1="{self.x:.1f}" x2="{self.x + self.w:.1f}" y1="{py:.1f}" y2="{py:.1f}" '
                       f'stroke="{GRID}"/>')
            out.append(_text(self.x - 5, py + 4, label, 11, "end"))
        out.append(f'<g clip-path="url(#{clip})">' + "".join(self.body) + "</g>")
        out.append(f'<rect x="{self.x:.1f}" y="{self.y:.1f}" width="{self.w:.1f}" height="{self.h:.1f}" '
                   'fill="none" stroke="#333"/>')
        out += self.marks
        out.append(_text(self.x + self.w / 2, self.y - 8, self.title, 13, "middle"))
        out.append(_text(self.x + self.w / 2, self.y + self.h + 32, self.xlabel, 12, "middle"))
        out.append(_text(self.x - 48, self.y + self.h / 2, self.ylabel, 12, "middle",
                         f' transform="rotate(-90 {self.x - 48:.1f} {self.y + self.h / 2:.1f})"'))
        return "".join(out)


def _text(x: float, y: float, text: str, size: float, anchor: str, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" style="{FONT}"{extra}>'
            f"{escape(text)}</text>")


def chart(panels: list[Panel], width: float, height: float, legend: list[tuple[str, str, str]], label: str) -> str:
    """An SVG document of ``panels`` and, below them, ``legend`` entries ``(colour, dash, text)``."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(label, quote=True)}">',
             f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>']
    parts += [p.svg(f"c{k}") for k, p in enumerate(panels)]
    x, y = 60.0, height - 18.0 * math.ceil(len(legend) / 3) - 4
    for k, (color, dash, text) in enumerate(legend):
        cx, cy = x + (k % 3) * (width - 80) / 3, y + 18 * (k // 3)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{cx:.1f}" x2="{cx + 22:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{color}" '
                     f'stroke-width="2.2"{style}/>')
        parts.append(_text(cx + 28, cy + 4, text, 11, "start"))
    parts.append("</svg>")
    return "".join(parts)
