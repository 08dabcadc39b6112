"""The report's comparison sections: statistics over repeated runs and the tuned comparison.

:func:`comparison_of` computes everything once per report (the figures, drawn in forked
processes, find it computed); :func:`comparison_tasks` lists the figures, :func:`write_comparison_tables`
writes the CSV files and :func:`section_html` the tables of each section of the page.

Files: ``art.csv`` (average runtime per family, setting and target, with intervals), ``pairs.csv``
(every pair of settings: the signed-rank test and Holm's correction), ``ranking.csv`` (mean ranks
with intervals) and, when the sweep declares tuning axes, ``tuned.csv``.
"""

from __future__ import annotations

import dataclasses
import math
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from .data import COSTS, ReportData, time_claims
from .html import frame_table
from .repeats import Repeats, Units, art_table, pairwise_table, ranking_table, repeats_of, target_name, units_of
from .stats import ALPHA, LEVEL, N_BOOT, scipy_stats
from .style import Plot
from .tuning import Tuned, tuned_comparison
from .tuning_axes import declared

STATS = "Statistics over repeated runs"
TUNED = "Tuned comparison"
MAX_SHOWN_ROWS = 40  # longer tables are folded (all rows are in the CSV file)
NO_SCIPY = ("scipy is not installed, so there are no p-values (install the scipy extra: pip install "
            "'optlab[scipy]'); the counts of cheaper runs are exact.")


@dataclasses.dataclass
class Comparison:
    repeats: Repeats
    art: Any
    units: Units
    pairs: Any
    ranking: Any
    tuned: Tuned | None
    tested: bool  # scipy was there for the tests


def comparison_of(data: ReportData) -> Comparison | None:
    """The statistics of ``data`` (None without valid runs), computed on first use and kept with it."""
    if "_comparison" not in data.__dict__:
        data.__dict__["_comparison"] = _compute(data) if not data.valid.empty else None
    return data.__dict__["_comparison"]


def _compute(data: ReportData) -> Comparison:
    rep = repeats_of(data)
    units = units_of(data)
    tune = declared(data.roots)
    tuned = tuned_comparison(data, tune) if tune else None
    return Comparison(rep, art_table(data, rep), units, pairwise_table(units), ranking_table(units), tuned,
                      scipy_stats() is not None)


def comparison_tasks(data: ReportData) -> list[tuple[Plot, str, dict[str, Any]]]:
    """The figures of the two sections, as ``(plot, function name, keyword arguments)``."""
    c = comparison_of(data)
    if c is None:
        return []
    cost = COSTS[data.cost]
    timed = time_claims(data.valid, data.cost)  # (said in every caption drawn against the cost)
    out = []
    if len(c.units.settings) >= 2:
        out.append((Plot("stats_ranking", STATS, "ranking with uncertainty", (
            f"Each setting's mean rank over the {len(c.units.units)} units (a problem from one start) it ran: on "
            f"each unit the settings that ran are ranked from 0 (best) to 1 (worst) by {cost} until solved "
            f"(f − f* ≤ {data.tol:g} (f(x0) − f*)), unsolved runs after solved ones, ordered by their final gap. "
            f"Bars: {LEVEL:.0%} bootstrap intervals ({N_BOOT} resamples of the units); P(best): how often the "
            "setting has the lowest mean rank in a resample. A setting that ran on few units (a least-squares "
            "method, say) is ranked on those only." + timed)), "ranking_figure", {}))
        if c.tested:
            out.append((Plot("stats_pairs", STATS, "pairwise tests with Holm's correction", (
                f"Every pair of settings over the units both ran: Wilcoxon's signed-rank test on the log ratio of "
                f"their {cost} until solved (a unit one solves and the other does not counts as the largest "
                f"difference; a unit neither solves is a tie, left out), two-sided; p-values adjusted by Holm's "
                f"method over all {len(c.pairs)} pairs. Green: the row's setting is cheaper at level {ALPHA:g}; "
                "red: the column's; grey: no significant difference; blank: no untied unit. Cells show the "
                "adjusted p-value." + timed)), "pairs_figure", {}))
        out.append((Plot("stats_profiles", STATS, f"profiles with {LEVEL:.0%} bootstrap bands", (
            f"The performance and data profiles of the report's profiles figure ({cost}), for the best settings "
            f"(at most six), with pointwise {LEVEL:.0%} bootstrap bands: the problems (objective × start) "
            "resampled with replacement, the profiles computed again on each resample." + timed)),
            "band_profile_figure", {}))
    out.append((Plot("stats_convergence", STATS, "median convergence with bootstrap bands", (
        f"For the best settings (at most six) on each family (an objective with its options, pooled over starts "
        f"and over BBOB instances and seeds): the median over runs of the best f − f* so far against {cost} "
        f"(the start counts as the first evaluation), with a pointwise {LEVEL:.0%} bootstrap band of the median "
        "(runs resampled; drawn from three runs up). A run that stopped keeps its last value. Values ≤ 0 are "
        "drawn at the floor marked “≤ 0”." + timed)), "band_convergence_figure", {}))
    if c.tuned is not None and len(c.tuned.solvers) >= 1 and len(c.tuned.units):
        out.append((Plot("tuned_profiles", TUNED, "tuned comparison: the usual cost and the cost including tuning",
                         protocol(data, c.tuned)), "tuned_figure", {}))
    return out


