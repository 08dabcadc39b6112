"""The report's comparison sections on a real sweep, against numbers computed here from
``optlab.load`` (not from the report's reader): the aRT table, the paired tests, the ranking,
and the tuned comparison with its tuning cost. The whole report (figures, page) is built in the
tests marked slow."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import optlab
from optlab.report.repeats import TARGETS, target_name

from ..conftest import run_cli

scipy_stats = pytest.importorskip("scipy.stats")

TOL = 1e-6
SWEEP = ["-m", "objective=booth,quadratic", "solver=gd,momentum", "solver.lr=0.01,0.1", "starts=random",
         "starts.n=6", "stop.max_iter=300", "+hydra.callbacks.report.tune=[lr]", "report.auto=false"]
CANDIDATES = 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep's directory, its runs and iterates (optlab.load), and the report's comparison of them."""
    from optlab.report import read
    from optlab.report.comparisons import comparison_of

    root = tmp_path_factory.mktemp("comparison") / "sweep"
    out = run_cli(*SWEEP, f"hydra.sweep.dir={root}", cwd=root.parent)
    assert out.returncode == 0, out.stderr
    runs, its = optlab.load(root)
    data = read(root)
    return root, runs, its, data, comparison_of(data)


def per_run(runs, its):
    """Each run's evaluations (nfev + ngev + nhev) and gap to f* at every iterate, from optlab.load."""
    its = its.assign(evals=its.nfev + its.ngev.fillna(0) + its.nhev.fillna(0)).sort_values(["run_id", "iter"])
    out = {}
    for run_id, g in its.groupby("run_id"):
        r = runs.set_index("run_id").loc[run_id]
        out[run_id] = (g.evals.to_numpy(dtype=float), g.f.to_numpy(dtype=float) - r.f_star,
                       float(r.nfev + r.ngev + r.nhev))
    return out


def setting(row) -> str:
    return f"{row.solver} (lr={row['solver.lr']:g})"


def solved_cost(evals, gap) -> float:
    hit = np.flatnonzero(gap <= TOL * gap[0])
    return float(evals[hit[0]]) if hit.size else math.inf


def test_art_table_is_coco_average_runtime(sweep):
    root, runs, its, data, c = sweep
    art = c.art
    traces = per_run(runs, its)
    runs = runs.assign(setting=[setting(r) for _, r in runs.iterrows()])
    assert len(art) == runs.groupby(["objective", "setting"]).ngroups == 4 * CANDIDATES
    for (objective, name), g in runs.groupby(["objective", "setting"]):
        row = art[art.family.str.startswith(objective) & (art.solver_setting == name)]
        assert len(row) == 1 and row.runs.iloc[0] == 6
        for t in TARGETS:
            total, hits = 0.0, 0
            for run_id in g.run_id:
                evals, gap, spent = traces[run_id]
                reached = np.flatnonzero(np.minimum.accumulate(gap) <= t)
                if reached.size:
                    hits += 1
                    total += 1.0 if reached[0] == 0 else evals[reached[0]]  # the start is evaluation 1
                else:
                    total += spent
            expected = total / hits if hits else math.inf
            col = f"aRT_{target_name(t)}"
            assert row[col].iloc[0] == pytest.approx(expected, rel=1e-12), (objective, name, t)
            assert row[f"reached_{target_name(t)}"].iloc[0] == hits
            lo, hi = row[f"{col}_lo"].iloc[0], row[f"{col}_hi"].iloc[0]
            if hits:
                assert lo <= expected * (1 + 1e-12) and (hi >= expected * (1 - 1e-12) or math.isnan(hi))


