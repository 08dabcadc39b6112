"""Fused array code (optlab.autodiff.fuse): chains of elementwise operations on vectors become one
loop each (machine code, with numba), with the bits of array code; array code keeps its
temporaries from one call to the next."""

from __future__ import annotations

import resource
import threading

import numpy as np
import pytest
from scipy.optimize import rosen_der, rosen_hess_prod

from optlab.autodiff import compile as C
from optlab.autodiff import fuse, native
from optlab.objectives import OBJECTIVES
from optlab.objectives.derivatives import derivatives_of

NAMES = ("value", "value_and_grad", "grad", "hvp")
CASES = [("rosenbrock", {"dim": 40}), ("rastrigin", {"dim": 40}), ("styblinski_tang", {"dim": 40}),
         ("ackley", {"dim": 40}), ("quadratic", {"dim": 40}), ("least_squares", {}), ("curve_fit", {}),
         ("powell_badly_scaled", {}), ("brown_badly_scaled", {})]


def code_of(name, options, mode, monkeypatch):
    """The array code of the objective's four functions under ``OPTLAB_JIT=mode``, and a point."""
    monkeypatch.setenv("OPTLAB_JIT", mode)
    obj = OBJECTIVES[name](**options)
    x = np.random.default_rng(3).uniform(-1.0, 2.0, obj.dim)
    compiled = C.Compiled(derivatives_of(obj).f, x)  # its own code, not the shared one
    return {n: compiled._get("array_" + n) for n in NAMES}, x


def results(code, x):
    v = np.random.default_rng(4).standard_normal(x.size)
    out = {n: code[n](x, v) if n == "hvp" else code[n](x) for n in NAMES}
    f, g = out.pop("value_and_grad")
    return {**out, "f": f, "g": g}


@pytest.mark.slow
@pytest.mark.parametrize("name, options", CASES, ids=[c[0] for c in CASES])
def test_fused_machine_code_gives_the_bits_of_array_code(name, options, monkeypatch):
    pytest.importorskip("numba")
    fused, x = code_of(name, options, "on", monkeypatch)
    plain, _ = code_of(name, options, "off", monkeypatch)
    for n in NAMES:
        assert "array code" in plain[n].__doc__
    mine, theirs = results(fused, x), results(plain, x)
    for key in theirs:
        np.testing.assert_array_equal(mine[key], theirs[key])
    if name == "rosenbrock":
        assert all("fused machine code" in fused[n].__doc__ for n in NAMES)


def test_rosenbrocks_gradient_is_one_loop_without_branches():
    obj = OBJECTIVES["rosenbrock"](dim=1000)
    compiled = derivatives_of(obj).compiled(obj.start())
    for name, args in (("grad", ["x"]), ("hvp", ["x", "v"])):
        writer = fuse.fused_writer(compiled.plan(name), args)
        ((_, source, _, kinds),) = writer.loops
        assert source.count("for j in range(") == 3 and "range(1, 999)" in source  # first, middle, last element
        assert " if " not in source and kinds == "i" * (1 + len(args))  # the output and the inputs, no constants


@pytest.mark.slow
def test_auto_mode_switches_to_machine_code_once_array_code_has_cost_its_compilation(monkeypatch, tmp_path):
    pytest.importorskip("numba")
    monkeypatch.setenv("OPTLAB_JIT_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "COMPILE_SECONDS", 0.0)  # the first call repays it
    code, x = code_of("rosenbrock", {"dim": 300}, "auto", monkeypatch)
    grad = code["grad"]
    assert isinstance(grad, fuse.Switching) and "array code" in grad.fn.__doc__
    first = grad(x)
    assert "fused machine code" in grad.fn.__doc__ and list(tmp_path.glob("*.so"))
    np.testing.assert_array_equal(grad(x), first)
    np.testing.assert_allclose(first, rosen_der(x), rtol=1e-13, atol=1e-10)
    again, _ = code_of("rosenbrock", {"dim": 300}, "auto", monkeypatch)
    assert "fused machine code" in again["grad"].__doc__  # compiled before: taken at once


def test_off_keeps_array_code_and_agrees_with_scipy(monkeypatch):
    code, x = code_of("rosenbrock", {"dim": 500}, "off", monkeypatch)
    v = np.random.default_rng(5).standard_normal(500)
    assert not isinstance(code["grad"], fuse.Switching)
    np.testing.assert_allclose(code["grad"](x), rosen_der(x), rtol=1e-13, atol=1e-10)
    np.testing.assert_allclose(code["hvp"](x, v), rosen_hess_prod(x, v), rtol=1e-13, atol=1e-10)


@pytest.mark.parametrize("mode", ["off", pytest.param("on", marks=pytest.mark.slow)])
def test_outputs_are_new_arrays_and_threads_keep_their_own_temporaries(mode, monkeypatch):
    if mode == "on":
        pytest.importorskip("numba")
    code, x = code_of("rosenbrock", {"dim": 2000}, mode, monkeypatch)
    grad, value_and_grad = code["grad"], code["value_and_grad"]
    first, second = grad(x), grad(x + 1.0)
    assert not np.shares_memory(first, second)
    np.testing.assert_allclose(first, rosen_der(x), rtol=1e-13, atol=1e-10)
    points = [x + 0.01 * i for i in range(8)]
    expected = [value_and_grad(p) for p in points]
    found: dict[int, list] = {}

    def work(i: int) -> None:
        found[i] = [value_and_grad(points[i]) for _ in range(30)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert all(f == expected[i][0] and np.array_equal(g, expected[i][1]) for f, g in found[i])


def test_array_code_makes_no_fresh_temporaries_per_call(monkeypatch):
    code, x = code_of("rosenbrock", {"dim": 100_000}, "off", monkeypatch)
    v = np.ones(100_000)
    for _ in range(3):
        code["hvp"](x, v)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        code["hvp"](x, v)  # (the result is dropped: its memory serves the next one)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
    assert faults < 50  # one fresh temporary of 800 kB would be 196 pages
