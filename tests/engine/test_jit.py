"""The machine-code lowering of step programs (optlab.engine.jit, numba): the same runs as the
Python lowering and the generic path, bit for bit; compiled once, kept on disk, opened by later
processes without compiling; chosen by the setting OPTLAB_JIT.

Tests that compile are marked slow (numba takes seconds per program when the cache is cold);
``.ci/run`` installs the extra, so they run there, and again without AVX-512 (``paths``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from optlab.autodiff import native
from optlab.engine import jit, jit_code
from optlab.engine.stopping import Stop
from optlab.errors import ConfigError
from optlab.objectives import OBJECTIVES
from optlab.solvers import SOLVERS

from .. import conftest
from ..conftest import REPO, assert_same_runs
from .test_step_paths import SCHEDULES, STEP_SOLVERS, SteepWell, rules_for, starts_of

pytest.importorskip("numba")
pytestmark = [pytest.mark.paths]

BACKENDS = {"jit": ("fused", "on"), "python": ("fused", "off"), "generic": ("generic", "off")}


def logged(objective, solver, x0=None, *, lowering="python", **stop):
    """One run and its iterate table: ``lowering`` jit (machine code), python (the fused loop) or generic."""
    backend, setting = BACKENDS[lowering]
    old = os.environ.get("OPTLAB_JIT")
    os.environ["OPTLAB_JIT"] = setting
    try:
        out, its = conftest.logged(objective, solver, x0, backend=backend, **stop)
    finally:
        os.environ.pop("OPTLAB_JIT") if old is None else os.environ.update(OPTLAB_JIT=old)
    assert (out.backend, out.jit) == {"jit": ("fused", True), "python": ("fused", False),
                                      "generic": ("generic", False)}[lowering]
    return out, its


def together(objective, solver, starts, stop, lowering="jit", **options):
    """A batch of runs (machine code, or the vectorised step), each as (outcome, iterates)."""
    old = os.environ.get("OPTLAB_JIT")
    os.environ["OPTLAB_JIT"] = "on" if lowering == "jit" else "off"
    try:
        runs = conftest.batched(objective, solver, starts, stop, **options)
    finally:
        os.environ.pop("OPTLAB_JIT") if old is None else os.environ.update(OPTLAB_JIT=old)
    assert {(out.backend, out.jit) for out, _ in runs} == {("batched", lowering == "jit")}
    return runs


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache directory of its own (nothing compiled yet)."""
    monkeypatch.setenv("OPTLAB_JIT_CACHE", str(tmp_path / "jit"))
    monkeypatch.setattr(native, "_LOADED", {})
    return tmp_path / "jit"


# -- the same bits -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s["schedule"])
@pytest.mark.parametrize("solver_name", STEP_SOLVERS)
def test_machine_code_runs_are_the_generic_and_python_runs(solver_name, schedule):
    endings = set()
    for name, options in [("rosenbrock", {}), ("ackley", {})]:  # plain arithmetic; exp, cos, sqrt
        obj = OBJECTIVES[name](**options)
        starts = starts_of(obj)
        for lr, stop in rules_for(obj, solver_name, schedule, starts[0]):
            solver = SOLVERS[solver_name](lr=lr, **schedule)
            for start, batched in zip(starts, together(obj, solver, starts, Stop(**stop))):
                generic = logged(obj, solver, start, lowering="generic", **stop)
                assert_same_runs(logged(obj, solver, start, lowering="jit", **stop), generic)
                assert_same_runs(logged(obj, solver, start, lowering="python", **stop), generic)
                assert_same_runs(batched, generic)
                endings.add(generic[0].message.split(" ")[0])
    assert endings == {"reached", "||grad", "step", "f"}  # max_iter, gtol, xtol, diverged


@pytest.mark.slow
@pytest.mark.parametrize("solver_name", ["gd", "adam"])
def test_overflow_gives_numpys_inf_in_machine_code_as_on_the_generic_path(solver_name):
    obj, solver = SteepWell(), SOLVERS[solver_name](lr=10.0 if solver_name == "gd" else 30.0)
    generic = logged(obj, solver, lowering="generic", max_iter=5)
    fast = logged(obj, solver, lowering="jit", max_iter=5)
    assert fast[0].status == "diverged"
    assert_same_runs(fast, generic)
    (batched,) = together(obj, solver, [[1.0]], Stop(max_iter=5))
    assert_same_runs(batched, generic)


