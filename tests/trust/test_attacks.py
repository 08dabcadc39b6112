"""The attacks of issue 18 (items 1 and 2), each refused before anything is imported or called:
exit 2, one line, no file written, no command run; from the command line, from an experiment
file and from a sweep."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ..app.test_bad_values import call, one_line
from ..conftest import REPO, run_cli


def pickled_command(command: str) -> bytes:
    """A pickle that runs ``command`` in a shell when it is loaded (protocol 0: os.system)."""
    return f"cos\nsystem\n(V{command}\ntR.".encode()


def as_floats(data: bytes) -> list[float]:
    """``data`` as the float64 numbers whose bytes it is (the black-box attack's x0)."""
    data += b" " * (-len(data) % 8)
    return np.frombuffer(data, dtype=np.float64).tolist()


@pytest.fixture
def victim(tmp_path):
    """A marker a payload would create, and a pickle file that creates it when loaded."""
    marker = tmp_path / "PWNED"
    payload = tmp_path / "payload.pickle"
    payload.write_bytes(pickled_command(f"touch {marker}"))
    return marker, payload


def with_hydras_logging(monkeypatch) -> None:
    """Run with Hydra's own logging configs (the tests' quiet ones never call a handler class)."""
    from ..app import test_bad_values

    monkeypatch.setattr(test_bad_values, "QUIET", [])


def refused(code: int, err: str, *parts: str, tmp_path: Path, marker: Path) -> None:
    one_line(code, err, *parts)
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists(), "files were written"


def test_the_payloads_are_live(victim):
    """The payloads below do what they would: loading the pickle runs its command (so a refusal
    in the tests below is what keeps the marker away)."""
    marker, payload = victim
    pickle.loads(payload.read_bytes())  # noqa: S301 - the test's own payload
    assert marker.exists()


# (override lines, words of the one-line error); the payload's paths are filled in per test
COMMAND_LINE_ATTACKS = {
    "np.load through optlab.tracking": (
        ["+hydra.callbacks.x._target_=optlab.tracking.np.load", "+hydra.callbacks.x.file={payload}",
         "+hydra.callbacks.x.allow_pickle=true"], "hydra.callbacks.x._target_='optlab.tracking.np.load'"),
    "np.load through optlab.app.tracking": (
        ["+hydra.callbacks.x._target_=optlab.app.tracking.np.load", "+hydra.callbacks.x.file={payload}",
         "+hydra.callbacks.x.allow_pickle=true"], "hydra.callbacks.x._target_='optlab.app.tracking.np.load'"),
    "Path.write_text": (
        ["+hydra.callbacks.x._target_=optlab.app.tracking.Path.write_text", "+hydra.callbacks.x.self={marker}",
         "+hydra.callbacks.x.data=x"], "optlab.app.tracking.Path.write_text"),
    "old Path.write_text": (
        ["+hydra.callbacks.x._target_=optlab.tracking.Path.write_text", "+hydra.callbacks.x.self={marker}",
         "+hydra.callbacks.x.data=x"], "optlab.tracking.Path.write_text"),
    "sys.exit": (["+hydra.callbacks.x._target_=optlab.hydra_callbacks.sys.exit"], "optlab.hydra_callbacks.sys.exit"),
    "a Hydra callback that unpickles": (
        ["+hydra.callbacks.x._target_=hydra.experimental.callbacks.PickleJobInfoCallback"], "PickleJobInfoCallback"),
    "partial": (["+hydra.callbacks.x._target_=optlab.app.callbacks.SweepReport", "+hydra.callbacks.x._partial_=true"],
                "hydra.callbacks.x._partial_ is not allowed"),
    "Hydra's logging, configured while composing": (
        ["+hydra.hydra_logging.handlers.x.class=logging.os.popen",
         "+hydra.hydra_logging.handlers.x.cmd=touch {marker}"],
        "hydra.hydra_logging.handlers.x.class='logging.os.popen' is not allowed"),
    "a job's logging": (
        ["+hydra.job_logging.handlers.x.class=logging.os.system",
         "+hydra.job_logging.handlers.x.command=touch {marker}"],
        "hydra.job_logging.handlers.x.class='logging.os.system' is not allowed"),
    "nested target": (["+hydra.callbacks.x._target_=optlab.app.callbacks.SweepReport",
                       "+hydra.callbacks.x.tol._target_=os.system", "+hydra.callbacks.x.tol.command=touch {marker}"],
                      "hydra.callbacks.x.tol._target_='os.system' is not allowed"),
}


def _fill(args: list[str], marker: Path, payload: Path) -> list[str]:
    return [a.format(marker=marker, payload=payload) for a in args]


@pytest.mark.parametrize("name", COMMAND_LINE_ATTACKS)
@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_attacks_from_the_command_line(name, mode, tmp_path, victim, capsys, monkeypatch):
    marker, payload = victim
    args, words = COMMAND_LINE_ATTACKS[name]
    if "logging" in name:
        with_hydras_logging(monkeypatch)
    sweep = ["-m", "stop.max_iter=3,4"] if mode == "sweep" else []
    code, _, err = call([*sweep, "objective=double_well", *_fill(args, marker, payload),
                         f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                        capsys, monkeypatch)
    refused(code, err, words, tmp_path=tmp_path, marker=marker)


def black_box_attack(marker: Path) -> list[str]:
    x0 = as_floats(pickled_command(f"touch {marker}"))
    return ["objective=black_box", "objective.function=pandas.compat.pickle_compat.loads", f"objective.dim={len(x0)}",
            f"x0=[{','.join(repr(v) for v in x0)}]", "solver=nelder_mead", "stop.max_iter=2"]


def test_the_black_box_payload_is_live(tmp_path):
    """Called on x0 as a black box would call it, the function the attack names runs the command."""
    pickle_compat = pytest.importorskip("pandas.compat.pickle_compat")
    marker = tmp_path / "PWNED"
    x0 = next(a for a in black_box_attack(marker) if a.startswith("x0="))
    pickle_compat.loads(np.array([float(v) for v in x0[4:-1].split(",")], dtype=float))
    assert marker.exists()


@pytest.mark.parametrize("key", ["function", "gradient"])
@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_the_black_box_attack_is_refused(key, mode, tmp_path, capsys, monkeypatch):
    marker = tmp_path / "PWNED"
    args = black_box_attack(marker)
    if key == "gradient":
        args = [a.replace("objective.function=pandas.compat.pickle_compat.loads",
                          "objective.function=examples.my_plugins.my_black_box.rosenbrock") for a in args]
        args.append("+objective.gradient=pandas.compat.pickle_compat.loads")
    sweep = ["-m", "stop.max_iter=2,3"] if mode == "sweep" else []
    code, _, err = call([*sweep, *args, f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                        capsys, monkeypatch)
    refused(code, err, "is not allowed", tmp_path=tmp_path, marker=marker)


def test_a_swept_black_box_function_is_refused_before_the_first_job(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "PWNED"
    args = [a.replace("objective.function=pandas.compat.pickle_compat.loads",
                      "objective.function=examples.my_plugins.my_black_box.rosenbrock,"
                      "pandas.compat.pickle_compat.loads") for a in black_box_attack(marker)]
    code, _, err = call(["-m", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}"], capsys, monkeypatch)
    refused(code, err, "objective.function='pandas.compat.pickle_compat.loads' is not allowed", tmp_path=tmp_path,
            marker=marker)


@pytest.mark.slow  # (several optlab processes)
def test_importing_a_module_is_not_the_check(tmp_path):
    """``objective._target_=this.X`` printed the Zen of Python before its error: the module ran."""
    for extra in ([], ["-m"]):
        out = run_cli(*extra, "objective._target_=this.X", f"hydra.run.dir={tmp_path / 'run'}",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}")
        assert out.returncode == 2 and "Zen of Python" not in out.stdout + out.stderr, out.stdout
        assert out.stderr.count("\n") == 1 and "objective._target_='this.X' is not allowed" in out.stderr
        assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


def test_a_search_path_is_not_imported_before_the_check(tmp_path):
    out = run_cli("hydra.searchpath=[pkg://this]", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2 and "Zen of Python" not in out.stdout + out.stderr, out.stdout
    assert out.stderr.count("\n") == 1 and "hydra.searchpath='pkg://this' is not allowed" in out.stderr
    assert not (tmp_path / "run").exists()


def test_a_pickled_config_is_not_rerun(tmp_path, victim, capsys, monkeypatch):
    marker, payload = victim
    code, _, err = call(["--experimental-rerun", str(payload)], capsys, monkeypatch)
    refused(code, err, f"--experimental-rerun {payload} is not allowed", tmp_path=tmp_path, marker=marker)


# -- from experiment files ------------------------------------------------------------------------
EXPERIMENTS = {
    "callback": """
        hydra:
          callbacks:
            x:
              _target_: optlab.tracking.np.load
              file: {payload}
              allow_pickle: true
        """,
    "two callbacks: write the pickle, then load it": """
        hydra:
          callbacks:
            a:
              _target_: optlab.app.tracking.Path.write_bytes
              self: {tmp}/written.pickle
              data: {payload_text}
            b:
              _target_: optlab.app.tracking.np.load
              file: {tmp}/written.pickle
              allow_pickle: true
        """,
    "job logging formatter": """
        hydra:
          job_logging:
            formatters:
              evil:
                (): logging.os.popen
                cmd: touch {marker}
        """,
    "Hydra's own logging": """
        hydra:
          hydra_logging:
            formatters:
              evil:
                (): logging.os.popen
                cmd: touch {marker}
        """,
    "a logging stream from anywhere": """
        hydra:
          job_logging:
            handlers:
              console:
                stream: ext://this.s
        """,
    "a log file outside the run": """
        hydra:
          job_logging:
            handlers:
              file:
                filename: {marker}
        """,
    "a launcher's setup commands": """
        defaults:
          - override /hydra/launcher: submitit_slurm
        hydra:
          launcher:
            setup: [touch {marker}]
        """,
    "black box": """
        objective:
          _target_: optlab.objectives.BlackBox
          function: pandas.compat.pickle_compat.loads
        """,
    "objective class from the standard library": """
        objective:
          _target_: this.X
        """,
}


def write_experiment(tmp_path: Path, name: str, body: str, marker: Path, payload: Path) -> Path:
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(body).format(marker=marker, payload=payload, tmp=tmp_path,
                                        payload_text=repr(payload.read_text()))
    (conf / f"{name}.yaml").write_text("# @package _global_\n" + text)
    return tmp_path / "conf"


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_attacks_from_an_experiment_file(name, mode, tmp_path, victim, capsys, monkeypatch):
    marker, payload = victim
    if "launcher" in name:
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    if "logging" in name or "log file" in name:
        with_hydras_logging(monkeypatch)
    conf = write_experiment(tmp_path, "shared", EXPERIMENTS[name], marker, payload)
    sweep = ["-m", "stop.max_iter=3,4"] if mode == "sweep" else ["stop.max_iter=3"]
    code, _, err = call([*sweep, "+experiment=shared", f"hydra.searchpath=[file://{conf}]", "objective=double_well",
                         f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                        capsys, monkeypatch)
    if name == "a log file outside the run":
        # a file name is known once Hydra has made the job's directory: refused there, before logging starts
        one_line(code, err, f"filename='{marker}' is not allowed")
        assert not marker.exists() and not list(tmp_path.rglob("*.log"))
        return
    refused(code, err, "is not allowed", tmp_path=tmp_path, marker=marker)
    assert not (tmp_path / "written.pickle").exists()


@pytest.mark.slow  # (several optlab processes)
def test_a_job_of_a_sweep_over_experiments_is_checked_where_it_runs(tmp_path, victim):
    """A sweep over experiment files gives each job its own logging config, which the sweep's own
    checks never see: it is checked where Hydra configures the job's logging."""
    marker, payload = victim
    conf = write_experiment(tmp_path, "evil", EXPERIMENTS["job logging formatter"], marker, payload)
    write_experiment(tmp_path, "innocent", "stop:\n  max_iter: 3\n", marker, payload)
    for launcher in ([], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]):
        if launcher:
            pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
        out = run_cli("-m", "+experiment=innocent,evil", f"hydra.searchpath=[file://{conf}]", "objective=double_well",
                      "report.auto=false", *launcher, f"hydra.sweep.dir={tmp_path / 'sweep'}",
                      env={"HYDRA_FULL_ERROR": "0"})
        assert out.returncode == 2, (out.stdout, out.stderr)
        assert "hydra.job_logging.formatters.evil.()='logging.os.popen' is not allowed" in out.stderr
        assert "Traceback" not in out.stderr and not marker.exists()


def test_the_opt_in_lifts_the_place_rule_only(tmp_path, capsys, monkeypatch):
    """With OPTLAB_TRUST_CONFIG=1 a site-packages function may be a black box; a name that walks
    through attributes, or a class of the wrong kind, is still refused."""
    pytest.importorskip("scipy")
    monkeypatch.setenv("OPTLAB_TRUST_CONFIG", "1")
    code, out, err = call(["objective=black_box", "objective.function=scipy.optimize.rosen", "objective.x0=[-1.2,1]",
                           "solver=bfgs", "stop.max_iter=200", f"hydra.run.dir={tmp_path / 'run'}"],
                          capsys, monkeypatch)
    assert code == 0, err
    assert "bfgs on black_box:" in out and (tmp_path / "run" / "run.json").is_file()
    code, _, err = call(["objective=double_well", "+hydra.callbacks.x._target_=optlab.app.tracking.np.load",
                         f"hydra.run.dir={tmp_path / 'other'}"], capsys, monkeypatch)
    one_line(code, err, "cannot be imported (ModuleNotFoundError: No module named 'optlab.app.tracking.np'")
    monkeypatch.delenv("OPTLAB_TRUST_CONFIG")
    code, _, err = call(["objective=black_box", "objective.function=scipy.optimize.rosen",
                         f"hydra.run.dir={tmp_path / 'third'}"], capsys, monkeypatch)
    one_line(code, err, "objective.function='scipy.optimize.rosen' is not allowed", "OPTLAB_TRUST_CONFIG=1")


@pytest.mark.slow  # (several optlab processes)
def test_modules_of_the_attacks_are_never_imported(tmp_path):
    """In a fresh process, after each refusal, the modules the attacks name were not imported
    (``antigravity`` opens a web browser when imported)."""
    script = textwrap.dedent(f"""
        import sys
        from optlab.app.cli import main
        for args in (["objective=black_box", "objective.function=antigravity.geohash"],
                     ["objective._target_=this.X"], ["solver._target_=this.X"],
                     ["+hydra.callbacks.x._target_=antigravity.webbrowser.open", "+hydra.callbacks.x.url=x"]):
            sys.argv = ["optlab", *args, "hydra.run.dir={tmp_path / 'run'}"]
            try:
                main()
            except SystemExit as exc:
                print("exit", exc.code)
        print("imported:", sorted(m for m in ("antigravity", "this", "webbrowser") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert out.stdout.count("exit 2") == 4 and "imported: []" in out.stdout, (out.stdout, out.stderr)
    assert out.stderr.count("optlab: error: ") == 4 and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()
