"""The figure defects a new user saw, each on run directories written by hand: diverged runs pooled
into bands and medians, a row of nine panels, a legend of 34 settings cut off with repeating colours,
clipped titles and tick labels, a solver listed twice with its coinciding lines hidden, and no paths
for a plugin objective without a box."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from optlab import report
from optlab.report import build_report, layout
from optlab.report.convergence import convergence_figure
from optlab.report.heatmap import heatmap_figure
from optlab.report.landscape import path_figure, path_tasks
from optlab.report.profiles import profile_figure

from .test_rules import decay, lines_of, marks, write_run


def clipped(fig) -> list[str]:
    """The edges of ``fig`` that what it draws (titles, tick labels, legends: matplotlib's tight box of
    the drawn artists) reaches beyond, by more than half a pixel."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    w, h, slack = fig.get_figwidth(), fig.get_figheight(), 0.5 / fig.dpi
    return [side for side, out in (("left", tight.x0 < -slack), ("right", tight.x1 > w + slack),
                                   ("bottom", tight.y0 < -slack), ("top", tight.y1 > h + slack)) if out]


def random_starts(i: int, n: int) -> dict:
    return {"kind": "random", "n": n, "seed": 0, "index": i, "count": n}


# -- diverged runs are drawn apart -------------------------------------------------------------
def test_diverged_runs_are_never_pooled_into_a_band(tmp_path):
    for i in range(8):  # one multi-start setting: 6 converge, 2 diverge
        f = decay(5.0, 0.5, 20) if i < 6 else [5.0, 50.0, 5e4, 5e9, math.inf]
        write_run(tmp_path, f"s{i}", f, x0=[0.1 * i, 1.0], start=random_starts(i, 8),
                  status="max_iter" if i < 6 else "diverged")
    data = report.read(tmp_path)
    (panel,) = layout.figure_specs(data)[0].panels
    bands = [s for s in panel.series if s.band]
    lines = [s for s in panel.series if not s.band]
    assert [len(s.run_ids) for s in bands] == [6] and not bands[0].diverged
    assert len(lines) == 2 and all(s.diverged == 1 for s in lines)
    fig = convergence_figure(data)
    ax = fig.axes[0]
    top = ax.get_ylim()[1]
    assert len(marks(ax, "red")) == 2 and np.allclose(marks(ax, "red")[:, 1], top)  # ✕ where each leaves
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "diverged (2 of 8 runs): where it leaves" in texts
    assert "median, 25–75% and 10–90% of the starts that did not diverge" in texts
    median = [ln for ln in lines_of(ax) if ln.get_linewidth() == pytest.approx(1.7)]
    assert len(median) == 1 and np.nanmax(median[0].get_ydata()) <= 5.0  # never pulled up by the diverged


def test_median_final_gap_counts_diverged_runs(tmp_path):
    write_run(tmp_path, "exact", [5.0, 1.0, 0.0], x0=[0.0, 1.0], status="converged")
    for i in range(2):
        write_run(tmp_path, f"div{i}", [5.0, 5e3, math.inf], x0=[1.0 + i, 1.0], status="diverged")
    write_run(tmp_path, "other", [5.0, 0.5], solver="newton", sparams={})
    build_report(tmp_path, tmp_path / "out", progress=False)
    table = pd.read_csv(tmp_path / "out" / "solvers.csv").set_index("solver_setting")
    assert table.loc["gd", "diverged"] == 2 and table.loc["gd", "converged"] == 1
    assert table.loc["gd", "median_gap_final"] == math.inf  # 2 of 3 diverged: not 0
    assert table.loc["newton", "median_gap_final"] == 0.5


