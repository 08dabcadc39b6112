"""The run pages: the runs behind every row of the table by setting and problem, every profile curve
and every heatmap cell, each with the chart of those runs (:mod:`.runcharts`: their paths on the
landscape, f - f* and the step size at every iteration) and a table of how each run ended (status,
verdict, message) with a link to its record.

- a *unit* page per solver setting and problem (a table row; a curve or a path in a figure);
- a *setting* page per solver setting (a profile curve, a legend entry): its units, one after the other;
- a *cell* page per heatmap cell (learning rate x start point).

A large sweep has hundreds of them, so they are built from plain records (a dict per run), not from
slices of the runs table. Everything taken from the runs is escaped. Pages and charts go to ``runs/``
(see :mod:`.links`).
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..rundir.layout import RECORD
from .data import ReportData
from .heatmap import panels as heatmap_panels
from .html import CSS, breakable, fmt
from .links import RUNS_DIR, cell_href, setting_href, unit_href
from .runcharts import MAX_RUNS, landscape_uri, run_chart, run_colors
from .style import natural_key
from .summary import STATUS_ORDER, verdicts

RUN_COLUMNS = ("", "run", "start x0", "status", "message", "iterations", "evaluations", "f − f* at the end",
               "time (s)", "record")
NUMBER_COLUMNS = RUN_COLUMNS[5:9]
FIELDS = ("run_id", "status", "message", "solver_label", "problem_label", "problem", "lr", "start_label", "start_key",
          "iterations", "nfev", "ngev", "nhev", "gap_final", "wall_time_s", "solved_iter", "path")

Run = dict[str, Any]


def write_pages(data: ReportData, out_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Every run page and chart under ``out_dir/runs``; returns ``({href: title}, files written)``."""
    (out_dir / RUNS_DIR).mkdir(exist_ok=True)
    writer = _Writer(data, out_dir)
    table = data.runs.reindex(columns=list(FIELDS))
    records = [{**r, "verdict": v} for r, v in zip(table.to_dict("records"), verdicts(data.runs))]
    by_index = dict(zip(data.runs.index, records))
    units: dict[tuple[str, str], list[Run]] = defaultdict(list)
    settings: dict[str, list[Run]] = defaultdict(list)
    for r in records:
        units[str(r["solver_label"]), str(r["problem_label"])].append(r)
        settings[str(r["solver_label"])].append(r)
    for (setting, problem), runs in units.items():
        writer.unit(setting, problem, runs)
    for setting, runs in settings.items():
        writer.setting(setting, runs)
    for key in data.problem_order():
        label = data.problems[key].label
        for name, cells in heatmap_panels(data, key):
            for (lr, start), group in cells.groupby(["lr", "start_label"]):
                writer.cell(label, name, float(lr), str(start), [by_index[i] for i in group.index])
    return writer.titles, writer.files