def test_pairwise_tests_and_holm(sweep):
    root, runs, its, data, c = sweep
    pairs = c.pairs
    traces = per_run(runs, its)
    runs = runs.assign(setting=[setting(r) for _, r in runs.iterrows()], start=runs.x0.map(tuple))
    n = runs.setting.nunique()
    assert len(pairs) == n * (n - 1) // 2
    # Holm by hand: the k-th smallest of m p-values times (m - k + 1), running maximum, capped at 1
    tested = pairs[pairs.p.notna()].sort_values("p", kind="stable")
    m, running = len(tested), 0.0
    for k, (i, row) in enumerate(tested.iterrows()):
        running = max(running, min(1.0, (m - k) * row.p))
        assert pairs.loc[i, "p_holm"] == pytest.approx(running, rel=1e-12)
    # one pair's test again, from the runs: Wilcoxon on log cost ratios over shared problems and starts
    row = pairs[pairs.p.notna()].iloc[0]
    cost = {(r.objective, r.start, r.setting): solved_cost(*traces[r.run_id][:2]) for r in runs.itertuples()}
    d = []
    for (objective, start, name), c in cost.items():
        if name == row.a:
            other = cost[(objective, start, row.b)]
            if not (math.isinf(c) and math.isinf(other)) and c != other:
                d.append(c / other)
    d = np.log(np.array(d))
    big = 2 * np.abs(d[np.isfinite(d)]).max(initial=1.0) + 1
    ref = scipy_stats.wilcoxon(np.where(np.isinf(d), np.sign(d) * big, d))
    assert row.a_cheaper == (d < 0).sum() and row.b_cheaper == (d > 0).sum()
    assert row.p == pytest.approx(ref.pvalue, rel=1e-9)
    significant = pairs.p_holm < 0.05
    assert (pairs.verdict[significant].isin(["a cheaper", "b cheaper"])).all()
    assert (pairs.verdict[~significant & pairs.p.notna()] == "no significant difference").all()


def test_ranking_with_intervals(sweep):
    root, runs, its, data, c = sweep
    ranking = c.ranking
    assert sorted(ranking.solver_setting) == sorted({setting(r) for _, r in runs.iterrows()})
    assert ranking.mean_rank.is_monotonic_increasing
    assert ((ranking.rank_lo <= ranking.mean_rank + 1e-12) & (ranking.mean_rank <= ranking.rank_hi + 1e-12)).all()
    assert ranking.p_best.sum() == pytest.approx(1.0)
    assert (ranking.units == 12).all()  # 2 objectives x 6 starts, every setting ran each


def test_tuned_comparison_charges_the_tuning_runs(sweep):
    root, runs, its, data, c = sweep
    tuned = c.tuned.table
    traces = per_run(runs, its)
    assert len(tuned) == 4 and set(tuned.candidates) == {CANDIDATES}  # gd and momentum on two objectives
    for row in tuned.itertuples():
        here = runs[(runs.solver == row.solver.split(" ")[0]) & (runs.objective == row.problem)]
        starts = sorted({tuple(x) for x in here.x0})
        tuning, judged = set(starts[0::2]), set(starts[1::2])
        scores, tuning_cost = {}, 0.0
        for lr, g in here.groupby("solver.lr"):
            costs = []
            for r in g.itertuples():
                evals, gap, spent = traces[r.run_id]
                c = solved_cost(evals, gap)
                charge = c if math.isfinite(c) else spent
                if tuple(r.x0) in tuning:
                    costs.append((c, charge))
                    tuning_cost += charge
            hits = sum(math.isfinite(c) for c, _ in costs)
            scores[lr] = sum(ch for _, ch in costs) / hits if hits else math.inf
        best = min(scores, key=lambda lr: (scores[lr], lr))
        if math.isfinite(scores[best]):  # (ties among unsolved candidates are broken by the final gap)
            assert row.chosen == f"lr={best:g}"
        chosen = float(row.chosen.split("=")[1])
        assert row.tuning_cost == pytest.approx(tuning_cost) and row.tuning_runs == CANDIDATES * len(tuning)
        judged_runs = here[(here["solver.lr"] == chosen) & here.x0.map(tuple).isin(judged)]
        costs = [solved_cost(*traces[r][:2]) for r in judged_runs.run_id]
        charges = [c if math.isfinite(c) else traces[r][2] for c, r in zip(costs, judged_runs.run_id)]
        hits = sum(math.isfinite(c) for c in costs)
        assert row.judged_solved == hits and row.judged_runs == len(judged)
        if hits:
            assert row.judged_aRT == pytest.approx(sum(charges) / hits)
            assert row.judged_aRT_with_tuning == pytest.approx((sum(charges) + tuning_cost) / hits)


def test_tables_written_as_csv(sweep, tmp_path):
    *_, data, c = sweep
    from optlab.report.comparisons import write_comparison_tables

    names = write_comparison_tables(data, tmp_path)
    assert names == ["art.csv", "pairs.csv", "ranking.csv", "tuned.csv"]
    for name, table in zip(names, (c.art, c.pairs, c.ranking, c.tuned.table)):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), table.reset_index(drop=True), check_dtype=False)


