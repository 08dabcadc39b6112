"""The rules of the report's figures, checked on the data behind them (the artists of the
``matplotlib.figure.Figure`` objects and the layout decisions), on run directories written by hand:
exact iterates, no solver involved."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from optlab import report
from optlab.report import layout
from optlab.report.convergence import convergence_figure
from optlab.report.heatmap import heatmap_figure, matrix
from optlab.report.heatmap import panels as heatmap_panels
from optlab.report.landscape import clip_path, path_figure
from optlab.report.profiles import cost_matrix, outcome_table, performance_profile, profile_figure
from optlab.report.style import natural_key

F_STAR = {"rosenbrock": 0.0, "double_well": -1.0, "least_squares": 0.6, "himmelblau": 0.0}
DIM = {"rosenbrock": 2, "double_well": 1, "least_squares": 2, "himmelblau": 2}


def write_run(root: Path, name: str, f: Any, *, objective: str = "rosenbrock", oparams: dict | None = None,
              solver: str = "gd", sparams: dict | None = None, x0: Any = None, status: str = "max_iter",
              stop: dict | None = None, start: dict | None = None, x: Any = None, time_s: Any = None,
              **record: Any) -> Path:
    """A run directory with iterates ``f`` (one per iteration) and a record like the runner writes."""
    d = Path(root) / name
    d.mkdir(parents=True, exist_ok=True)
    f = np.asarray(f, dtype=float)
    n = len(f)
    dim = record.pop("dim", DIM.get(objective, 2))
    n_x = dim if isinstance(dim, int) else 2
    x0 = list(x0) if x0 is not None else [0.5] * n_x
    x = np.asarray(x, dtype=float) if x is not None else np.tile(np.asarray(x0, dtype=float), (n, 1))
    it = np.arange(n)
    columns = {"iter": it, "f": f, "grad_norm": np.abs(f) + 1.0, "step_size": np.full(n, 0.1),
               "nfev": it + 1, "ngev": it + 1, "nhev": np.zeros(n, dtype=int),
               "time_s": np.asarray(time_s, dtype=float) if time_s is not None else it * 1e-3}
    for k in range(min(n_x, 2)):
        columns[f"x_{k}"] = x[:, k]
    pq.write_table(pa.table(columns), d / "iterates.parquet")
    f_star = record.pop("f_star", F_STAR.get(objective))
    finite = f[np.isfinite(f)]
    full = {
        "run_id": uuid.uuid4().hex[:12], "objective": objective, "objective_params": oparams or {},
        "solver": solver, "solver_params": {"lr": 0.001} if sparams is None else sparams, "dim": dim, "x0": x0,
        "stop": stop or {"max_iter": 5000, "gtol": 1e-8, "xtol": 0.0, "max_seconds": None}, "f_star": f_star,
        "status": status, "message": "", "iterations": n - 1,
        "f_final": float(finite[-1]) if finite.size else None, "x_final": [float(v) for v in x[-1]],
        "nfev": n, "ngev": n, "nhev": 0, "wall_time_s": 0.01, **({"start": start} if start else {}), **record,
    }
    (d / "run.json").write_text(json.dumps(full))
    return d


def write_not_applicable(root: Path, name: str, objective: str, solver: str) -> Path:
    d = Path(root) / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "run.json").write_text(json.dumps({
        "run_id": uuid.uuid4().hex[:12], "objective": objective, "solver": solver, "status": "invalid",
        "message": f"solver={solver} does not apply", "not_applicable": True, "iterations": 0}))
    return d


def decay(start: float, rate: float, n: int, offset: float = 0.0) -> np.ndarray:
    """f* + start * rate^k: a linear rate down to ``start * rate^(n-1)``."""
    return offset + start * rate ** np.arange(n)


def lines_of(ax: Any) -> list:
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1]


def marks(ax: Any, edge: str) -> np.ndarray:
    """Offsets of the scatter marks with this edge colour ("black": exact values, "red": diverged)."""
    want = np.array(matplotlib.colors.to_rgba("black" if edge == "black" else "#d62728"))
    found = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)
             and np.allclose(c.get_edgecolor()[0], want)]
    return np.concatenate(found) if found else np.empty((0, 2))


# -- exact values: one floor ------------------------------------------------------------------
def test_zero_gaps_sit_on_one_floor_shared_by_every_panel(tmp_path):
    gaps = [9.0, 2.2, 0.1, 1e-3, 1e-6, 1e-12, 0.0, 0.0]  # Newton on the double well: exact at iteration 6
    write_run(tmp_path, "newton_dw", np.array(gaps) - 1.0, objective="double_well", solver="newton", sparams={})
    write_run(tmp_path, "lstsq", [0.6 + 140.0, 0.6 - 1.1e-16], objective="least_squares", solver="lstsq",
              sparams={}, status="converged")  # ends 1.1e-16 below f*
    write_run(tmp_path, "newton_rb", [1.0, 1e-2, 1e-8, 1e-29], solver="newton", sparams={})
    data = report.read(tmp_path)
    spec = layout.figure_specs(data)[0]
    assert spec.mode == "overlay" and len(spec.panels) == 3
    fig = convergence_figure(data, spec)
    assert isinstance(fig, Figure)
    axes = fig.axes[:3]
    floor = 1e-30  # a decade below the smallest positive gap (1e-29), itself below 1e-16 max(1, |f*|)
    for ax in axes:
        assert ax.get_ylim()[0] == pytest.approx(floor / 2.5)
        ticks = ax.yaxis.get_major_locator().tick_values(*ax.get_ylim())
        assert ticks[0] == pytest.approx(floor)
        assert ax.yaxis.get_major_formatter()(ticks[0]) == "≤ 0"
    by_title = {ax.get_title(): ax for ax in axes}
    dw, ls = by_title["double_well"], by_title["least_squares"]
    np.testing.assert_allclose(marks(dw, "black"), [[6.0, floor]])  # first exact iterate, on the floor
    np.testing.assert_allclose(marks(ls, "black"), [[1.0, floor]])  # below f*: on the floor, not at 14
    (line,) = lines_of(ls)
    assert line.get_ydata()[-1] == pytest.approx(floor)
    rb = by_title["rosenbrock"]
    assert len(marks(rb, "black")) == 0 and lines_of(rb)[0].get_ydata()[-1] == pytest.approx(1e-29)


def test_floor_rule():
    gap = [np.array([1.0, 1e-3, 0.0])]
    assert layout.floor_of(gap, [0.0]) == (1e-16, True)  # 1e-16 max(1, |f*|)
    assert layout.floor_of(gap, [-5e3]) == (1e-13, True)
    assert layout.floor_of(gap + [np.array([1e-20])], [0.0]) == (1e-21, True)  # below every positive value
    assert layout.floor_of([np.array([3.0, 2e-7])], [0.0]) == (1e-7, False)  # nothing exact: no floor tick


# -- numeric order --------------------------------------------------------------------------
def test_heatmap_and_legends_in_numeric_order(tmp_path):
    starts = [-0.3143, -0.6286, -2.2, 0.0, 0.3143, 2.2]
    for i, x in enumerate(starts):
        for lr in (0.1, 0.001, 0.01):
            write_run(tmp_path, f"{i}_{lr}", [8.0, 1.0, 0.5], objective="double_well", x0=[x],
                      sparams={"lr": lr})
    data = report.read(tmp_path)
    (problem,) = data.problems
    ((_, runs),) = heatmap_panels(data, problem)
    lrs, labels, _, _ = matrix(runs)
    assert lrs == [0.1, 0.01, 0.001]
    assert labels == ["(-2.2)", "(-0.6286)", "(-0.3143)", "(0)", "(0.3143)", "(2.2)"]
    fig = heatmap_figure(data, problem)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == labels
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0.1", "0.01", "0.001"]
    assert data.lr_mode
    legend = [t.get_text() for t in convergence_figure(data).legends[0].get_texts()]
    assert legend[1:4] == ["0.001", "0.01", "0.1"]
    assert sorted(["gd (lr=0.01)", "gd (lr=0.0001)", "gd (lr=0.001)"], key=natural_key) == [
        "gd (lr=0.0001)", "gd (lr=0.001)", "gd (lr=0.01)"]


# -- profiles over the problems each setting applies to --------------------------------------
def test_profiles_count_only_the_problems_a_solver_applies_to(tmp_path):
    for k, x0 in enumerate(([0.0, 0.0], [1.0, -1.0])):
        write_run(tmp_path, f"lstsq{k}", [0.6 + 140.0, 0.6], objective="least_squares", solver="lstsq", sparams={},
                  x0=x0, status="converged")
        write_run(tmp_path, f"gd_ls{k}", decay(140.0, 0.5, 60, 0.6), objective="least_squares", x0=x0)
        write_run(tmp_path, f"gd_rb{k}", [10.0, 1.0, 1.0], x0=x0)  # never solved
    write_not_applicable(tmp_path, "na", "rosenbrock", "lstsq")
    data = report.read(tmp_path)
    assert data.ranking == ["lstsq", "gd"]
    cost, settings, problems, _ = cost_matrix(data)
    assert settings == ["lstsq", "gd"] and len(problems) == 4
    lstsq = cost[:, 0]
    assert np.isnan(lstsq).sum() == 2 and np.all(np.isfinite(lstsq[~np.isnan(lstsq)]))
    rho = performance_profile(cost, np.array([1.0, 1e6]))
    np.testing.assert_allclose(rho, [[1.0, 1.0], [0.0, 0.5]])  # lstsq: every problem it applies to
    rows_, columns, cells = outcome_table(data)
    assert rows_ == ["lstsq", "gd"] and columns == ["least_squares", "rosenbrock"]
    assert cells == [["2/2", "n/a"], ["2/2", "0/2"]]
    legend = [t.get_text() for t in profile_figure(data).legends[0].get_texts()]
    assert legend == ["lstsq (on 2 of 4)", "gd"]


def test_cost_counts_every_evaluation_by_default(tmp_path):
    write_run(tmp_path, "a", [1.0, 1e-2, 1e-7, 1e-9])
    data = report.read(tmp_path)
    row = data.valid.iloc[0]  # solved at iteration 2: nfev 3, ngev 3, nhev 0
    assert (row.solved_iter, row.solved_nfev, row.solved_evals) == (2, 3, 6)
    assert report.read(tmp_path, cost="nfev").cost == "nfev"


# -- overlay or small multiples ---------------------------------------------------------------
def test_few_solvers_overlay_on_one_panel_with_a_log_iteration_axis(tmp_path):
    write_run(tmp_path, "gd", decay(10.0, 0.99, 2001), sparams={"lr": 0.001})
    write_run(tmp_path, "newton", decay(10.0, 1e-4, 6), solver="newton", sparams={})
    data = report.read(tmp_path)
    (spec,) = layout.figure_specs(data)
    assert spec.mode == "overlay" and len(spec.panels) == 1
    assert [s.setting for s in spec.panels[0].series] == ["newton", "gd"]  # best first
    fig = convergence_figure(data, spec)
    assert fig.axes[0].get_xscale() == "symlog"  # 5 against 2000 iterations
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["newton", "gd"]


def test_many_solvers_become_small_multiples_on_shared_axes(tmp_path):
    for k in range(8):
        write_run(tmp_path, f"s{k}", decay(10.0, 0.5 + 0.05 * k, 30), solver=f"solver{k}", sparams={})
    data = report.read(tmp_path)
    (spec,) = layout.figure_specs(data)
    assert spec.mode == "multiples" and len(spec.panels) == 8
    assert [p.key for p in spec.panels] == data.ranking
    fig = convergence_figure(data, spec)
    axes = [ax for ax in fig.axes if ax.get_visible()][:8]
    assert all(axes[0].get_shared_y_axes().joined(axes[0], ax) for ax in axes)
    assert all(axes[0].get_shared_x_axes().joined(axes[0], ax) for ax in axes)
    assert fig.axes[0].get_xscale() == "linear"  # every run 30 iterations


def test_learning_rate_sweeps_get_a_panel_per_solver(tmp_path):
    for solver in ("gd", "momentum"):
        for lr in (1e-3, 1e-2, 1e-1):
            write_run(tmp_path, f"{solver}{lr}", [5.0, 1.0], solver=solver, sparams={"lr": lr})
    (spec,) = layout.figure_specs(report.read(tmp_path))
    assert spec.mode == "lr" and sorted(p.key for p in spec.panels) == ["gd", "momentum"]
    assert len({s.color for s in spec.panels[0].series}) == 3  # one colour per rate


def test_too_many_panels_make_a_figure_per_problem(tmp_path):
    for p in range(4):
        for s in range(7):
            write_run(tmp_path, f"p{p}s{s}", [5.0, 1.0], objective=f"user{p}", solver=f"s{s}", sparams={})
    specs = layout.figure_specs(report.read(tmp_path))
    assert [s.suffix for s in specs] == ["user0", "user1", "user2", "user3"]
    assert all(len(s.panels) == 7 for s in specs)


# -- pooling ---------------------------------------------------------------------------------
def test_runs_pool_into_a_band_only_when_every_option_is_the_same(tmp_path):
    for i in range(10):  # one multi-start spec, but two stopping rules
        write_run(tmp_path, f"grid{i}", decay(5.0, 0.5, 12 + i % 2), x0=[0.1 * i, 1.0],
                  start={"kind": "grid", "n": 10, "index": i, "count": 10},
                  stop={"max_iter": 10 + 10 * (i % 2), "gtol": 1e-8, "xtol": 0.0, "max_seconds": None})
    for i in range(6):  # six explicit starts: six lines
        write_run(tmp_path, f"x0_{i}", decay(5.0, 0.5, 12), objective="himmelblau", x0=[0.1 * i, 1.0])
    data = report.read(tmp_path)
    series = {p.title: p.series for p in layout.figure_specs(data)[0].panels}
    bands = series["rosenbrock"]
    assert [(s.band, len(s.run_ids)) for s in bands] == [(True, 5), (True, 5)]
    assert {s.setting for s in bands} == {"gd (stop.max_iter=10)", "gd (stop.max_iter=20)"}
    assert [(s.band, len(s.run_ids)) for s in series["himmelblau"]] == [(False, 1)] * 6


def test_several_sweeps_are_labelled_and_never_pooled(tmp_path):
    for sweep in ("a", "b"):
        for i in range(5):
            write_run(tmp_path / sweep, f"{i}", decay(5.0, 0.5, 12), x0=[0.1 * i, 1.0],
                      start={"kind": "random", "n": 5, "seed": 0, "index": i, "count": 5})
    data = report.read([tmp_path / "a", tmp_path / "b"])
    assert sorted(data.valid.solver_label.unique()) == ["a: gd", "b: gd"]
    (panel,) = layout.figure_specs(data)[0].panels
    assert [(s.band, len(s.run_ids)) for s in panel.series] == [(True, 5), (True, 5)]
    one = report.read(tmp_path)  # their common parent: the same options, one band of 10
    assert [len(s.run_ids) for s in layout.figure_specs(one)[0].panels[0].series] == [10]


# -- starts, divergence, paths ----------------------------------------------------------------
def test_starts_are_told_apart_by_line_style(tmp_path):
    for lr in (1e-3, 1e-2):
        for x0 in ([0.0, 2.0], [-1.2, 1.0]):
            write_run(tmp_path, f"{lr}{x0}", decay(5.0, 0.5, 20), x0=x0, sparams={"lr": lr})
    data = report.read(tmp_path)
    fig = convergence_figure(data)
    styles = {ln.get_linestyle() for ln in lines_of(fig.axes[0])}
    assert len(styles) == 2
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "(-1.2, 1)" in texts and "(0, 2)" in texts


def test_diverged_runs_end_in_a_mark_at_the_edge(tmp_path):
    write_run(tmp_path, "ok", decay(10.0, 0.5, 30))
    write_run(tmp_path, "div", [10.0, 1e3, 1e10, 1e200, math.inf], status="diverged", sparams={"lr": 0.1})
    data = report.read(tmp_path)
    ax = convergence_figure(data).axes[0]
    top = ax.get_ylim()[1]
    assert top == 100.0  # the axis is not stretched by the blow-up
    # where it leaves: 10 at iteration 0, 1e3 at 1, so it crosses 100 at 0.5 (log scale); its line ends there
    np.testing.assert_allclose(marks(ax, "red"), [[0.5, top]])
    (line,) = [ln for ln in lines_of(ax) if len(ln.get_xdata()) == 2]
    np.testing.assert_allclose(np.c_[line.get_xdata(), line.get_ydata()], [[0.0, 10.0], [0.5, top]])


def test_paths_are_cut_at_the_box():
    box = np.array([[-2.0, 2.0], [-1.0, 3.0]])
    x, y, _ = clip_path(np.array([0.0, 1.0, 1.5]), np.array([0.0, 1.0, 2.0]), box)
    np.testing.assert_allclose(x[1:], [0.0, 1.0, 1.5])  # inside: unchanged
    x, y, exits = clip_path(np.array([0.0, 10.0, -10.0, 0.5]), np.array([0.0, 10.0, -10.0, 0.5]), box)
    pts = {(round(a, 6), round(b, 6)) for a, b in zip(x, y) if np.isfinite(a)}
    assert pts == {(0.0, 0.0), (2.0, 2.0), (-1.0, -1.0), (0.5, 0.5)}  # the flight from (10, 10) to (-10, -10) is gone
    assert exits == [0]


def test_a_diverged_path_stops_where_it_leaves_the_box(tmp_path):
    xs = np.array([[0.0, 0.0], [0.5, 0.5], [10.0, 10.0], [-1e9, 1e9], [np.nan, np.nan]])
    write_run(tmp_path, "div", [1.0, 0.5, 1e5, 1e30, math.nan], x=xs, x0=[0.0, 0.0], status="diverged")
    write_run(tmp_path, "ok", [1.0, 0.5], x=np.array([[1.0, 0.0], [1.0, 1.0]]), x0=[1.0, 0.0], solver="newton",
              sparams={})
    data = report.read(tmp_path)
    (problem,) = data.problems
    ax = path_figure(data, problem).axes[0]
    xmax = max(np.nanmax(np.abs(ln.get_xdata().astype(float))) for ln in lines_of(ax))
    assert xmax <= 2.0  # nothing drawn beyond the box
    red = [ln for ln in ax.get_lines() if ln.get_marker() == "X"]
    assert [tuple(np.round([ln.get_xdata()[0], ln.get_ydata()[0]], 6)) for ln in red] == [(2.0, 2.0)]


def test_batched_runs_are_flagged_wherever_time_is_read(tmp_path):
    for i in range(3):  # one multi-start job timed as a batch: every start records the batch's clock
        write_run(tmp_path / "job", f"start_{i}", decay(5.0, 0.5, 20 + i), x0=[0.1 * i, 1.0],
                  time_s=np.arange(20 + i) * 1e-3, start={"kind": "random", "n": 3, "seed": 0, "index": i, "count": 3})
    write_run(tmp_path, "newton", decay(5.0, 0.1, 8), solver="newton", sparams={}, time_s=np.arange(8) * 2e-3)
    data = report.read(tmp_path)
    assert dict(zip(data.valid.solver_name, data.valid.batched)) == {"gd": 3, "newton": 0}
    legend = [t.get_text() for t in convergence_figure(data, x="time").legends[0].get_texts()]
    assert "gd (batched: its share of the batch's time)" in legend and "newton" in legend
    by_iteration = [t.get_text() for t in convergence_figure(data).legends[0].get_texts()]
    assert "gd" in by_iteration and "gd (batched: its share of the batch's time)" not in by_iteration
    legend = [t.get_text() for t in profile_figure(data, "time").legends[0].get_texts()]
    assert "gd (on 3 of 4) (batched: its share of the batch's time)" in legend


def test_basins_from_a_grid_of_starts_or_from_many(tmp_path):
    from optlab.report.basins import basin_groups

    for kind, n in (("grid", 4), ("random", 4)):
        for i, x in enumerate(np.linspace(-2.0, 2.0, n)):
            write_run(tmp_path / kind, f"{i}", [8.0, 1.0, 0.5], objective="double_well", x0=[x],
                      solver="newton" if kind == "grid" else "gd", sparams={},
                      start={"kind": kind, "n": n, "seed": 0, "index": i, "count": n})
    data = report.read(tmp_path)
    (problem,) = data.problems
    assert [label for label, _ in basin_groups(data, problem)] == ["newton"]  # 4 random starts map no basins
