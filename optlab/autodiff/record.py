"""Recording a function with the define-by-run engine, for replay by :mod:`optlab.autodiff.compile`.

``f`` runs once with recording on and its backward pass is recorded too
(``backward(create_graph=True)``), so the value, the gradient and the Hessian-vector
product are graphs of engine operations. A recording is only valid where it does not
depend on the values of ``x``:

* ``abs``, ``maximum`` and ``minimum`` use a sign or a mask of their inputs in the backward
  pass, recorded as operations of their own (``Sign``, ``AtLeast``), so a replay recomputes them;
* reading ``.data`` of a Variable inside ``f`` (a Python branch on a value, a mask made
  with numpy) is detected while recording (:class:`NotCompilable`);
* randomness or other state shows when a second recording gives other values
  (:func:`agree`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import core
from .core import Function, Variable
from .shapes import sum as total


class NotCompilable(Exception):
    """The function cannot be replayed from a recording (the message says why)."""


def toposort(outputs: list[Variable]) -> list[Function]:
    """The functions that ``outputs`` depend on, each after all of its inputs' creators."""
    order: list[Function] = []
    done: set[int] = set()
    stack = [(v.creator, False) for v in reversed(outputs) if v.creator is not None]
    while stack:
        fn, expanded = stack.pop()
        if id(fn) in done:
            continue
        if expanded:
            done.add(id(fn))
            order.append(fn)
            continue
        stack.append((fn, True))
        for x in reversed(fn.inputs):
            if x.creator is not None and id(x.creator) not in done:
                stack.append((x.creator, False))
    return order


def _code_objects(*functions: Any) -> set[types.CodeType]:
    found: set[types.CodeType] = set()

    def add(code: types.CodeType) -> None:
        found.add(code)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                add(const)

    for fn in functions:
        add(fn.__code__)
    return found


# Engine code that reads ``.data`` only to compute recorded operations or to learn shapes.
_ENGINE_READS = _code_objects(
    Function.__call__, Variable.backward, Variable.__len__,
    Variable.shape.fget, Variable.ndim.fget, Variable.size.fget)
_WATCH_LOCK = threading.RLock()


@contextlib.contextmanager
def _watch_data_reads() -> Iterator[list[str]]:
    """Note every read of ``Variable.data`` made outside the engine while the block runs.

    ``data`` is a plain instance attribute; for the duration of the block a property on the
    class intercepts it (values stay in the instance dict, so nothing changes afterwards).
    """
    reads: list[str] = []

    def get(var: Variable) -> np.ndarray:
        caller = sys._getframe(1).f_code
        if caller not in _ENGINE_READS:
            reads.append(f"{caller.co_name} ({caller.co_filename}:{sys._getframe(1).f_lineno})")
        return var.__dict__["data"]

    def put(var: Variable, value: np.ndarray) -> None:
        var.__dict__["data"] = value

    with _WATCH_LOCK:
        Variable.data = property(get, put)
        try:
            yield reads
        finally:
            del Variable.data


class Graph:
    """A recording: input Variables and named output Variables of one call."""

    def __init__(self, inputs: tuple[Variable, ...], outputs: dict[str, Variable]) -> None:
        self.inputs, self.outputs = inputs, outputs


def record(f: Callable[[Variable], Any], x: np.ndarray, hvp: bool = False) -> Graph:
    """Run ``f`` at ``x`` recording the value, the gradient and (``hvp``) H(x) v.

    Outputs: ``f`` (shape ``()``), ``g`` (shape of x) and ``hv`` (shape of x, with a second
    input ``v``). Raises :class:`NotCompilable` if ``f`` reads input values.
    """
    x = np.array(x, dtype=float)
    with _watch_data_reads() as reads, core.enable_grad(True), np.errstate(all="ignore"):
        xv = Variable(x.copy())
        y = core.as_variable(f(xv))
        if y.size != 1:
            raise ValueError(f"the function must return a scalar, got shape {y.shape}")
        y = y.reshape(())
        y.backward(create_graph=True)
        g = xv.grad if xv.grad is not None else Variable(np.zeros_like(x))
        outputs = {"f": y, "g": g}
        inputs: tuple[Variable, ...] = (xv,)
        if hvp:
            vv = Variable(np.ones_like(x))
            xv.cleargrad()
            total(g * vv).backward(create_graph=True)
            outputs["hv"] = xv.grad if xv.grad is not None else Variable(np.zeros_like(x))
            inputs = (xv, vv)
    if reads:
        raise NotCompilable(f"the function reads the values of its input (.data) in {reads[0]}")
    return Graph(inputs, outputs)


def trace(fn: Callable[..., Any], inputs: list[np.ndarray]) -> Graph:
    """Run ``fn`` on Variables holding ``inputs``, recording its outputs (a sequence of
    Variables or numbers, named by position); raises :class:`NotCompilable` if it reads values."""
    with _watch_data_reads() as reads, core.enable_grad(True), np.errstate(all="ignore"):
        variables = tuple(Variable(np.array(a, dtype=float)) for a in inputs)
        outputs = {str(i): core.as_variable(v) for i, v in enumerate(fn(*variables))}
    if reads:
        raise NotCompilable(f"the step reads the values of its input (.data) in {reads[0]}")
    return Graph(variables, outputs)


def agree(replayed: Any, recorded: Any) -> bool:
    """Whether a replayed output matches the same output of an independent recording.

    Both sum gradient contributions in possibly different orders, so they may differ by
    rounding; anything beyond that means the recording does not describe ``f`` (it draws
    random numbers or keeps state) or the replay is wrong.
    """
    a, b = np.asarray(replayed, dtype=float), np.asarray(recorded, dtype=float)
    if a.shape != b.shape:
        return False
    finite = np.isfinite(b)
    if not np.array_equal(np.isfinite(a), finite) or not np.array_equal(a[~finite], b[~finite], equal_nan=True):
        return False
    scale = float(np.max(np.abs(b[finite]), initial=1.0))
    return bool(np.all(np.abs(a[finite] - b[finite]) <= 1e-9 * scale))