# -- many panels wrap ---------------------------------------------------------------------------
def test_many_panels_wrap_into_a_grid(tmp_path):
    for sweep, solvers in (("a", ["gd", "momentum", "adam", "nesterov", "rmsprop"]),
                           ("b", ["gd", "adagrad", "bfgs", "cg"])):
        for k, solver in enumerate(solvers):
            write_run(tmp_path / sweep, solver, decay(5.0, 0.5 + 0.05 * k, 30), solver=solver, sparams={})
    data = report.read([tmp_path / "a", tmp_path / "b"])
    (spec,) = layout.figure_specs(data)
    assert len(spec.panels) == 9 and spec.ncols <= 4 and spec.nrows == 3
    figures = report.figures(data)
    assert {"convergence_iteration", "convergence_evaluations", "grad_norm_iter", "stats_ranking"} <= set(figures)
    for fig in figures.values():
        assert fig.get_figwidth() * fig.dpi <= 2000, fig.get_suptitle()
        panels = [ax for ax in fig.axes if ax.get_visible()]
        panels = [ax for ax in panels if round(ax.get_position().width, 3) == round(panels[0].get_position().width, 3)]
        columns = {round(ax.get_position().x0, 3) for ax in panels}  # (colour bars left out)
        assert len(columns) <= 4


def test_a_row_per_problem_becomes_a_figure_per_problem_when_too_wide(tmp_path):
    for p in ("rosenbrock", "himmelblau"):
        for k in range(7):
            write_run(tmp_path, f"{p}{k}", decay(5.0, 0.5 + 0.05 * k, 30), objective=p, solver=f"s{k}", sparams={})
    specs = layout.figure_specs(report.read(tmp_path))
    assert [s.suffix for s in specs] == ["himmelblau", "rosenbrock"]
    assert all(s.ncols == 4 and s.nrows == 2 for s in specs)


# -- legends ---------------------------------------------------------------------------------------
def test_a_legend_of_34_settings_names_the_best_16_each_in_its_own_colour_and_style(tmp_path):
    for k in range(34):
        for p in range(4):
            write_run(tmp_path, f"s{k}p{p}", decay(5.0, 0.3 + 0.02 * k, 60), solver=f"solver{k}", sparams={},
                      x0=[0.1 * p, 1.0])
    data = report.read(tmp_path)
    fig = profile_figure(data)
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert [t.split(" (")[0] for t in texts[:16]] == data.ranking[:16]
    assert texts[16:] == ["18 more settings, grey (all in solvers.csv)"]
    pairs = [(to_hex(h.get_color()), h.get_linestyle()) for h in legend.legend_handles[:16]]
    assert len(set(pairs)) == 16
    named = {to_hex(c) for c, _ in pairs}
    ax = fig.axes[0]
    others = [ln for ln in ax.get_lines() if to_hex(ln.get_color()) not in named]
    assert len(others) == 18 and {to_hex(ln.get_color()) for ln in others} == {"#bbbbbb"}
    assert clipped(fig) == []


# -- nothing clipped ------------------------------------------------------------------------------
def test_the_heatmap_of_an_optuna_sweep_is_not_clipped(tmp_path):
    rng = np.random.default_rng(0)
    for k, lr in enumerate(10.0 ** rng.uniform(-5, -1, 30)):  # 30 trials: 30 rates, one start
        diverged = lr > 1e-2
        write_run(tmp_path, f"{k}", [5.0, 1e9, math.inf] if diverged else decay(5.0, 1 - lr * 50, 40),
                  sparams={"lr": float(lr)}, x0=[0.0, 2.0], status="diverged" if diverged else "max_iter")
    data = report.read(tmp_path)
    (problem,) = data.problems
    fig = heatmap_figure(data, problem)
    assert clipped(fig) == []
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(set(labels)) == 30 and max(len(s) for s in labels) <= 8  # as few digits as tell them apart
    for name, fig in report.figures(data).items():
        assert clipped(fig) == [], name


