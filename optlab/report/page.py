"""``index.html``: the figures with captions and the tables, every string from the runs escaped."""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from pathlib import Path
from typing import Any

from .comparisons import section_html
from .data import COSTS, ReportData
from .style import Plot
from .summary import status_counts

MAX_RUN_ROWS = 300

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-bottom: .3em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td.text { text-align: left; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; max-width: 60em; }
.warn { background: #fff4e0; border-left: 4px solid #e0a000; padding: .4em .8em; }
.note { color: #555; font-size: .9em; }
.status-diverged { color: #c00; font-weight: bold; } .status-invalid, .status-error, .status-failed { color: #800; }
"""


def _fmt(v: Any) -> str:
    import pandas as pd

    if v is None or v is pd.NA:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}"
    return str(v)


def _table(df: Any, text_columns: set[str]) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row):
            cls = ' class="text"' if c in text_columns else ""
            if c == "status":
                cls = f' class="text status-{escape(str(v), quote=True)}"'
            cells.append(f"<td{cls}>{escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_page(data: ReportData, plots: list[Plot], runs: Any, solvers: Any, out_dir: Path, svg: bool = False,
               timing: str = "") -> Path:
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
    parts.append(_table(solvers, {"solver_setting", "problem"}) if len(solvers) else "<p>No runs.</p>")
    section = None
    for plot in plots:
        if plot.section != section:
            section = plot.section
            parts.append(f"<h2 id='{_anchor(section)}'>{escape(section)}</h2>")
            parts.append(section_html(data, section))
        img = f"<img src='{escape(plot.name, quote=True)}.png' alt='{escape(plot.title, quote=True)}'>"
        if svg:
            img = f"<a href='{escape(plot.name, quote=True)}.svg'>{img}</a>"
        parts.append(f"<figure><h3>{escape(plot.title)}</h3>{img}<figcaption>{escape(plot.caption)}</figcaption>"
                     "</figure>")
    if not plots:
        parts.append("<p>No figures: no run read has iterates.</p>")
    parts.append("<h2>Runs</h2>")
    shown = runs.drop(columns=["message"]).head(MAX_RUN_ROWS)
    if len(runs) > MAX_RUN_ROWS:
        parts.append(f"<p class='note'>The first {MAX_RUN_ROWS} of {len(runs)} runs; all are in "
                     f"<a href='summary.csv'>summary.csv</a>.</p>")
    parts.append(_table(shown, {"run_id", "sweep", "objective", "problem", "solver", "solver_setting", "x0",
                                "path"}))
    parts.append("</body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _anchor(text: str) -> str:
    return "s-" + "".join(c if c.isalnum() else "-" for c in text.lower())[:60]