class _Writer:
    def __init__(self, data: ReportData, out_dir: Path) -> None:
        self.data, self.out_dir = data, out_dir
        self.titles: dict[str, str] = {}
        self.files: list[str] = []
        self.charts: dict[str, str] = {}  # unit href -> its chart's file name (in runs/)
        self.landscapes: dict[str, str | None] = {}

    # -- the three kinds of page ---------------------------------------------------------------
    def unit(self, setting: str, problem: str, runs: list[Run]) -> None:
        href = unit_href(setting, problem)
        title = f"{setting} on {problem}"
        chart, colors = self._chart(href, runs)
        if chart:
            self.charts[href] = chart
        self._page(href, title, [f"<p><a href='{_file(setting_href(setting))}'>All runs of {escape(setting)}</a></p>",
                                 _counts(runs), self._image(chart, title), self._table(runs, colors)])

    def setting(self, setting: str, runs: list[Run]) -> None:
        problems: dict[str, list[Run]] = defaultdict(list)
        for r in sorted(runs, key=lambda r: natural_key(str(r["problem_label"]))):
            problems[str(r["problem_label"])].append(r)
        body = [_counts(runs), "<table><thead><tr><th class='text'>problem</th><th>runs</th>"
                "<th class='text'>how they ended</th></tr></thead><tbody>"]
        for problem, here in problems.items():
            body.append(f"<tr><td class='text'><a href='{_file(unit_href(setting, problem))}'>{breakable(problem)}</a>"
                        f"</td><td>{len(here)}</td><td class='text'>{escape(_ended(here))}</td></tr>")
        body.append("</tbody></table>")
        for problem in problems:
            href = unit_href(setting, problem)
            body.append(f"<h2><a href='{_file(href)}'>{breakable(problem)}</a></h2>")
            body.append(self._image(self.charts.get(href), f"{setting} on {problem}"))
        body += ["<h2>Every run</h2>", self._table(runs, {}, problem_column=True)]
        self._page(setting_href(setting), f"{setting}: {len(runs)} runs", body)

    def cell(self, problem: str, panel: str, lr: float, start: str, runs: list[Run]) -> None:
        href = cell_href(problem, panel, lr, start)
        title = f"{panel} at learning rate {lr:g} from {start} on {problem}"
        chart, colors = self._chart(href, runs)
        self._page(href, title, [_counts(runs), self._image(chart, title), self._table(runs, colors)])

    # -- pieces --------------------------------------------------------------------------------
    def _chart(self, href: str, runs: list[Run]) -> tuple[str | None, dict[str, str]]:
        """The chart of the runs that ran (at most ``MAX_RUNS``, spread over rates and starts), as a file
        beside the page, and the colour of each run drawn; None when none ran."""
        ran = [r for r in _order(runs) if r["run_id"] in self.data.traces]
        if not ran:
            return None, {}
        drawn = [ran[i] for i in sorted(set(np.linspace(0, len(ran) - 1, min(len(ran), MAX_RUNS)).round().astype(int)))]
        several = len({r["lr"] for r in drawn if _number(r["lr"])}) > 1
        labels = [f"{r['start_label']} · {r['verdict']}" + (f" · lr {r['lr']:g}" if several else "") for r in drawn]
        name = Path(href).with_suffix(".svg").name
        problem = drawn[0]["problem"]
        svg = run_chart(self.data, problem, [r["run_id"] for r in drawn], labels, self._landscape(problem))
        (self.out_dir / RUNS_DIR / name).write_text(svg, encoding="utf-8")
        self.files.append(f"{RUNS_DIR}/{name}")
        return name, {r["run_id"]: color for r, (color, _) in zip(drawn, run_colors(len(drawn)))}

    def _landscape(self, problem: str) -> str | None:
        if problem not in self.landscapes:
            info = self.data.problems[problem]
            self.landscapes[problem] = landscape_uri(info) if info.dim == 2 and info.plottable else None
        return self.landscapes[problem]

    def _image(self, chart: str | None, title: str) -> str:
        if chart is None:
            return "<p class='note'>No chart: none of these runs has iterates (not run, or rejected).</p>"
        return f"<figure><img src='{escape(chart, quote=True)}' alt='{escape(title, quote=True)}'></figure>"

    def _table(self, runs: list[Run], colors: dict[str, str], problem_column: bool = False) -> str:
        """A row per run: its colour in the chart, id (an anchor), start, verdict, message, counts, record."""
        columns = RUN_COLUMNS[:2] + (("problem",) if problem_column else ()) + RUN_COLUMNS[2:]
        rows = []
        for r in _order(runs):
            run_id = escape(str(r["run_id"]), quote=True)
            swatch = f"<span class='swatch' style='background:{colors[r['run_id']]}'></span>" \
                if r["run_id"] in colors else ""
            record = Path(os.path.relpath(Path(r["path"]) / RECORD, self.out_dir / RUNS_DIR)).as_posix()
            cells = [(swatch, "text"), (f"<span id='run-{run_id}'>{run_id}</span>", "text")]
            if problem_column:
                page = _file(unit_href(str(r["solver_label"]), str(r["problem_label"])))
                cells.append((f"<a href='{page}#run-{run_id}'>{breakable(r['problem_label'])}</a>", "text"))
            cells += [(breakable(r["start_label"]), "text"),
                      (f"<span class='status-{escape(str(r['status']), quote=True)}'>{escape(str(r['verdict']))}"
                       "</span>", "text"), (breakable(r["message"] or "", 30), "text message")]
            cells += [(escape(fmt(v)), "num") for v in (r["iterations"], _evals(r), r["gap_final"], r["wall_time_s"])]
            cells.append((f"<a href='{escape(record, quote=True)}'>run.json</a>", "text"))
            rows.append("<tr>" + "".join(f"<td class='{cls}'>{c}</td>" for c, cls in cells) + "</tr>")
        head = "".join(f"<th class='{'num' if c in NUMBER_COLUMNS else 'text'}'>{escape(c)}</th>" for c in columns)
        return f"<table class='runs'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def _page(self, href: str, title: str, body: list[str]) -> None:
        self.titles[href] = title
        html = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
                f"<style>{CSS}</style></head><body><p><a href='../index.html'>← the report</a></p>"
                f"<h1>{escape(title)}</h1>" + "\n".join(body) + "</body></html>")
        (self.out_dir / href).write_text(html, encoding="utf-8")
        self.files.append(href)


def _file(href: str) -> str:
    """A page's href seen from another page in ``runs/``."""
    return escape(Path(href).name, quote=True)


def _order(runs: list[Run]) -> list[Run]:
    """By learning rate, then start point."""
    return sorted(runs, key=lambda r: (r["lr"] if _number(r["lr"]) else math.inf,
                                       r["start_key"] if isinstance(r["start_key"], tuple) else (math.inf,)))


def _ended(runs: list[Run]) -> str:
    counts = Counter(str(r["verdict"]) for r in runs)
    order = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts) - set(STATUS_ORDER))
    return ", ".join(f"{counts[s]} {s}" for s in order)


def _counts(runs: list[Run]) -> str:
    solved = sum(_number(r["solved_iter"]) for r in runs)
    return (f"<p>{len(runs)} run{'s' * (len(runs) != 1)}: {escape(_ended(runs))}; solved (f − f* ≤ tol · "
            f"(f(x0) − f*)): {solved}.</p>")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _evals(r: Run) -> float:
    """nfev + ngev + nhev as recorded (NaN when none is)."""
    parts = [r[c] for c in ("nfev", "ngev", "nhev") if _number(r[c])]
    return float(sum(parts)) if parts else float("nan")
