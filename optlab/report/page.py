"""``index.html``: the figures with captions and the tables, every string from the runs escaped."""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path
from typing import Any

from .comparisons import section_html
from .data import COSTS, ReportData
from .html import CSS, breakable, fmt, table
from .links import setting_href, unit_href
from .style import Plot
from .summary import STATUS_ORDER, status_counts

MAX_RUN_ROWS = 300


# The HTML tables: a few columns that fit the page (every column is in the CSV files). A column is
# (header, function of a row giving its HTML, text or number).
SOLVER_COLUMNS = [
    ("solver setting", lambda r: _link(setting_href(r.solver_setting), r.solver_setting), "text"),
    ("problem", lambda r: _link(unit_href(r.solver_setting, r.problem), r.problem), "text"),
    ("runs", lambda r: fmt(r.runs), "num"), ("solved", lambda r: fmt(r.solved), "num"),
    ("how they ended", lambda r: escape(r.ended), "text"),
    ("iterations to tol", lambda r: fmt(r.median_iterations_to_tol), "num"),
    ("evaluations to tol", lambda r: fmt(r.median_evals_to_tol), "num"),
    ("f − f* at the end", lambda r: fmt(r.median_gap_final), "num"),
    ("time (s)", lambda r: fmt(r.median_wall_time_s), "num"),
]
RUN_COLUMNS = [
    ("run", lambda r: _link(f"{unit_href(r.solver_setting, r.problem)}#run-{r.run_id}", r.run_id), "text"),
    ("status", lambda r: f"<span class='status-{escape(str(r.status), quote=True)}'>{escape(str(r.verdict))}</span>",
     "text"),
    ("problem", lambda r: breakable(r.problem), "text"),
    ("solver setting", lambda r: breakable(r.solver_setting), "text"),
    ("start x0", lambda r: escape(str(r.x0)), "text"),
    ("iterations", lambda r: fmt(r.iterations), "num"),
    ("iterations to tol", lambda r: fmt(r.iterations_to_tol), "num"),
    ("evaluations to tol", lambda r: fmt(r.evals_to_tol), "num"),
    ("f − f* at the end", lambda r: fmt(r.gap_final), "num"), ("time (s)", lambda r: fmt(r.wall_time_s), "num"),
    ("directory", lambda r: breakable(r.path), "text"),
]


def _link(href: str, text: Any) -> str:
    return f"<a href='{escape(href, quote=True)}'>{breakable(text)}</a>"


def _figure(plot: Plot, drawn: dict[str, Any] | None, titles: dict[str, str], svg: bool) -> str:
    """A figure with its caption; its curves, cells and legend entries link to their runs: an SVG of
    links laid over the picture (:func:`.links.areas`)."""
    name = escape(plot.name, quote=True)
    img = f"<img src='{name}.png' alt='{escape(plot.title, quote=True)}'>"
    if drawn and drawn["areas"]:
        w, h = drawn["size"]
        links = []
        for href, kind, coords in drawn["areas"]:
            shape = (f"<polyline points='{' '.join(f'{v:g}' for v in coords)}'/>" if kind == "poly" else
                     f"<rect x='{coords[0]:g}' y='{coords[1]:g}' width='{coords[2]:g}' height='{coords[3]:g}'/>")
            links.append(f"<a href='{escape(href, quote=True)}'><title>{escape(titles.get(href, href))}</title>"
                         f"{shape}</a>")
        img = (f"<div class='linked'>{img}<svg viewBox='0 0 {w:g} {h:g}' preserveAspectRatio='none'>"
               + "".join(links) + "</svg></div>")
    also = f" <a class='note' href='{name}.svg'>(SVG)</a>" if svg else ""
    return (f"<figure><h3>{escape(plot.title)}{also}</h3>{img}<figcaption>{escape(plot.caption)}</figcaption>"
            "</figure>")