def test_no_figure_of_a_mixed_tree_is_clipped(tmp_path):
    for lr in (1e-3, 1e-2, 0.5):
        for x0 in ([0.0, 2.0], [-1.2, 1.0]):
            f = [5.0, 1e9, math.inf] if lr == 0.5 else decay(5.0, 0.9, 50)
            write_run(tmp_path / "a", f"{lr}{x0}", f, x0=x0, sparams={"lr": lr},
                      status="diverged" if lr == 0.5 else "max_iter")
    write_run(tmp_path / "b", "newton", decay(5.0, 0.01, 6), solver="newton", sparams={}, objective="himmelblau")
    write_run(tmp_path / "b", "long", decay(5.0, 0.3, 9), solver="a_solver_with_a_rather_long_name",
              sparams={"option_with_a_long_name": 0.123456789}, objective="himmelblau")
    data = report.read([tmp_path / "a", tmp_path / "b"])
    figures = report.figures(data)
    assert {"convergence_iteration", "heatmap_rosenbrock_1", "paths_himmelblau_0", "paths_rosenbrock_1", "solved",
            "stats_ranking"} <= set(figures)
    for name, fig in figures.items():
        assert clipped(fig) == [], name


# -- coinciding lines -----------------------------------------------------------------------------
def test_scipy_beside_bfgs_lists_each_solver_once_and_shows_where_lines_coincide(tmp_path):
    for objective in ("rosenbrock", "himmelblau"):
        for k, x0 in enumerate(([-1.2, 1.0], [0.0, 0.0])):
            f = decay(5.0 + k, 0.2, 30)  # the same iterates: scipy's BFGS stops 4 iterations earlier
            write_run(tmp_path, f"bfgs{objective}{k}", f, objective=objective, solver="bfgs", sparams={}, x0=x0)
            write_run(tmp_path, f"scipy{objective}{k}", f[:26], objective=objective, solver="scipy:BFGS",
                      sparams={"method": "BFGS"}, x0=x0)
    data = report.read(tmp_path)
    fig = convergence_figure(data)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    settings = [t for t in texts if t.startswith(("bfgs", "scipy"))]
    assert len(settings) == 2  # each once
    first, second = data.ranking
    assert f"{first} (the wide line: {second} runs on it in 4 runs)" in settings
    for ax in fig.axes[:2]:
        widths = sorted(ln.get_linewidth() for ln in lines_of(ax))
        assert widths[:2] == [1.3, 1.3] and widths[2:] == [pytest.approx(3.7)] * 2  # beneath: wider


def test_coinciding_and_exit_rules():
    x = np.arange(5.0)
    a, b, c = np.array([1.0, 0.1, 1e-2, 1e-3, 0.0]), np.array([1.0, 0.1, 1.01e-2]), np.array([1.0, 0.2, 1e-2])
    assert layout.coinciding([(x, a), (x[:3], b), (x[:3], c)]) == [[1], [], []]
    assert layout.exit_point(x[:3], np.array([10.0, 1e3, np.inf]), 100.0) == (1, pytest.approx(0.5), 100.0)
    assert layout.exit_point(x[:3], np.array([10.0, 20.0, np.nan]), 100.0) == (2, 1.0, 20.0)


# -- paths for a plugin objective without a box ---------------------------------------------------
def test_a_plugin_objective_without_a_box_gets_its_paths_on_the_box_of_its_runs(tmp_path):
    path = np.c_[np.linspace(3.0, 0.1, 12), np.linspace(-2.0, 0.05, 12)]  # a user's Zakharov, no box known
    write_run(tmp_path, "gd", decay(50.0, 0.5, 12), objective="zakharov", x=path, x0=path[0], f_star=0.0)
    write_run(tmp_path, "newton", decay(50.0, 0.01, 4), objective="zakharov", solver="newton", sparams={},
              x=path[[0, 5, 10, 11]], x0=path[0], f_star=0.0)
    data = report.read(tmp_path)
    (problem,) = data.problems
    (task,) = path_tasks(data)  # a paths figure, though the report cannot rebuild the objective
    assert "without contours" in task[0].caption and "not in optlab's registry" in task[0].caption
    info = data.problems[problem]
    assert info.objective is None and info.drawable and not info.plottable
    fig = path_figure(data, problem)
    ax = fig.axes[0]
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    assert x_lo < 0.1 and x_hi > 3.0 and y_lo < -2.0 and y_hi > 0.05  # every iterate inside
    assert x_hi - x_lo < 4.0 and not ax.get_images()  # the box of the runs, no contours
    assert len(lines_of(ax)) == 2 and clipped(fig) == []
