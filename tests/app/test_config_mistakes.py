"""Config mistakes: one line naming the key, the bad value and what is allowed; exit 2; no run on disk."""

from __future__ import annotations

import numpy as np
import pytest

CASES = {
    "unknown objective": (["objective=rosenbrok"], ["objective='rosenbrok' is unknown", "allowed:",
                                                    "rosenbrock", "double_well"]),
    "unknown solver": (["solver=newtn"], ["solver='newtn' is unknown", "allowed:", "gd", "newton"]),
    "unknown solver option": (["solver.learning_rate=0.1"], ["solver.learning_rate is not an option",
                                                              "allowed: lr"]),
    "unknown top-level key": (["max_iter=10"], ["max_iter is not an option", "allowed:", "stop"]),
    "lr not a number": (["solver.lr=abc"], ["solver.lr='abc' is not a number", "allowed: a number > 0"]),
    "lr zero": (["solver.lr=0"], ["solver.lr=0", "allowed: a number > 0"]),
    "lr negative": (["solver.lr=-1e-3"], ["solver.lr=-0.001", "allowed: a number > 0"]),
    "max_iter negative": (["stop.max_iter=-5"], ["stop.max_iter=-5", "allowed: a whole number >= 0"]),
    "max_iter fractional": (["stop.max_iter=2.5"], ["stop.max_iter=2.5", "allowed: a whole number >= 0"]),
    "gtol negative": (["stop.gtol=-1"], ["stop.gtol=-1", "allowed: a number >= 0"]),
    "max_seconds negative": (["stop.max_seconds=-2"], ["stop.max_seconds=-2", "allowed: a number > 0"]),
    "dimension zero": (["objective.dim=0"], ["objective.dim=0", "allowed: a whole number >= 1"]),
    "rows below one": (["objective=least_squares", "objective.m=0"], ["objective.m=0", "allowed: a whole number"]),
    "x0 too long": (["x0=[0,1,2]"], ["x0=[0, 1, 2] has length 3", "allowed: length 2"]),
    "x0 nan": (["x0=[0,nan]"], ["x0=[0, nan] is not finite", "allowed: 2 finite numbers"]),
    "x0 inf": (["x0=[inf,0]"], ["x0=[inf, 0] is not finite", "allowed: 2 finite numbers"]),
    "x0 text": (["x0=abc"], ["x0='abc' is not a list of numbers", "allowed:"]),
    "lstsq on a nonlinear problem": (["solver=lstsq"], ["solver=lstsq needs a linear least-squares objective",
                                                        "objective=rosenbrock", "allowed: least_squares"]),
    "bad override syntax": (["solver.lr=="], ["solver.lr==", "allowed: KEY=VALUE"]),
    "comma without -m": (["solver.lr=0.1,0.2"], ["solver.lr=0.1,0.2 is ambiguous", "allowed: a list"]),
}


def assert_one_line_error(out, expected: list[str], run_dir) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("optlab: error: ")
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert "Traceback" not in out.stderr + out.stdout
    assert not (run_dir / "run.json").exists() and not (run_dir / "iterates.parquet").exists()


@pytest.mark.parametrize("name", CASES)
def test_config_mistake(cli, name):
    args, expected = CASES[name]
    assert_one_line_error(cli(*args), expected, cli.run_dir)


def test_traceback_on_request(cli):
    out = cli("solver.lr=-1", env={"HYDRA_FULL_ERROR": "1"})
    assert out.returncode != 0 and "Traceback" in out.stderr and "ConfigError" in out.stderr


def _write(path, kind):
    if kind == "empty":
        path.write_text("")
    elif kind == "non-numeric":
        path.write_text("1,2,3\n4,five,6\n")
    elif kind == "mismatched":
        np.savez(path, A=np.ones((4, 2)), z=np.ones(3))
    elif kind == "missing array":
        np.savez(path, A=np.ones((4, 2)))
    elif kind == "object array":
        np.savez(path, A=np.array([{"a": 1}], dtype=object), z=np.ones(1))


@pytest.mark.parametrize("kind, suffix, expected", [
    ("missing", ".csv", "does not exist; allowed: a path to an existing .npz or .csv file"),
    ("empty", ".csv", "allowed: "),
    ("non-numeric", ".csv", "could not be read"),
    ("mismatched", ".npz", "has A of shape (4, 2) and z of shape (3,)"),
    ("missing array", ".npz", "lacks array(s) ['z']"),
    ("object array", ".npz", "could not be read"),  # pickled objects are refused, never loaded
    ("wrong suffix", ".txt", "has suffix '.txt'; allowed: a .npz or .csv file"),
])
def test_least_squares_data_file_mistakes(cli, tmp_path, kind, suffix, expected):
    path = tmp_path / f"data{suffix}"
    if kind not in ("missing", "wrong suffix"):
        _write(path, kind)
    if kind == "wrong suffix":
        path.write_text("1,2\n")
    out = cli("objective=least_squares", f"objective.data={path}", "solver=lstsq")
    assert_one_line_error(out, [f"objective.data='{path}'", expected], cli.run_dir)


def test_least_squares_reads_a_good_csv(cli, tmp_path):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((20, 3))
    z = A @ np.array([1.0, -2.0, 0.5]) + 0.01 * rng.standard_normal(20)
    path = tmp_path / "good.csv"
    np.savetxt(path, np.column_stack([A, z]), delimiter=",")
    out = cli("objective=least_squares", f"objective.data={path}", "solver=lstsq")
    assert out.returncode == 0, out.stderr
    import optlab

    runs, _ = optlab.load(cli.run_dir)
    np.testing.assert_allclose(runs.x_final[0], np.linalg.lstsq(A, z, rcond=None)[0], rtol=1e-9)