def test_sections_html(sweep):
    *_, data, c = sweep
    from optlab.report.comparisons import STATS, TUNED, section_html

    stats_html, tuned_html = section_html(data, STATS), section_html(data, TUNED)
    for text in ("Ranking", "Average runtime (aRT) per target", "Pairwise tests", "art.csv", "Holm"):
        assert text in stats_html, text
    assert stats_html.count("<tr>") == 1 + len(c.ranking) + 1 + len(c.art) + 1 + len(c.pairs)
    assert "tuned.csv" in tuned_html and tuned_html.count("<tr>") == 1 + len(c.tuned.table)
    assert section_html(data, "Convergence") == ""


@pytest.mark.slow
def test_report_pages_and_figures(sweep, tmp_path, monkeypatch):
    """The whole report: the sections on the page with their figures, the same tables when built again
    (the declaration is read from the sweep's multirun.yaml), and without scipy a page that says so."""
    root, *_ = sweep
    from optlab.report import build_report, comparisons, stats

    index = build_report(root, tmp_path / "report", progress=False)
    html = index.read_text()
    for text in ("Statistics over repeated runs", "Tuned comparison", "art.csv", "pairs.csv", "tuned.csv"):
        assert text in html, text
    for stem in ("stats_ranking", "stats_pairs", "stats_profiles", "stats_convergence", "tuned_profiles"):
        assert f"src='{stem}.png'" in html
        with Image.open(index.parent / f"{stem}.png") as im:
            im.verify()
    caption = re.search(r"tuned_profiles\.png.*?<figcaption>(.*?)</figcaption>", html, re.S).group(1)
    assert "alternate" in caption and "charged" in caption  # the protocol, stated
    again = build_report(root, tmp_path / "again", progress=False, force=True)
    assert (again.parent / "tuned.csv").read_text() == (index.parent / "tuned.csv").read_text()
    # a new declaration (in a copy of the sweep) is a new report, though no run changed
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    conf = copy / "multirun.yaml"
    conf.write_text(conf.read_text().replace("tune:\n      - lr", "tune:\n        gd:\n        - lr"))
    build_report(copy, copy / "report", progress=False)
    tuned = pd.read_csv(copy / "report" / "tuned.csv")
    assert set(tuned.solver) == {"gd (tuned: lr)"} | {f"momentum (lr={lr})" for lr in ("0.01", "0.1")}
    conf.write_text(conf.read_text().replace("gd:", "momentum:"))
    build_report(copy, copy / "report", progress=False)
    assert "momentum (tuned: lr)" in set(pd.read_csv(copy / "report" / "tuned.csv").solver)

    monkeypatch.setattr(stats, "scipy_stats", lambda: None)
    monkeypatch.setattr(comparisons, "scipy_stats", lambda: None)
    comparisons.__dict__.pop("_comparison", None)
    plain = build_report(root, tmp_path / "noscipy", progress=False)
    assert "scipy is not installed" in plain.read_text()
    pairs = pd.read_csv(plain.parent / "pairs.csv")
    assert pairs.p.isna().all() and (pairs.verdict == "no test").all()
    assert not (plain.parent / "stats_pairs.png").exists()


def test_bad_tuning_declaration_is_one_line(tmp_path):
    out = run_cli("-m", "solver=gd", "stop.max_iter=5", "+hydra.callbacks.report.tune={gd: 3}",
                  f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "hydra.callbacks.report.tune" in out.stderr
    assert "allowed:" in out.stderr and not (tmp_path / "sweep" / "0").exists()


def test_declaration_forms():
    from optlab.errors import ConfigError
    from optlab.report.tuning_axes import parse_tune

    assert parse_tune(["solver.lr"]) == {"*": ("lr",)}
    assert parse_tune("lr") == {"*": ("lr",)}
    assert parse_tune({"gd": ["lr"], "adam": ["lr", "beta1"]}) == {"gd": ("lr",), "adam": ("beta1", "lr")}
    assert parse_tune(None) is None
    for bad in ([], {}, [3], {"gd": []}, {"": ["lr"]}, 5):
        with pytest.raises(ConfigError, match="allowed"):
            parse_tune(bad)
    json.dumps(parse_tune({"gd": "lr"}))  # plain data
