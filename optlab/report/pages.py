"""The run pages: the runs behind every row of the table by setting and problem, every profile curve
and every heatmap cell, each with the chart of those runs (:mod:`.runcharts`: their paths on the
landscape, f - f* and the step size at every iteration) and a table of how each run ended (status,
verdict, message) with a link to its record.

- a *unit* page per solver setting and problem (a table row; a curve or a path in a figure);
- a *setting* page per solver setting (a profile curve, a legend entry): its units, one after the other;
- a *cell* page per heatmap cell (learning rate x start point).

Everything taken from the runs is escaped. Pages and charts go to ``runs/`` (see :mod:`.links`).
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from .data import ReportData
from .heatmap import panels as heatmap_panels
from .landscape import pick
from .links import RUNS_DIR, cell_href, setting_href, unit_href
from .page import CSS, breakable, fmt
from .runcharts import MAX_RUNS, landscape_uri, run_chart, run_colors
from .summary import status_counts, verdicts

RUN_COLUMNS = ("", "run", "start x0", "status", "message", "iterations", "evaluations", "f − f* at the end",
               "time (s)", "record")
NUMBER_COLUMNS = RUN_COLUMNS[5:9]


def write_pages(data: ReportData, out_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Every run page and chart under ``out_dir/runs``; returns ``({href: title}, files written)``."""
    (out_dir / RUNS_DIR).mkdir(exist_ok=True)
    writer = _Writer(data, out_dir)
    runs = data.runs.assign(verdict=verdicts(data.runs))
    for (setting, problem), group in runs.groupby(["solver_label", "problem_label"], sort=False):
        writer.unit(str(setting), str(problem), group)
    for setting, group in runs.groupby("solver_label", sort=False):
        writer.setting(str(setting), group)
    for key in data.problem_order():
        label = data.problems[key].label
        for name, cells in heatmap_panels(data, key):
            for (lr, start), group in cells.groupby(["lr", "start_label"]):
                writer.cell(label, name, float(lr), str(start), runs.loc[group.index])
    return writer.titles, writer.files