def write_page(data: ReportData, plots: list[Plot], runs: Any, solvers: Any, out_dir: Path, svg: bool = False,
               timing: str = "", drawn: dict[str, Any] | None = None, titles: dict[str, str] | None = None) -> Path:
    """``index.html``; ``drawn``: each figure's size and linked areas (by file stem), ``titles``: each run
    page's title (by href)."""
    drawn, titles = drawn or {}, titles or {}
    counts = status_counts(data.runs)
    where = ", ".join(f"<code>{escape(str(r))}</code>" + (f" (“{escape(s)}”)" if s else "")
                      for r, s in zip(data.roots, data.sweeps))
    title = escape(", ".join(str(r) for r in data.roots))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>optlab report: {title}</title><style>{CSS}</style></head><body>",
             f"<h1>optlab report: {title}</h1>",
             f"<p>{len(data.runs)} runs read from {where} on {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
             f"{escape(timing)}. Files: <a href='summary.csv'>summary.csv</a> (one row per run), "
             f"<a href='solvers.csv'>solvers.csv</a> (one row per solver setting and problem); every figure as "
             f"PNG{' (shown) and SVG (click a figure)' if svg else ''}.</p>",
             "<p class='note'>f* is the objective's known minimum; where it is unknown, the best value any run "
             "found on that problem stands in for it. A run is <b>solved</b> at its first iterate with "
             f"f − f* ≤ {escape(f'{data.tol:g}')} · (f(x0) − f*) (Moré and Wild's test, the same for every "
             "problem); “to tol” columns count iterations, evaluations and seconds until then. Cost in the "
             f"profiles: {escape(COSTS[data.cost])}. Runs are pooled into one median band only when every "
             "recorded option is the same.</p>",
             "<h2>Status of the runs</h2>",
             "<table><tr>" + "".join(f"<th>{escape(s)}</th>" for s in counts) + "<th>total</th></tr><tr>"
             + "".join(f"<td>{n}</td>" for n in counts.values()) + f"<td>{len(data.runs)}</td></tr></table>",
             "<p class='note'>converged: a stopping test was met; max_iter / max_seconds: the budget ran out; "
             "diverged: f or x stopped being finite; failed: the method could not go on; error: the objective or "
             "solver raised; interrupted: stopped by the user; invalid: the options were rejected before running; "
             "not applicable: the solver does not apply to the objective (skipped, not a failure).</p>"]
    if data.skipped:
        items = "".join(f"<li>{escape(m)}</li>" for m in data.skipped)
        parts.append(f"<div class='warn'><b>{len(data.skipped)} item(s) skipped</b> (not in the figures or "
                     f"tables):<ul>{items}</ul></div>")
    notes = list(data.notes) + [f"{p.label}: {p.note}" for p in data.problems.values() if p.note]
    if notes:
        parts.append("<div class='note'><b>Notes</b><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes)
                     + "</ul></div>")
    sections = list(dict.fromkeys(p.section for p in plots))
    if len(sections) > 1:
        parts.append("<p>" + " · ".join(f"<a href='#{_anchor(s)}'>{escape(s)}</a>" for s in sections) + "</p>")
    parts.append("<h2>By solver setting and problem</h2>")
    parts.append("<p class='note'>Medians over the runs of each row (iterations, evaluations and time to tol: over "
                 "the runs that got there; f − f* at the end: over all, a diverged run counting as inf). Each row "
                 "links to a page of its runs: their paths, f − f* and step sizes, and how each ended. Curves, "
                 "cells and legend entries in the figures link to their runs too.</p>")
    parts.append(table(solvers.assign(ended=_ended(solvers)), SOLVER_COLUMNS) if len(solvers) else
                 "<p>No runs.</p>")
    section = None
    for plot in plots:
        if plot.section != section:
            section = plot.section
            parts.append(f"<h2 id='{_anchor(section)}'>{escape(section)}</h2>")
            parts.append(section_html(data, section))
        parts.append(_figure(plot, drawn.get(plot.name), titles, svg))
    if not plots:
        parts.append("<p>No figures: no run read has iterates.</p>")
    parts.append("<h2>Runs</h2>")
    if len(runs) > MAX_RUN_ROWS:
        parts.append(f"<p class='note'>The first {MAX_RUN_ROWS} of {len(runs)} runs; all are in "
                     f"<a href='summary.csv'>summary.csv</a> and on the pages of the table above.</p>")
    parts.append(table(runs.head(MAX_RUN_ROWS), RUN_COLUMNS))
    parts.append("</body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _ended(solvers: Any) -> list[str]:
    """Per row of the table by setting and problem: its status counts as text ("3 converged, 1 diverged")."""
    statuses = [c for c in [*STATUS_ORDER, "not_applicable"] if c in solvers]
    counts = solvers[statuses].fillna(0).astype(int).to_numpy()
    return [", ".join(f"{n} {c.replace('_', ' ')}" for c, n in zip(statuses, row) if n) for row in counts]


def _anchor(text: str) -> str:
    return "s-" + "".join(c if c.isalnum() else "-" for c in text.lower())[:60]