@pytest.mark.slow
def test_wide_runs_log_their_first_coordinates_and_cross_chunks(monkeypatch):
    import optlab.engine.driver as driver
    from optlab.engine import jit
    from optlab.engine.log import LogOptions
    from optlab.engine.run_set import InMemory, run_set

    obj, solver, stop = OBJECTIVES["styblinski_tang"](dim=16), SOLVERS["adam"](lr=1e-2), Stop(max_iter=400, gtol=0)
    monkeypatch.setattr(driver, "STRETCH", 37)  # stretches end inside chunks
    monkeypatch.setattr(jit, "CALL_BYTES", 0)  # (machine code's too)
    found = []
    for setting, backend in (("on", "fused"), ("off", "generic")):
        monkeypatch.setenv("OPTLAB_JIT", setting)
        sinks = InMemory(LogOptions(max_coords=5, chunk_rows=50))
        (out,) = run_set(obj, solver, None, stop, sinks, log=sinks.log, backend=backend)
        found.append((out, sinks.tables[0].to_pandas()))
    assert found[0][0].jit and list(found[0][1].columns)[-1] == "x_4"
    assert found[0][0].iterations == 400
    assert_same_runs(*found)


@pytest.mark.slow
def test_a_batch_crosses_calls_and_chunks_and_ends_each_run_by_its_rule(monkeypatch):
    from optlab.engine import jit_many

    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["momentum"](lr=1e-3)
    starts = starts_of(obj, 7)
    lrs = [1e-3, 2e-3, 5e-4, 1e-3, 3e-3, 1e-4, 1e-3]
    monkeypatch.setattr(jit_many, "CALL_STEPS", 7 * 13)  # 13 steps a call: calls end inside chunks
    stop = Stop(max_iter=700, gtol=1e-2, xtol=1e-9)
    runs = together(obj, solver, starts, stop, lrs=lrs, chunk_rows=60)
    for (out, its), start, lr in zip(runs, starts, lrs):
        generic = logged(obj, SOLVERS["momentum"](lr=lr), start, lowering="generic", max_iter=700, gtol=1e-2,
                         xtol=1e-9)
        assert_same_runs((out, its), generic)
    assert {out.status for out, _ in runs} >= {"converged", "max_iter"}


@pytest.mark.slow
def test_a_batch_given_the_target_ends_runs_there_as_single_runs_do():
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3)
    starts = [[0.0, 2.0], [0.5, 0.5]]
    for (out, its), start in zip(together(obj, solver, starts, Stop(max_iter=3000, target=0.5)), starts):
        assert out.status == "target"
        assert_same_runs((out, its), logged(obj, solver, start, lowering="generic", max_iter=3000, target=0.5))


@pytest.mark.slow
def test_ctrl_c_during_machine_code_keeps_every_step_taken():
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-7)
    logged(obj, solver, lowering="jit", max_iter=10)  # compiled before the clock starts
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    out, its = logged(obj, solver, lowering="jit", max_iter=10**9, gtol=0)
    assert out.status == "interrupted" and len(its) == out.iterations + 1 > 1000
    assert its.iter.tolist() == list(range(len(its)))
    _, generic = logged(obj, solver, lowering="generic", max_iter=1000, gtol=0)
    columns = [c for c in its.columns if c != "time_s"]
    np.testing.assert_array_equal(its[columns].to_numpy()[:1001], generic[columns].to_numpy())
    np.testing.assert_array_equal(its[["x_0", "x_1"]].to_numpy()[-1], out.state.x)


@pytest.mark.slow
def test_max_seconds_in_machine_code_keeps_every_iterate():
    out, its = logged(OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-9), lowering="jit", max_iter=10**10, gtol=0,
                      max_seconds=0.05)
    assert out.status == "max_seconds" and len(its) == out.iterations + 1 > 1000
    times = its.time_s.to_numpy()
    assert np.all(np.diff(times) >= 0) and len(np.unique(times)) >= out.iterations // jit_code.CLOCK_EVERY


# -- compiled once, kept on disk ------------------------------------------------------------------
PROBE = """
import json, os, sys
os.environ["OPTLAB_JIT"] = "on"
from optlab.autodiff import native
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import Rosenbrock
from optlab.solvers import SOLVERS
(out,) = run_set(Rosenbrock(), SOLVERS["adam"](lr=float(sys.argv[1])), None, Stop(max_iter=1000))
print(json.dumps({"jit": out.jit, "compiled": native.COMPILED, "setup_s": out.setup_s,
                  "numba": "numba" in sys.modules}))
"""


