"""Security: configs name plugin classes only; strings from configs are escaped in the report."""

from __future__ import annotations

import pytest

from ..app.test_config_mistakes import assert_one_line_error
from ..conftest import REPO, run_cli


@pytest.mark.parametrize("group, target, words", [
    ("objective", "os.system", "is not allowed"),  # refused by where it is, before it is imported
    ("objective", "subprocess.getoutput", "is not allowed"),
    ("solver", "optlab.objectives.Rosenbrock", "is not a solver class"),
])
def test_target_must_name_a_plugin_class(cli, tmp_path, group, target, words):
    marker = tmp_path / "ran"
    out = cli(f"{group}._target_={target}", f"~{group}.dim" if group == "objective" else "solver.lr=0.1",
              *([f"+{group}.command=touch {marker}"] if target == "os.system" else []))
    assert_one_line_error(out, [f"{group}._target_='{target}' {words}",
                                f"allowed: a subclass of optlab.{group}s."], cli.run_dir)
    assert not marker.exists()


def test_config_strings_are_escaped_in_the_sweep_report(tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    out = run_cli("-m", "objective=double_well", f"solver.lr=0.01,'{hostile}'", "stop.max_iter=30",
                  f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 1  # the hostile job is invalid, the other ran
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<img src=x" not in html and "invalid" in html  # the job is on the page, its string is not live
    assert hostile in (tmp_path / "report" / "summary.csv").read_text()  # and on record, verbatim


def test_the_docs_state_the_trust_rule():
    """A config is data: what it may name is stated in one page (the rule of optlab/trust.py)."""
    text = (REPO / "docs" / "trust.md").read_text()
    for words in ("optlab's own", "registered by an installed package", "your project's", "OPTLAB_TRUST_CONFIG=1",
                  "before anything is imported"):
        assert words in text, words