def protocol(data: ReportData, t: Tuned) -> str:
    axes = "; ".join(f"{'every solver' if s == '*' else s}: {', '.join(n)}" for s, n in t.tune.items())
    return (f"Tuning axes declared by the sweep ({axes}). For each problem, a tuned solver's candidates are its "
            "settings that differ only in those options; the problem's starts, in numeric order, alternate "
            f"between tuning and judging ({t.tuning_starts} tuning, {t.judged_starts} judged here). On the tuning "
            f"starts each solver keeps the candidate with the lowest average runtime to solve ({COSTS[data.cost]}; "
            "ties: the lower median final gap), and each tuning run is charged what it spent until solved, or all "
            "it spent if it did not solve. Left: profiles of the chosen candidates on the judged starts; right: "
            "the same with each solved run charged its share of the problem's tuning cost (the tuning cost "
            "divided by the judged starts). Solvers without a declared axis that varies are not tuned and pay "
            "nothing.")


# -- files -----------------------------------------------------------------------------------
def write_comparison_tables(data: ReportData, out_dir: Path) -> list[str]:
    """Write the sections' CSV files; returns their names."""
    from .summary import neutralise, pd_numeric

    c = comparison_of(data)
    if c is None:
        return []
    tables = {"art.csv": c.art, "pairs.csv": c.pairs, "ranking.csv": c.ranking}
    if c.tuned is not None:
        tables["tuned.csv"] = c.tuned.table
    for name, table in tables.items():
        safe = table.copy()
        for column in safe.columns:
            if not pd_numeric(safe[column]):
                safe[column] = safe[column].map(neutralise)
        safe.to_csv(out_dir / name, index=False)
    return list(tables)