def probe(cache, lr=1e-3):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPTLAB_JIT_CACHE": str(cache)}
    return subprocess.Popen([sys.executable, "-c", PROBE, str(lr)], env=env, stdout=subprocess.PIPE, text=True)


def report(process):
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    return json.loads(out)


@pytest.mark.slow
def test_a_second_process_opens_the_compiled_loop_without_compiling(cache):
    first = report(probe(cache))
    assert first["jit"] and len(first["compiled"]) == 1 and first["numba"]
    assert first["setup_s"] >= first["compiled"][0][1] > 0  # compiling is part of the run's set-up
    assert len(list(cache.glob("*.so"))) == 1
    second = report(probe(cache, lr=0.5))  # another rate: the same program
    assert second["jit"] and second["compiled"] == [] and not second["numba"]
    assert second["setup_s"] < 0.2


@pytest.mark.slow
def test_processes_started_together_compile_a_program_once(cache):
    reports = [report(p) for p in [probe(cache, lr) for lr in (1e-3, 2e-3, 3e-3)]]
    assert sorted(len(r["compiled"]) for r in reports) == [0, 0, 1]
    assert len(list(cache.glob("*.so"))) == 1


@pytest.mark.slow
def test_without_a_c_compiler_the_machine_code_stays_in_the_process(cache, monkeypatch):
    monkeypatch.setattr(native, "linker", lambda: None)
    obj, solver = OBJECTIVES["beale"](), SOLVERS["rmsprop"](lr=1e-3)
    assert_same_runs(logged(obj, solver, lowering="jit", max_iter=300), logged(obj, solver, lowering="generic",
                                                                              max_iter=300))
    assert not list(cache.glob("*.so"))


# -- the setting and the rule of auto ---------------------------------------------------------------
def program_of(solver_name="gd", **options):
    from optlab.engine.program import program_for
    from optlab.objectives.derivatives import derivatives_of

    obj = OBJECTIVES["rosenbrock"]()
    solver = SOLVERS[solver_name](lr=1e-3, **options)
    compiled = derivatives_of(obj).compiled(obj.start())
    return program_for(solver, compiled, solver.init_carry(obj.start()), ("lr",))


@pytest.mark.parametrize("value, mode", [("", "auto"), ("auto", "auto"), ("ON", "on"), ("1", "on"), ("off", "off"),
                                         ("0", "off")])
def test_the_setting_reads_auto_on_and_off(monkeypatch, value, mode):
    monkeypatch.setenv("OPTLAB_JIT", value)
    assert jit.setting() == mode


def test_a_bad_setting_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("OPTLAB_JIT", "fast")
    with pytest.raises(ConfigError, match=r"^OPTLAB_JIT='fast' is not a lowering setting; allowed: auto, on, off$"):
        jit.use_jit(program_of(), 10)


def test_on_without_numba_is_a_one_line_error_and_off_never_compiles(monkeypatch):
    monkeypatch.setattr(native, "installed", lambda: "numba is not installed (pip install 'optlab[jit]')")
    monkeypatch.setenv("OPTLAB_JIT", "on")
    with pytest.raises(ConfigError, match=r"^OPTLAB_JIT=on but numba is not installed .*; allowed: "):
        jit.use_jit(program_of(), 10**9)
    monkeypatch.setenv("OPTLAB_JIT", "auto")
    assert not jit.use_jit(program_of(), 10**9, 1000)
    monkeypatch.setenv("OPTLAB_JIT", "off")
    assert not jit.use_jit(program_of(), 10**9, 1000)


def test_auto_compiles_when_the_steps_repay_it_and_takes_cached_code_always(cache, monkeypatch):
    monkeypatch.setenv("OPTLAB_JIT", "auto")
    program = program_of("adam")
    assert not jit.use_jit(program, 1000) and not jit.use_jit(program, 1000, 100)
    assert jit.use_jit(program, 10**7) and jit.use_jit(program, 10**6, 1000)
    name, source, env, args = jit.loop_source(program)
    cache.mkdir(parents=True)
    (cache / f"{native.digest(source, env, args)}.so").write_bytes(b"")  # as if compiled before
    assert jit.use_jit(program, 1000) and not jit.use_jit(program, 1000, 100)  # (the batch's loop is not)


