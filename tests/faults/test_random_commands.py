"""Random options and start points through the CLI entry: a finished run with a known status, or one line."""

from __future__ import annotations

import itertools
import json
import sys

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optlab.app.cli import main
from optlab.engine.stopping import STATUSES

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-10, 10))
TEXT = st.text(alphabet="abc01.-+e,[]{}()'\" =:$", max_size=6)


def render(value) -> str:
    return value if isinstance(value, str) else repr(value)


@st.composite
def argv(draw) -> list[str]:
    args = [f"solver={draw(st.sampled_from(['gd', 'newton', 'lstsq', 'bogus']))}",
            f"objective={draw(st.sampled_from(['rosenbrock', 'double_well', 'least_squares', 'nope']))}"]
    if draw(st.booleans()):
        args.append(f"solver.lr={render(draw(st.one_of(NUMBERS, TEXT)))}")
    if draw(st.booleans()):
        coords = draw(st.lists(st.one_of(NUMBERS, st.floats(-3, 3)), max_size=3))
        args.append(f"x0=[{','.join(render(c) for c in coords)}]")
    args.append(f"stop.max_iter={render(draw(st.one_of(st.integers(-2, 40), TEXT)))}")
    if draw(st.booleans()):
        args.append(f"stop.gtol={render(draw(NUMBERS))}")
    return args


counter = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=argv())
def test_every_outcome_is_a_known_status_or_one_line(args, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / f"run{next(counter)}"
    monkeypatch.setattr(sys, "argv", ["optlab", *args, f"hydra.run.dir={run_dir}",
                                      "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    if code == 0:
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] in STATUSES, record
        assert (run_dir / "iterates.parquet").exists()
    else:
        assert code == 2, (args, captured.err)
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("optlab: error: "), (args, captured.err)
        assert "allowed" in lines[0] or "unknown" in lines[0], lines[0]
        assert not (run_dir / "run.json").exists()


# Every option, each with values of every type: the weird ones for all, and a small range of
# plausible ones so that runs also start (kept small: each example runs in this process).
WEIRD = st.sampled_from(["nan", "inf", "-inf", "1e308", "9" * 400, "abc", "true", "null", "[1,2]", "[[1]]", "''",
                         "'a,b'", "-1", "0", "2.5", "[true,false]", "{a:1}"])
OPTIONS = {
    "stop.max_iter": st.integers(-2, 60), "stop.gtol": st.floats(-1, 1), "stop.xtol": st.floats(-1, 1),
    "stop.max_seconds": st.floats(-1, 2), "stop.max_fev": st.integers(-1, 100), "stop.target": st.floats(-5, 5),
    "stop.ftol": st.floats(-1, 1), "stop.patience": st.integers(-1, 20), "log.max_coords": st.integers(-1, 5),
    "log.chunk_rows": st.integers(-1, 50), "log.grad_norm": st.booleans(), "solver.lr": st.floats(-1, 2),
    "solver.schedule": st.sampled_from(["constant", "step", "exponential", "nope"]),
    "solver.line_search": st.sampled_from(["none", "armijo", "wolfe", "nope"]), "solver.c1": st.floats(-1, 2),
    "objective.dim": st.integers(-1, 6), "x0": st.lists(st.floats(-3, 3), max_size=3),
    "starts": st.sampled_from(["grid", "random", "list"]), "starts.n": st.integers(-1, 4),
    "starts.box": st.lists(st.floats(-3, 3), max_size=3), "report.tol": st.floats(-1, 1),
}


def plain(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return f"[{','.join(repr(v) for v in value)}]"
    return str(value)


@st.composite
def any_command(draw) -> tuple[list[str], bool]:
    sweeping = draw(st.booleans())
    keys = draw(st.lists(st.sampled_from(sorted(OPTIONS)), min_size=1, max_size=4, unique=True))
    args = ["objective=rosenbrock", "solver=gd"]
    if "stop.max_iter" not in keys:
        args.append("stop.max_iter=40")
    for i, key in enumerate(keys):
        value = plain(draw(st.one_of(WEIRD, OPTIONS[key])))
        if sweeping and i == 0 and key != "starts":
            value = f"{value},{plain(draw(st.one_of(WEIRD, OPTIONS[key])))}"
        if key.startswith("starts.") and "starts" not in keys:
            args.append("starts=random")
        args.append(f"{key}={value}")
    return args, sweeping


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=any_command())
def test_any_value_of_any_option_exits_0_1_or_2_without_a_traceback(command, tmp_path, capsys, monkeypatch):
    args, sweeping = command
    where = tmp_path / f"out{next(counter)}"
    mode = ["-m", "report.auto=false", f"hydra.sweep.dir={where}"] if sweeping else [f"hydra.run.dir={where}"]
    monkeypatch.setattr(sys, "argv", ["optlab", *mode, *args, "hydra/job_logging=disabled",
                                      "hydra/hydra_logging=disabled"])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    event(f"{'sweep' if sweeping else 'run'} exit {code}")
    assert code in (0, 1, 2), (args, code, out.err)
    assert "Traceback" not in out.err + out.out, (args, out.err)
    if code == 2 or (code == 1 and not sweeping):
        lines = out.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("optlab: error: "), (args, out.err)
    elif sweeping:
        assert "sweep: " in out.out and str(where) in out.out, (args, out.out, out.err)
    else:  # one run, or one per start (starts=...)
        records = sorted(where.rglob("run.json"))
        assert records and all(json.loads(r.read_text())["status"] in STATUSES for r in records), args