class _Writer:
    def __init__(self, data: ReportData, out_dir: Path) -> None:
        self.data, self.out_dir = data, out_dir
        self.titles: dict[str, str] = {}
        self.files: list[str] = []
        self.charts: dict[str, str] = {}  # unit href -> its chart's file name (in runs/)
        self.landscapes: dict[str, str | None] = {}

    # -- the three kinds of page ---------------------------------------------------------------
    def unit(self, setting: str, problem: str, runs: Any) -> None:
        href = unit_href(setting, problem)
        title = f"{setting} on {problem}"
        chart, colors = self._chart(href, runs)
        if chart:
            self.charts[href] = chart
        self._page(href, title, [f"<p><a href='{_file(setting_href(setting))}'>All runs of {escape(setting)}</a></p>",
                                 _counts(runs), self._image(chart, title), self._table(runs, colors)])

    def setting(self, setting: str, runs: Any) -> None:
        problems = list(dict.fromkeys(runs.problem_label))
        body = [_counts(runs), "<table><thead><tr><th>problem</th><th>runs</th><th>how they ended</th></tr>"
                "</thead><tbody>"]
        for problem in problems:
            here = runs[runs.problem_label == problem]
            body.append(f"<tr><td class='text'><a href='{_file(unit_href(setting, problem))}'>{escape(problem)}</a>"
                        f"</td><td>{len(here)}</td><td class='text'>{escape(_ended(here))}</td></tr>")
        body.append("</tbody></table>")
        for problem in problems:
            href = unit_href(setting, problem)
            body.append(f"<h2><a href='{_file(href)}'>{escape(problem)}</a></h2>")
            body.append(self._image(self.charts.get(href), f"{setting} on {problem}"))
        body += ["<h2>Every run</h2>", self._table(runs, {}, problem_column=True)]
        self._page(setting_href(setting), f"{setting}: {len(runs)} runs", body)

    def cell(self, problem: str, panel: str, lr: float, start: str, runs: Any) -> None:
        href = cell_href(problem, panel, lr, start)
        title = f"{panel} at learning rate {lr:g} from {start} on {problem}"
        chart, colors = self._chart(href, runs)
        self._page(href, title, [_counts(runs), self._image(chart, title), self._table(runs, colors)])

    # -- pieces --------------------------------------------------------------------------------
    def _chart(self, href: str, runs: Any) -> tuple[str | None, dict[str, str]]:
        """The chart of the runs that ran (at most ``MAX_RUNS``, spread over rates and starts), as a file
        beside the page, and the colour of each run drawn; None when none ran."""
        ran = runs[runs.run_id.isin(self.data.traces.keys())]
        if ran.empty:
            return None, {}
        drawn = _order(pick(ran, MAX_RUNS))
        problem = drawn.problem.iloc[0]
        labels = [f"{start} · {verdict}" + (f" · lr {lr:g}" if drawn.lr.nunique() > 1 else "")
                  for start, verdict, lr in zip(drawn.start_label, drawn.verdict, drawn.lr)]
        name = Path(href).with_suffix(".svg").name
        svg = run_chart(self.data, problem, list(drawn.run_id), labels, self._landscape(problem))
        (self.out_dir / RUNS_DIR / name).write_text(svg, encoding="utf-8")
        self.files.append(f"{RUNS_DIR}/{name}")
        return name, {r: color for r, (color, _) in zip(drawn.run_id, run_colors(len(drawn)))}

    def _landscape(self, problem: str) -> str | None:
        if problem not in self.landscapes:
            info = self.data.problems[problem]
            self.landscapes[problem] = landscape_uri(info) if info.dim == 2 and info.plottable else None
        return self.landscapes[problem]

    def _image(self, chart: str | None, title: str) -> str:
        if chart is None:
            return "<p class='note'>No chart: none of these runs has iterates (not run, or rejected).</p>"
        return f"<figure><img src='{escape(chart, quote=True)}' alt='{escape(title, quote=True)}'></figure>"

    def _table(self, runs: Any, colors: dict[str, str], problem_column: bool = False) -> str:
        """A row per run: its colour in the chart, id (an anchor), start, verdict, message, counts, record."""
        columns = RUN_COLUMNS[:2] + (("problem",) if problem_column else ()) + RUN_COLUMNS[2:]
        rows = []
        for r in _order(runs).itertuples(index=False):
            run_id = escape(str(r.run_id), quote=True)
            swatch = f"<span class='swatch' style='background:{colors[r.run_id]}'></span>" \
                if r.run_id in colors else ""
            record = Path(os.path.relpath(Path(r.path) / "run.json", self.out_dir / RUNS_DIR)).as_posix()
            cells = [(swatch, "text"), (f"<span id='run-{run_id}'>{run_id}</span>", "text")]
            if problem_column:
                page = _file(unit_href(str(r.solver_label), str(r.problem_label)))
                cells.append((f"<a href='{page}#run-{run_id}'>{escape(str(r.problem_label))}</a>", "text"))
            cells += [(breakable(r.start_label), "text"),
                      (f"<span class='status-{escape(str(r.status), quote=True)}'>{escape(str(r.verdict))}</span>",
                       "text"), (breakable(r.message or "", 30), "text message")]
            cells += [(escape(fmt(v)), "num") for v in (r.iterations, _evals(r), r.gap_final, r.wall_time_s)]
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


def _order(runs: Any) -> Any:
    keys = sorted(range(len(runs)), key=lambda i: (runs.lr.iloc[i] if np.isfinite(runs.lr.iloc[i]) else np.inf,
                                                    runs.start_key.iloc[i]))
    return runs.iloc[keys]


def _ended(runs: Any) -> str:
    return ", ".join(f"{n} {status}" for status, n in status_counts(runs).items())


def _counts(runs: Any) -> str:
    solved = int(np.isfinite(runs.solved_iter.to_numpy(dtype=float)).sum())
    return (f"<p>{len(runs)} run{'s' * (len(runs) != 1)}: {escape(_ended(runs))}; solved (f − f* ≤ tol · "
            f"(f(x0) − f*)): {solved}.</p>")


def _evals(r: Any) -> float:
    """nfev + ngev + nhev as recorded (NaN when none is)."""
    parts = [v for v in (r.nfev, r.ngev, r.nhev) if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(sum(parts)) if parts else float("nan")