def test_the_cache_key_follows_the_source_and_what_it_binds():
    program = program_of("gd")
    name, source, env, args = jit.loop_source(program)
    key = native.digest(source, env, args)
    assert key == native.digest(source, dict(env), args)
    assert key != native.digest(source.replace("k_end", "k_stop"), env, args)
    assert jit.loop_source(program_of("gd", schedule="step", decay_steps=7))[1] != source
    constants = [n for n, v in env.items() if isinstance(v, float) and n in source]
    rules = [n for n in env if n.startswith("_rule_") and n in source]
    assert constants and rules  # (NaN where no step is judged; the stopping rules' predicates)
    for name in constants:  # another value bound: another library
        assert key != native.digest(source, {**env, name: 0.5}, args)
    assert key != native.digest(source, {**env, rules[0]: lambda *a: False}, args)  # another rule's code
    with pytest.raises(native.NotCompilable, match="no machine-code form"):
        native.digest(source + "\nx = _odd\n", {**env, "_odd": object()}, args)


def test_a_loop_numba_cannot_compile_leaves_the_run_to_the_python_loop(monkeypatch):
    def refuse(*args):
        raise native.NotCompilable("numba cannot compile the generated loop: (a stand-in)")

    from optlab.engine import jit_many

    monkeypatch.setattr(jit, "compiled_loop", refuse)
    monkeypatch.setattr(jit_many, "compiled_loop", refuse)
    monkeypatch.setenv("OPTLAB_JIT", "on")
    obj, solver = OBJECTIVES["rosenbrock"](), SOLVERS["adam"](lr=1e-3)
    out, its = conftest.logged(obj, solver, max_iter=300)
    assert out.backend == "fused" and not out.jit
    together = conftest.batched(obj, solver, starts_of(obj), Stop(max_iter=300))
    assert {(o.backend, o.jit) for o, _ in together} == {("batched", False)}
    assert_same_runs((out, its), logged(obj, solver, lowering="generic", max_iter=300))


@pytest.mark.parametrize("run", [["solver=gd"], ["solver=lbfgs", "objective.dim=40"]], ids=["planned", "array code"])
def test_a_bad_setting_on_the_command_line_exits_2_in_one_line(tmp_path, run):
    done = conftest.run_cli(*run, "stop.max_iter=5", f"hydra.run.dir={tmp_path}", env={"OPTLAB_JIT": "fast"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == ("optlab: error: OPTLAB_JIT='fast' is not a lowering setting; "
                                                    "allowed: auto, on, off")


@pytest.mark.slow
def test_a_library_that_cannot_be_opened_is_built_again(cache):
    program = program_of("nesterov")
    name, source, env, args = jit.loop_source(program)
    cache.mkdir(parents=True)
    broken = cache / f"{native.digest(source, env, args)}.so"
    broken.write_bytes(b"\x7fELF cut short")
    fn, seconds = native.load(name, source, env, args)
    assert seconds > 0 and broken.stat().st_size > 1000 and native.COMPILED[-1][0] == "loop"


@pytest.mark.slow
def test_a_run_that_stops_early_keeps_its_rows_not_its_calls_block(monkeypatch):
    import collections
    import gc

    from optlab.engine import recycle
    from optlab.engine.run_set import InMemory, run_set

    monkeypatch.setenv("OPTLAB_JIT", "on")
    monkeypatch.setattr(recycle, "_free", collections.deque())
    monkeypatch.setattr(recycle, "_free_bytes", 0)
    sinks = InMemory()
    gc.disable()  # (the block must come back by reference counting alone)
    try:
        (out,) = run_set(OBJECTIVES["rosenbrock"](), SOLVERS["gd"](lr=1e-3), None, Stop(max_iter=10**6, gtol=1e-3),
                         sinks)  # (13,974 steps: whole chunks of the log, kept without a copy, in a 349,525-step call)
        rows = jit.CALL_BYTES // (8 * (len(jit.WRITTEN) + 2))
        assert out.jit and out.status == "converged" and 10_000 < out.iterations < rows // 4
        block = recycle.size_class(8 * (len(jit.WRITTEN) + 2) * rows)
        assert recycle.kept_bytes() == block  # back for reuse, while the run's rows live on
        table = sinks.tables[0]
        assert table.num_rows == out.iterations + 1 and table["iter"].to_pylist()[-1] == out.iterations
    finally:
        gc.enable()
