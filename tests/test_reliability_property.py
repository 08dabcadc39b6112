"""Random options and start points through the CLI entry: a finished run with a known status, or one line."""

from __future__ import annotations

import itertools
import json
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optlab.cli import main
from optlab.runner import STATUSES

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
