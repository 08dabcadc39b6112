"""A data file that cannot be read is named, never quoted: ``objective.data`` may be a symlink to
any file (a system file's lines would otherwise appear in the error message)."""

from __future__ import annotations

import numpy as np
import pytest

from optlab.errors import ConfigError
from optlab.objectives.least_squares import LeastSquares

from ..conftest import run_cli

SECRET = "root:x:0:0:root:/root:/bin/bash"


@pytest.mark.parametrize("content, words", [
    (f"{SECRET}\n", "data row 1, column 1 is not a number"),
    ("1,2,3\n4,5,6\n7,secret-token,9\n", "data row 3, column 2 is not a number"),
    ("1,2\n3,4,5\n", "rows of 2 and of 3 values, from data row 2"),
    (b"\x89PNG\r\n\x1a\n\x00\xffsecret", "not UTF-8 text"),
])
def test_a_symlinked_file_is_not_echoed(tmp_path, content, words):
    target = tmp_path / "private"
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    link = tmp_path / "data.csv"
    link.symlink_to(target)
    with pytest.raises(ConfigError) as caught:
        LeastSquares(data=str(link))
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert "root:" not in message and "secret" not in message and "PNG" not in message


def test_strings_in_an_npz_are_not_echoed(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, A=np.array([["secret-token", "1"]]), z=np.array(["1"]))
    with pytest.raises(ConfigError, match="a value is not a number") as caught:
        LeastSquares(data=str(path))
    assert "secret" not in str(caught.value)


def test_from_the_command_line(tmp_path):
    (tmp_path / "private").write_text(f"{SECRET}\n")
    (tmp_path / "data.csv").symlink_to(tmp_path / "private")
    out = run_cli("objective=least_squares", f"objective.data={tmp_path / 'data.csv'}", "solver=lstsq",
                  f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "data row 1, column 1 is not a number" in out.stderr and "root:" not in out.stdout + out.stderr


def test_good_files_still_read(tmp_path):
    rng = np.random.default_rng(1)
    A, x = rng.standard_normal((6, 2)), np.array([1.5, -0.5])
    np.savetxt(tmp_path / "data.csv", np.column_stack([A, A @ x]), delimiter=",", header="a1,a2,z")
    problem = LeastSquares(data=str(tmp_path / "data.csv"))
    np.testing.assert_allclose(problem.minimizers[0], x, atol=1e-12)