# -- the page --------------------------------------------------------------------------------
def section_html(data: ReportData, section: str) -> str:
    """The tables of one of the comparison sections ("" for any other section)."""
    c = comparison_of(data) if section in (STATS, TUNED) else None
    if c is None:
        return ""
    if section == TUNED:
        return "" if c.tuned is None else _tuned_html(c.tuned)

    parts = [f"<p class='note'>Intervals are {LEVEL:.0%} percentile bootstrap intervals ({N_BOOT} resamples, a "
             "fixed seed); files: <a href='art.csv'>art.csv</a>, <a href='pairs.csv'>pairs.csv</a>, "
             "<a href='ranking.csv'>ranking.csv</a>.</p>", "<h3>Ranking</h3>",
             frame_table(_ranking_shown(c.ranking), {"setting"}), "<h3>Average runtime (aRT) per target</h3>",
             f"<p class='note'>COCO's aRT for f − f* ≤ t: the {escape(COSTS[data.cost])} of all runs of the family "
             "(until the target for those that reached it, everything they spent for the others) divided by the "
             "number that reached it; ∞ where none did. Under each aRT, its interval (runs resampled; the upper "
             "end is ∞ when more resamples than the tail hold no run that reached the target) and the runs that "
             "reached the target. A family "
             "pools an objective's starts and its BBOB instances or seeds. f* is the objective's minimum, or the "
             "best value found where unknown.</p>",
             _fold(_art_html(c), len(c.art), "aRT table")]
    parts.append("<h3>Pairwise tests</h3>")
    if not c.tested:
        parts.append(f"<p class='warn'>{escape(NO_SCIPY)}</p>")
    significant = c.pairs[c.pairs.verdict.isin(["a cheaper", "b cheaper"])]
    parts.append(f"<p class='note'>{len(significant)} of {len(c.pairs)} pairs differ at level {ALPHA:g} after "
                 "Holm's correction (signed-rank test on the log cost ratio over shared units; see the figure).</p>")
    parts.append(_fold(frame_table(_pairs_shown(c.pairs), {"a", "b", "verdict"}), len(c.pairs), "all pairs"))
    return "\n".join(parts)


def _fold(html: str, rows: int, what: str) -> str:
    if rows <= MAX_SHOWN_ROWS:
        return html
    return f"<details><summary>{escape(what)} ({rows} rows)</summary>{html}</details>"


def _ranking_shown(ranking: Any) -> Any:
    shown = ranking.rename(columns={"solver_setting": "setting"}).copy()
    shown["interval"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(shown.rank_lo, shown.rank_hi)]
    shown["P(best)"] = [f"{p:.0%}" for p in shown.p_best]
    shown["solved"] = [f"{s:.0%}" for s in shown.solved]
    shown["mean_rank"] = shown.mean_rank.round(3)
    return shown[["setting", "mean_rank", "interval", "P(best)", "units", "solved"]]


def _pairs_shown(pairs: Any) -> Any:
    shown = pairs.drop(columns=["statistic"]).copy()
    for column in ("p", "p_holm"):
        shown[column] = [("" if not np.isfinite(v) else "< 0.001" if v < 1e-3 else f"{v:.3f}") for v in shown[column]]
    return shown


def count(v: float) -> str:
    if not math.isfinite(v):
        return "∞" if v > 0 else ""
    return f"{v:,.0f}" if 10 <= v < 1e6 else f"{v:.3g}"


def _art_html(c: Comparison) -> str:
    names = [target_name(t) for t in c.repeats.targets]
    head = "<th>family</th><th>setting</th><th>runs</th>" + "".join(f"<th>f − f* ≤ {n}</th>" for n in names)
    body = []
    for r in c.art.to_dict("records"):
        cells = [f"<td class='text'>{escape(str(r['family']))}</td>",
                 f"<td class='text'>{escape(str(r['solver_setting']))}</td>", f"<td>{r['runs']}</td>"]
        for n in names:
            art, lo, hi, k = r[f"aRT_{n}"], r[f"aRT_{n}_lo"], r[f"aRT_{n}_hi"], r[f"reached_{n}"]
            cells.append(f"<td>{count(art)}<br><small>[{count(lo)}, {count(hi)}]<br>{k}/{r['runs']}</small></td>"
                         if k else f"<td>∞<br><small>0/{r['runs']}</small></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tuned_html(t: Tuned) -> str:

    shown = t.table.copy()
    for column in ("tuning_cost", "judged_aRT", "judged_aRT_with_tuning"):
        shown[column] = [count(v) for v in shown[column]]
    return ("<p class='note'>Per solver and problem: its candidates, the one chosen on the tuning starts, what "
            "tuning cost, and how the chosen one did on the judged starts (aRT without and with the tuning cost). "
            "File: <a href='tuned.csv'>tuned.csv</a>.</p>"
            + _fold(frame_table(shown, {"solver", "problem", "chosen"}), len(shown), "tuned comparison table"))
