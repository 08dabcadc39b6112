"""A plain (non-editable) install ships every subpackage and every config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def listed_packages() -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M).group(1)
    return set(re.findall(r'"([^"]+)"', block))


def test_every_subpackage_is_listed():
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("optlab", "hydra_plugins")
             for p in (REPO / top).rglob("__init__.py")}
    assert found | {"optlab.conf"} == listed_packages()
    assert not (REPO / "hydra_plugins" / "__init__.py").exists()  # a namespace package Hydra scans


def test_readme_commands_set_up_from_nothing():
    readme = (REPO / "README.md").read_text()
    commands = {}
    for marker in ("run-command", "test-command"):
        block = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)\n```", readme, re.S)
        assert block, f"README lacks the {marker}"
        commands[marker] = block.group(1).strip()
    for cmd in commands.values():
        assert cmd.startswith("python3 -m venv .venv && .venv/bin/pip install -e ")
    assert commands["run-command"].endswith(".venv/bin/python -m optlab")
    assert ".venv/bin/python -m pytest" in commands["test-command"]
    assert "README.md" in (REPO / ".ci" / "run").read_text()  # CI runs the README's line itself


@pytest.mark.slow
def test_wheel_install_finds_configs(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(wheels)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("optlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (REPO / "conf").rglob("*.yaml"):
        assert f"optlab/conf/{path.relative_to(REPO / 'conf').as_posix()}" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-m", "optlab", "solver=newton", "objective=double_well"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "converged after 7 iterations" in out.stdout
    assert str(site) in subprocess.run(
        [sys.executable, "-c", "import optlab; print(optlab.__file__)"], cwd=elsewhere, env=env,
        capture_output=True, text=True).stdout
    assert list((elsewhere / "outputs" / "runs").rglob("iterates.parquet"))
    sweep = subprocess.run([sys.executable, "-m", "optlab", "-m", "solver.lr=1e-3,2e-3", "stop.max_iter=5",
                            "report.auto=false", "hydra.sweep.dir=sweep"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stderr
    assert "OptlabSweeper" in (elsewhere / "sweep" / "1" / ".hydra" / "hydra.yaml").read_text()


def test_console_script_runs():
    script = Path(sys.executable).parent / "optlab"
    if not script.exists():
        pytest.skip("optlab is not installed as a console script in this environment")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "objective: " in out.stdout and "solver: " in out.stdout


def test_dependency_floors_exclude_known_bad_versions():
    """pyarrow 14.0.0 unpickles extension-type metadata (CVE-2023-47248); hydra-core 1.3.0 brings
    omegaconf 2.4; the Optuna storage needs SQLAlchemy 1.4; pandas, pyarrow, matplotlib and scipy
    releases built for numpy 1 do not import beside numpy 2; pyarrow before 17 cannot add a file's
key-value metadata. The floors keep them out (and .ci/run
    installs and tests every floor: .ci/floors_run)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = {Requirement(d).name: Requirement(d).specifier for d in project["dependencies"]}
    assert not deps["pyarrow"].contains("14.0.0") and deps["pyarrow"].contains("17.0.0")
    assert not deps["pyarrow"].contains("16.1.0")  # no ParquetWriter.add_key_value_metadata before 17
    assert not deps["hydra-core"].contains("1.3.0") and deps["hydra-core"].contains("1.3.2")
    assert not deps["numpy"].contains("1.26.4") and deps["numpy"].contains("2.0.0")
    # built for numpy 1 (they install beside numpy 2 but do not import): the first releases for numpy 2
    assert not deps["pandas"].contains("2.2.1") and deps["pandas"].contains("2.2.2")
    assert not deps["pyarrow"].contains("15.0.2") and not deps["matplotlib"].contains("3.8.3")
    assert not deps["tqdm"].contains("4.66.2") and deps["tqdm"].contains("4.66.3")  # CVE-2024-34062
    optional = {Requirement(d).name: Requirement(d).specifier for d in project["optional-dependencies"]["scipy"]
                + project["optional-dependencies"]["mlflow"]}
    assert not optional["scipy"].contains("1.12.0") and not optional["mlflow-skinny"].contains("2.11.3")
    for extra in ("sweep", "test"):
        pins = {Requirement(d).name: Requirement(d).specifier for d in project["optional-dependencies"][extra]}
        assert not pins["sqlalchemy"].contains("2.0.0") and pins["sqlalchemy"].contains("1.4.54")
    assert {"polars", "duckdb"} <= {Requirement(d).name for d in project["optional-dependencies"]["test"]}
    assert project["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    assert (REPO / "optlab" / "py.typed").exists()
    assert "py.typed" in (REPO / "pyproject.toml").read_text()
