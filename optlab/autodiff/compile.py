"""Compiled derivatives: record a function once, replay the recording as straight-line code.

The define-by-run engine (:mod:`optlab.autodiff.core`) creates Python objects for every
operation at every call. Here ``f`` runs once per input shape with recording on, and its
backward pass is recorded too (``backward(create_graph=True)``), so the gradient and the
Hessian-vector product are themselves recorded graphs of engine operations. Each graph is
turned into the source of one flat Python function, in one of three forms:

* array code: one numpy call per recorded operation (any size);
* scalar code: the graph unrolled element by element on Python floats, for small inputs,
  where numpy's per-call overhead would dominate; any floating-point exception (a division
  by zero, an overflow in ``exp``, ``log`` of a negative number) hands that one call to the
  array code, so the results keep numpy's semantics (inf, nan);
* batched code: array code with a trailing batch axis, for many points in one call.

The eager engine is the reference. The replay performs the same floating-point operations
on the same values, so it agrees with it bit for bit except where the order of a sum may
differ (gradient contributions accumulated from three or more uses, reductions and
matrix products in scalar or batched code) and up to the last bit of some library
functions (``tanh``), which leaves differences of a few units in the last place.

A recording is only valid where it does not depend on the values of ``x``:

* ``abs``, ``maximum`` and ``minimum`` use a sign or a mask of their inputs in the backward
  pass; while recording, those factors are recorded as operations of their own
  (:class:`Sign`, :class:`AtLeast`), so the replay recomputes them;
* reading ``.data`` of a Variable inside ``f`` (a Python branch on a value, a mask made
  with numpy) is detected while recording;
* randomness or any other state is detected by recording twice and comparing.

In the last two cases :class:`NotCompilable` is raised and the caller stays on the eager
engine.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import core
from .core import Function, Variable

#: Errors of Python float arithmetic that numpy answers with inf or nan instead.
SCALAR_ERRORS = (ArithmeticError, ValueError)
SCALAR_MAX_INPUT = 16  # inputs up to this size get scalar code ...
SCALAR_MAX_ELEMENTS = 2000  # ... when the recorded values hold at most this many numbers


#: Whether objectives use compiled derivatives (``OPTLAB_EAGER=1`` turns them off); see :func:`eager`.
ENABLED = [os.environ.get("OPTLAB_EAGER", "") in ("", "0")]


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Objectives use the eager engine inside the block (the reference, e.g. for comparisons)."""
    old, ENABLED[0] = ENABLED[0], False
    try:
        yield
    finally:
        ENABLED[0] = old


class NotCompilable(Exception):
    """The function cannot be replayed from a recording (the message says why)."""


# -- recording ----------------------------------------------------------------------------------
class Sign(Function):
    """sign(x) as a recorded operation; its derivative is zero (a piecewise-constant factor)."""

    def forward(self, x): return np.sign(x)
    def backward(self, gy): return None


class AtLeast(Function):
    """1.0 where a >= b, else 0.0 (also where either is nan), as a recorded operation."""

    def forward(self, a, b): return np.greater_equal(a, b).astype(float)
    def backward(self, gy): return None, None


def _abs_backward(self: core.Abs, gy: Variable) -> Variable:
    return gy * Sign()(self.inputs[0])


def _select_backward(self: core.Maximum, gy: Variable, first: Variable) -> tuple[Variable, Variable]:
    return self.unbroadcast(gy * first, gy * (1.0 - first))


def _maximum_backward(self: core.Maximum, gy: Variable) -> tuple[Variable, Variable]:
    a, b = self.inputs
    return _select_backward(self, gy, AtLeast()(a, b))


def _minimum_backward(self: core.Minimum, gy: Variable) -> tuple[Variable, Variable]:
    a, b = self.inputs
    return _select_backward(self, gy, AtLeast()(b, a))


# Backward passes that read input values; while recording they are replaced (per recorded
# instance, never on the class) by versions computing the same numbers as recorded operations.
_RECORDED_BACKWARD = {core.Abs: _abs_backward, core.Maximum: _maximum_backward, core.Minimum: _minimum_backward}


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


def _record_value_dependent_backward(outputs: list[Variable]) -> None:
    for fn in toposort(outputs):
        patch = _RECORDED_BACKWARD.get(type(fn))
        if patch is not None and "backward" not in vars(fn):
            fn.backward = types.MethodType(patch, fn)


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
        _record_value_dependent_backward([y])
        y.backward(create_graph=True)
        g = xv.grad if xv.grad is not None else Variable(np.zeros_like(x))
        outputs = {"f": y, "g": g}
        inputs: tuple[Variable, ...] = (xv,)
        if hvp:
            vv = Variable(np.ones_like(x))
            xv.cleargrad()
            _record_value_dependent_backward([g])
            core.sum(g * vv).backward(create_graph=True)
            outputs["hv"] = xv.grad if xv.grad is not None else Variable(np.zeros_like(x))
            inputs = (xv, vv)
    if reads:
        raise NotCompilable(f"the function reads the values of its input (.data) in {reads[0]}")
    return Graph(inputs, outputs)


def _agree(replayed: Any, recorded: Any) -> bool:
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


# -- planning: which operations an output needs, with constants folded ----------------------------
class Plan:
    """The operations needed for some outputs, in order, after exact simplifications.

    ``kind[id(var)]`` is ``("input", i)``, ``("const", array)`` (values that depend on no
    input are folded) or ``("node", fn)``; a value equal to another one (x * 1, x ** 1,
    --x, ...) is replaced by it (:meth:`resolve`). Operations no output needs are dropped.
    """

    def __init__(self, graph: Graph, names: tuple[str, ...]) -> None:
        self.graph, self.names = graph, names
        self.kind: dict[int, tuple] = {id(v): ("input", i) for i, v in enumerate(graph.inputs)}
        self.same: dict[int, Variable] = {}
        nodes: list[Function] = []
        for fn in toposort([graph.outputs[n] for n in names]):
            for x in fn.inputs:
                if id(x) not in self.kind and id(x) not in self.same:
                    self.kind[id(x)] = ("const", np.asarray(x.data))
            out = fn.output()
            inputs = [self.resolve(x) for x in fn.inputs]
            if all(self.kind[id(x)][0] == "const" for x in inputs):
                self.kind[id(out)] = ("const", np.asarray(out.data))
                continue
            simpler = _simplify(fn, inputs, self.kind)
            if isinstance(simpler, Variable):
                self.same[id(out)] = self.resolve(simpler)
            elif simpler is not None:
                self.kind[id(out)] = ("const", simpler)
            else:
                self.kind[id(out)] = ("node", fn)
                nodes.append(fn)
        self.outputs = [self.resolve(graph.outputs[n]) for n in names]
        for v in self.outputs:
            self.kind.setdefault(id(v), ("const", np.asarray(v.data)))
        live = {id(v) for v in self.outputs}
        self.nodes = []
        for fn in reversed(nodes):
            if id(fn.output()) in live:
                self.nodes.append(fn)
                live.update(id(self.resolve(x)) for x in fn.inputs)
        self.nodes.reverse()

    def resolve(self, var: Variable) -> Variable:
        return self.same.get(id(var), var)

    def elements(self) -> int:
        return sum(fn.output().size for fn in self.nodes)


def _constant_equal_to(kind: tuple, number: float) -> bool:
    return kind[0] == "const" and bool(np.all(kind[1] == number))


def _simplify(fn: Function, inputs: list[Variable], kind: dict[int, tuple]) -> Variable | np.ndarray | None:
    """An input that ``fn`` returns unchanged, or its constant value, when that holds for every x."""
    t, out = type(fn), fn.output()
    if t is core.PowConst and np.ndim(fn.c) == 0:
        if float(fn.c) == 1.0:
            return inputs[0]
        if float(fn.c) == 0.0:  # x ** 0 is 1 for every x, nan and inf included
            return np.ones(out.shape)
    if t is core.Neg and inputs[0].creator is not None and type(inputs[0].creator) is core.Neg:
        return inputs[0].creator.inputs[0]
    if t in (core.Mul, core.Div, core.Sub, core.Add) and len(inputs) == 2:
        a, b = inputs
        unit = 0.0 if t in (core.Add, core.Sub) else 1.0
        # x * 1, x / 1 and x - 0 are x exactly; x + 0 only turns -0.0 into 0.0
        if _constant_equal_to(kind[id(b)], unit) and a.shape == out.shape:
            return a
        if t in (core.Mul, core.Add) and _constant_equal_to(kind[id(a)], unit) and b.shape == out.shape:
            return b
    return None


def _literal(value: float) -> str | None:
    """Python source for a finite float, exactly; None for inf and nan."""
    return repr(float(value)) if math.isfinite(value) else None


def _shape_src(shape: tuple[int, ...], batch: bool = False) -> str:
    items = [str(n) for n in shape] + (["B"] if batch else [])
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class _Source:
    """Lines of a generated function and the names it refers to."""

    def __init__(self, tag: str = "") -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {"np": np}
        self.count = 0
        self.tag = tag

    def fresh(self, prefix: str = "t") -> str:
        self.count += 1
        return f"_{prefix}{self.tag}{self.count}"

    def bind(self, value: Any, prefix: str = "k") -> str:
        name = self.fresh(prefix)
        self.env[name] = value
        return name

    def function(self, name: str, args: str, body: list[str], doc: str) -> Callable:
        src = f"def {name}({args}):\n    {doc!r}\n" + "".join(f"    {line}\n" for line in body)
        namespace = dict(self.env)
        exec(compile(src, f"<optlab compiled {name}>", "exec"), namespace)  # noqa: S102 - our own source
        fn = namespace[name]
        fn.source = src
        return fn


# -- array code ---------------------------------------------------------------------------------
class _Unbatchable(NotCompilable):
    pass


def _batched_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes))


def _batched_index(index: Any, ndim: int) -> tuple:
    """``index`` without Ellipsis, so that it leaves a trailing batch axis alone."""
    items = index if isinstance(index, tuple) else (index,)
    if any(item is Ellipsis for item in items):
        used = sum(1 for i in items if i is not None and i is not Ellipsis and not (
            isinstance(i, np.ndarray) and i.dtype == bool)) + sum(
            i.ndim for i in items if isinstance(i, np.ndarray) and i.dtype == bool)
        at = next(k for k, i in enumerate(items) if i is Ellipsis)
        items = items[:at] + (slice(None),) * (ndim - used) + items[at + 1:]
    return tuple(items)


def _basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def scatter_add(gy: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    """zeros(shape) with ``gy`` added at ``index``: the adjoint of indexing."""
    gx = np.zeros(shape)
    if _basic_index(index):  # no repeated positions: a plain in-place add
        gx[index] += gy
    else:
        np.add.at(gx, index, gy)
    return gx


def _einsum_spec(a_ndim: int, b_ndim: int, a_batched: bool, b_batched: bool) -> str:
    """einsum subscripts of matmul for 1-D/2-D operands, the batched ones with a trailing 'z'."""
    if a_ndim > 2 or b_ndim > 2:
        raise _Unbatchable("batched matmul of stacked matrices")
    a = "ik"[2 - a_ndim:] if a_ndim else ""
    b = "kj"[: b_ndim] if b_ndim else ""
    out = ("i" if a_ndim == 2 else "") + ("j" if b_ndim == 2 else "")
    return f"{a}{'z' if a_batched else ''},{b}{'z' if b_batched else ''}->{out}z"


class _ArrayWriter:
    """One numpy statement per recorded operation; with ``batched`` every value dependent on
    the inputs carries a trailing batch axis of length ``B``."""

    def __init__(self, plan: Plan, batched: bool) -> None:
        self.plan, self.batched = plan, batched
        self.src = _Source()
        self.names: dict[int, str] = {}
        self.fresh_array: dict[int, bool] = {}  # owns its memory (not a view, constant or input)

    def ref(self, var: Variable) -> str:
        var = self.plan.resolve(var)
        if id(var) in self.names:
            return self.names[id(var)]
        kind = self.plan.kind[id(var)]
        if kind[0] == "const":
            value = kind[1]
            lit = _literal(value) if value.ndim == 0 else None
            if lit is not None:
                name = lit
            else:
                name = self.src.bind(value.reshape(value.shape + (1,)) if self.batched and value.ndim else value)
            self.names[id(var)] = name
            self.fresh_array[id(var)] = False
            return name
        raise KeyError("value used before it is computed")

    def write(self, input_names: list[str]) -> list[str]:
        """Emit the statements; returns the names of the outputs.

        Large temporaries are released right after their last use, and an elementwise
        operation whose operand dies there writes into it (``out=``): many arrays alive at
        once would cost fresh memory, and its page faults, at every call.
        """
        for var, name in zip(self.plan.graph.inputs, input_names):
            self.names[id(var)] = name
            self.fresh_array[id(var)] = False
        nodes = self.plan.nodes
        last_use: dict[int, int] = {}
        for i, fn in enumerate(nodes):
            for x in fn.inputs:
                last_use[id(self.plan.resolve(x))] = i
        for v in self.plan.outputs:
            last_use[id(v)] = len(nodes)
        shared: set[int] = set()  # temporaries that a view refers to: never overwritten
        lines = self.src.lines
        for i, fn in enumerate(nodes):
            out = fn.output()
            inputs = [self.plan.resolve(x) for x in fn.inputs]
            args = [self.ref(x) for x in fn.inputs]
            expr, fresh = self.expr(fn, args)
            if expr in args and not fresh:  # an identity: reuse the operand
                self.names[id(out)] = expr
                self.fresh_array[id(out)] = self.fresh_array[id(inputs[args.index(expr)])]
                shared.update(id(x) for x in inputs)
                continue
            if not fresh:
                shared.update(id(x) for x in inputs)
            dying = [x for x in inputs if last_use.get(id(x)) == i and self.fresh_array.get(id(x))
                     and id(x) not in shared and self.plan.kind[id(x)][0] == "node"]
            reuse = next((x for x in dying if x.shape == out.shape and type(fn) in _ELEMENTWISE
                          and expr.startswith("np.") and (self.batched or out.ndim)), None)  # 0-d: numpy scalars
            if reuse is not None:
                name = self.names[id(reuse)]
                lines.append(f"{name} = {expr[:-1]}, out={name})")
            else:
                name = self.src.fresh()
                lines.append(f"{name} = {expr}")
            self.names[id(out)] = name
            self.fresh_array[id(out)] = fresh
            gone = {self.names[id(x)] for x in dying if x is not reuse and (self.batched or x.size >= 1024)}
            lines.extend(f"del {n}" for n in sorted(gone))
        return [self.ref(v) for v in self.plan.outputs]

    def is_batched(self, var: Variable) -> bool:
        return self.batched and self.plan.kind[id(self.plan.resolve(var))][0] != "const"

    def expr(self, fn: Function, a: list[str]) -> tuple[str, bool]:
        """Source computing ``fn`` from operand names, and whether the result owns its memory."""
        t = type(fn)
        simple = _ARRAY_UFUNC.get(t)
        if simple is not None:
            return f"{simple}({', '.join(a)})", True
        if t is core.PowConst:
            return self.power(fn, a[0])
        x = fn.inputs[0]
        batched = self.is_batched(x)
        nd = x.ndim
        if t is core.Reshape:
            return f"np.reshape({a[0]}, {_shape_src(fn.output().shape, batched)})", False
        if t is core.Transpose:
            if not batched:
                return f"np.transpose({a[0]})", False
            return f"np.transpose({a[0]}, {(*reversed(range(nd)), nd)})", False
        if t is core.Sum:
            axis = _batched_axes(fn.axis, nd) if batched else fn.axis
            return f"np.sum({a[0]}, axis={axis!r}, keepdims={fn.keepdims})", True
        if t is core.BroadcastTo:
            return f"np.broadcast_to({a[0]}, {_shape_src(fn.shape, batched)})", False
        if t is core.SumTo:
            lead = nd - len(fn.shape)
            axes = tuple(range(lead)) + tuple(
                lead + i for i, n in enumerate(fn.shape) if n == 1 and x.shape[lead + i] != 1)
            summed = f"np.sum({a[0]}, axis={axes!r}, keepdims=True)"
            return (f"np.reshape({summed}, {_shape_src(fn.shape, batched)})" if lead else summed), True
        if t is core.GetItem:
            index = _batched_index(fn.index, nd) if batched else fn.index
            return f"{a[0]}[{self.src.bind(index, 'i')}]", not _basic_index(index)
        if t is core.ScatterAdd:
            index = _batched_index(fn.index, len(fn.shape)) if batched else fn.index
            return f"_scatter_add({a[0]}, {self.src.bind(index, 'i')}, {_shape_src(fn.shape, batched)})", True
        if t is core.MatMul:
            if not self.batched:
                return f"np.matmul({a[0]}, {a[1]})", True
            b = fn.inputs[1]
            spec = _einsum_spec(x.ndim, b.ndim, batched, self.is_batched(b))
            ops = [n if self.is_batched(v) or v.ndim == 0 else self.src.bind(np.asarray(v.data))
                   for n, v in zip(a, fn.inputs)]
            return f"np.einsum({spec!r}, {ops[0]}, {ops[1]})", True
        if self.batched:
            raise _Unbatchable(f"no batched form of {t.__name__}")
        return f"{self.src.bind(fn, 'fn')}.forward({', '.join(a)})", True

    def power(self, fn: core.PowConst, a: str) -> tuple[str, bool]:
        c = fn.c
        if np.ndim(c) == 0:
            # numpy computes x**2, x**0.5, x**-1 and x**1 as square, sqrt, reciprocal and a copy
            special = {2: "np.square", 0.5: "np.sqrt", -1: "np.reciprocal"}
            if c == 1:
                return a, False
            if float(c) in special:
                return f"{special[float(c)]}({a})", True
            return f"np.power({a}, {float(c)!r})", True
        c = np.asarray(c, dtype=float)
        return f"np.power({a}, {self.src.bind(c.reshape(c.shape + (1,)) if self.batched and c.ndim else c)})", True


_ARRAY_UFUNC = {
    core.Add: "np.add", core.Sub: "np.subtract", core.Mul: "np.multiply", core.Div: "np.divide",
    core.Pow: "np.power", core.Neg: "np.negative", core.Sin: "np.sin", core.Cos: "np.cos",
    core.Tan: "np.tan", core.Exp: "np.exp", core.Log: "np.log", core.Sqrt: "np.sqrt",
    core.Tanh: "np.tanh", core.Abs: "np.abs", core.Maximum: "np.maximum", core.Minimum: "np.minimum",
    Sign: "np.sign", AtLeast: "_at_least",
}


# operations whose array code is one numpy ufunc call, which can write into an operand
_ELEMENTWISE = {t for t in _ARRAY_UFUNC if t is not AtLeast} | {core.PowConst}


def _at_least(a: Any, b: Any) -> np.ndarray:
    return np.greater_equal(a, b).astype(float)


def _array_out(writer: _ArrayWriter, var: Variable, name: str, as_float: bool) -> str:
    if as_float:
        return f"float({name})"
    return name if writer.fresh_array.get(id(var)) else f"np.array({name}, dtype=float)"


# -- scalar code --------------------------------------------------------------------------------
class _NotScalar(NotCompilable):
    pass


Atom = str | float  # a local name or a literal


class _ScalarWriter:
    """The graph unrolled on Python floats: every value is an object array of atoms."""

    def __init__(self, plan: Plan, src: _Source, prefix: str = "s", vector: bool = False) -> None:
        self.plan, self.src, self.prefix = plan, src, prefix
        self.templates = {**_SCALAR_TEMPLATES, **_VECTOR_TEMPLATES} if vector else _SCALAR_TEMPLATES
        self.statements: list[tuple[str, str, tuple[str, ...]]] = []  # (target, expression, names used)
        self.common: dict[str, str] = {}
        self.values: dict[int, np.ndarray] = {}
        self.negated: dict[str, Atom] = {}  # name -> atom it is the negation of

    # atoms
    def text(self, atom: Atom) -> str:
        if isinstance(atom, str):
            return atom
        lit = _literal(atom)
        return lit if lit is not None else self.src.bind(float(atom), "k")

    def emit(self, template: str, fold: Callable | None, *atoms: Atom) -> Atom:
        if fold is not None and all(isinstance(a, float) for a in atoms):
            with np.errstate(all="ignore"):
                return float(fold(*(np.float64(a) for a in atoms)))
        expr = template.format(*(self.text(a) for a in atoms))
        if expr in self.common:
            return self.common[expr]
        name = self.src.fresh(self.prefix)
        self.statements.append((name, expr, tuple(a for a in atoms if isinstance(a, str))))
        self.common[expr] = name
        return name

    # Rewrites below are exact in IEEE arithmetic: a + (-b) is a - b, (-a) * b is -(a * b), and
    # rounding is symmetric, so signs move freely; x + 0.0 -> x only loses the sign of a zero.
    def neg(self, a: Atom) -> Atom:
        if isinstance(a, float):
            return -a
        if a in self.negated:
            return self.negated[a]
        name = self.emit("-{0}", None, a)
        self.negated[name] = a
        return name

    def add(self, a: Atom, b: Atom) -> Atom:
        if isinstance(b, float) and b == 0.0:
            return a
        if isinstance(a, float) and a == 0.0:
            return b
        if b in self.negated:
            return self.sub(a, self.negated[b])
        if a in self.negated:
            return self.sub(b, self.negated[a])
        return self.emit("{0} + {1}", np.add, a, b)

    def sub(self, a: Atom, b: Atom) -> Atom:
        if isinstance(b, float) and b == 0.0:
            return a
        if b in self.negated:
            return self.add(a, self.negated[b])
        return self.emit("{0} - {1}", np.subtract, a, b)

    def mul(self, a: Atom, b: Atom) -> Atom:
        for p, q in ((a, b), (b, a)):
            if isinstance(q, float) and q == 1.0:
                return p
            if isinstance(q, float) and q == -1.0:
                return self.neg(p)
            if p in self.negated:
                return self.neg(self.mul(self.negated[p], q))
        return self.emit("{0} * {1}", np.multiply, a, b)

    def div(self, a: Atom, b: Atom) -> Atom:
        if isinstance(b, float) and b == 1.0:
            return a
        if a in self.negated:
            return self.neg(self.div(self.negated[a], b))
        if b in self.negated:
            return self.neg(self.div(a, self.negated[b]))
        return self.emit("{0} / {1}", np.divide, a, b)

    def total(self, atoms: Any) -> Atom:
        acc: Atom = 0.0
        for i, atom in enumerate(np.asarray(atoms, dtype=object).ravel()):
            acc = atom if i == 0 else self.add(acc, atom)
        return acc

    # values
    def atoms_of(self, var: Variable) -> np.ndarray:
        var = self.plan.resolve(var)
        if id(var) in self.values:
            return self.values[id(var)]
        kind = self.plan.kind[id(var)]
        if kind[0] != "const":
            raise KeyError("value used before it is computed")
        arr = np.empty(kind[1].shape, dtype=object)
        for pos, value in np.ndenumerate(kind[1]):
            arr[pos] = float(value)
        self.values[id(var)] = arr
        return arr

    def write(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for var, atoms in zip(self.plan.graph.inputs, inputs):
            self.values[id(var)] = atoms
        for fn in self.plan.nodes:
            args = [self.atoms_of(x) for x in fn.inputs]
            out = self.op(fn, args)
            out = np.asarray(out, dtype=object) if not isinstance(out, np.ndarray) else out
            if out.shape != fn.output().shape:
                raise _NotScalar(f"{type(fn).__name__} gave shape {out.shape}, recorded {fn.output().shape}")
            self.values[id(fn.output())] = out
        return [self.atoms_of(v) for v in self.plan.outputs]

    def elementwise(self, apply: Callable[..., Atom], *arrays: np.ndarray) -> np.ndarray:
        arrays = np.broadcast_arrays(*arrays)
        out = np.empty(arrays[0].shape, dtype=object)
        for pos in np.ndindex(out.shape):
            out[pos] = apply(*(a[pos] for a in arrays))
        return out

    def op(self, fn: Function, a: list[np.ndarray]) -> np.ndarray:  # noqa: C901 - one branch per operation
        t = type(fn)
        binary = {core.Add: self.add, core.Sub: self.sub, core.Mul: self.mul, core.Div: self.div}.get(t)
        if binary is not None:
            return self.elementwise(binary, a[0], a[1])
        if t is core.Neg:
            return self.elementwise(self.neg, a[0])
        template = self.templates.get(t)
        if template is not None:
            text, fold = template
            return self.elementwise(lambda *xs: self.emit(text, fold, *xs), *a)
        if t is core.PowConst:
            exponents = np.empty(np.shape(fn.c), dtype=object)
            for pos, c in np.ndenumerate(np.asarray(fn.c, dtype=float)):
                exponents[pos] = float(c)
            return self.elementwise(self.power, a[0], exponents)
        if t is core.Reshape:
            return a[0].reshape(fn.shape)
        if t is core.Transpose:
            return np.transpose(a[0])
        if t is core.BroadcastTo:
            return np.broadcast_to(a[0], fn.shape).copy()
        if t is core.Sum:
            return self.reduce(a[0], fn.axis, fn.keepdims)
        if t is core.SumTo:
            x = a[0]
            lead = x.ndim - len(fn.shape)
            axes = tuple(range(lead)) + tuple(
                lead + i for i, n in enumerate(fn.shape) if n == 1 and x.shape[lead + i] != 1)
            return self.reduce(x, axes, True).reshape(fn.shape)
        if t is core.GetItem:
            picked = a[0][fn.index]
            return picked if isinstance(picked, np.ndarray) else np.array(picked, dtype=object)
        if t is core.ScatterAdd:
            return self.scatter(a[0], fn.index, fn.shape)
        if t is core.MatMul:
            return self.matmul(a[0], a[1])
        raise _NotScalar(f"no scalar form of {t.__name__}")

    def power(self, x: Atom, c: float) -> Atom:
        if c == 1.0:
            return x
        if c == 2.0:  # numpy squares exactly (x * x), as does this
            return self.emit("{0} * {0}", np.square, x)
        if c == 0.5:
            return self.emit("sqrt({0})", np.sqrt, x)
        if c == -1.0:
            return self.emit("1.0 / {0}", np.reciprocal, x)
        return self.emit("pow({0}, " + repr(c) + ")", lambda v: np.power(v, c), x)

    def reduce(self, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
        axes = tuple(range(x.ndim)) if axis is None else _batched_axes(axis, x.ndim)
        rest = tuple(i for i in range(x.ndim) if i not in axes)
        moved = np.transpose(x, rest + axes)
        kept = tuple(x.shape[i] for i in rest)
        flat = moved.reshape(kept + (-1,))
        out = np.empty(kept, dtype=object)
        for pos in np.ndindex(kept):
            out[pos] = self.total(flat[pos])
        if keepdims:
            out = out.reshape(tuple(1 if i in axes else n for i, n in enumerate(x.shape)))
        return out

    def scatter(self, gy: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        positions = np.arange(size).reshape(shape)[index]
        positions, gy = np.broadcast_arrays(np.asarray(positions), gy)
        acc: list[Atom] = [0.0] * size
        for p, atom in zip(positions.ravel(), gy.ravel()):
            acc[p] = self.add(acc[p], atom)
        out = np.empty(size, dtype=object)
        out[:] = acc
        return out.reshape(shape)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim > 2 or b.ndim > 2 or a.ndim == 0 or b.ndim == 0:
            raise _NotScalar("matmul of stacked matrices")
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        out = np.empty((a2.shape[0], b2.shape[1]), dtype=object)
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = self.total([self.mul(a2[i, k], b2[k, j]) for k in range(a2.shape[1])])
        shape = tuple(n for n, keep in ((out.shape[0], a.ndim == 2), (out.shape[1], b.ndim == 2)) if keep)
        return out.reshape(shape)

    def body(self, outputs: list[np.ndarray]) -> list[str]:
        """The statements that the outputs need, in order; a value used once is written in
        place (same operations, fewer local variables)."""
        out_names = {a for arr in outputs for a in arr.ravel() if isinstance(a, str)}
        live = set(out_names)
        kept = []
        for target, expr, used in reversed(self.statements):
            if target in live:
                kept.append([target, expr])
                live.update(used)
        kept.reverse()
        uses: dict[str, int] = {}
        for _, expr in kept:
            for name in _NAME.findall(expr):
                uses[name] = uses.get(name, 0) + 1
        inline = {t: e for t, e in kept if uses.get(t) == 1 and t not in out_names}
        lines = []
        for target, expr in kept:
            if target in inline:
                continue
            while True:
                expanded = _NAME.sub(lambda m: f"({inline[m.group()]})" if m.group() in inline else m.group(), expr)
                if expanded == expr:
                    break
                expr = expanded
            lines.append(f"{target} = {expr}")
        return lines


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_SCALAR_TEMPLATES: dict[type, tuple[str, Callable]] = {
    core.Pow: ("pow({0}, {1})", np.power),
    core.Sin: ("sin({0})", np.sin), core.Cos: ("cos({0})", np.cos), core.Tan: ("tan({0})", np.tan),
    core.Exp: ("exp({0})", np.exp), core.Log: ("log({0})", np.log), core.Sqrt: ("sqrt({0})", np.sqrt),
    core.Tanh: ("tanh({0})", np.tanh), core.Abs: ("abs({0})", np.abs),
    core.Maximum: ("({0} if {0} >= {1} or {0} != {0} else {1})", np.maximum),
    core.Minimum: ("({0} if {0} <= {1} or {0} != {0} else {1})", np.minimum),
    Sign: ("(1.0 if {0} > 0.0 else -1.0 if {0} < 0.0 else {0})", np.sign),
    AtLeast: ("(1.0 if {0} >= {1} else 0.0)", _at_least),
}
# The same code on numpy arrays (one element per point of a batch): conditionals become ufuncs.
_VECTOR_TEMPLATES: dict[type, tuple[str, Callable]] = {
    core.Maximum: ("_maximum({0}, {1})", np.maximum), core.Minimum: ("_minimum({0}, {1})", np.minimum),
    Sign: ("_sign({0})", np.sign), AtLeast: ("_at_least({0}, {1})", _at_least),
}
_VECTOR_ENV = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
               "tanh": np.tanh, "pow": np.power, "_maximum": np.maximum, "_minimum": np.minimum,
               "_sign": np.sign, "_at_least": _at_least}
_SCALAR_ENV = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log,
               "sqrt": math.sqrt, "tanh": math.tanh, "pow": math.pow}


def input_atoms(names: list[str], shape: tuple[int, ...]) -> np.ndarray:
    arr = np.empty(len(names), dtype=object)
    arr[:] = names
    return arr.reshape(shape)


def _guarded(statements: list[str], fallback: str) -> list[str]:
    """``statements`` inside try: a Python float error hands the call to array code (inf, nan)."""
    if not statements:
        return []
    return ["try:", *(f"    {s}" for s in statements), "except _errors:", f"    return {fallback}"]


def _pack(atoms: np.ndarray, text: Callable[[Atom], str]) -> str:
    """Source of a numpy array holding ``atoms``."""
    if atoms.ndim == 0:
        return f"_array({text(atoms[()])})"
    items = ", ".join(text(a) for a in atoms.ravel())
    return f"_array([{items}])" + ("" if atoms.ndim == 1 else f".reshape({atoms.shape})")


# -- the compiled derivatives of one function at one input shape ---------------------------------------
class Compiled:
    """Value, gradient, Hessian-vector product and Hessian of ``f`` for inputs of one shape.

    Built from recordings of ``f`` at ``x`` (raises :class:`NotCompilable`). The hvp and
    Hessian recordings and the batched code are made on first use.
    """

    def __init__(self, f: Callable[[Variable], Any], x: np.ndarray) -> None:
        self.f = f
        self.x = np.array(x, dtype=float)
        self.shape = self.x.shape
        self.size = self.x.size
        self.graph = record(f, self.x)
        self._second: Graph | None = None
        self._made: dict[str, Callable] = {}
        self.scalar = self.size <= SCALAR_MAX_INPUT and Plan(self.graph, ("f", "g")).elements() <= SCALAR_MAX_ELEMENTS
        self._check(record(f, self.x))

    # Entry points. The first call of each builds its code, which then replaces the method on
    # this instance, so later calls go straight to the generated function.
    def value(self, x: np.ndarray) -> float:
        return self._install("value")(x)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self._install("value_and_grad")(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self._install("grad")(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self._get("hvp")(x, np.asarray(v, dtype=float))

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return self._install("hessian")(x)

    def batched(self, name: str) -> Callable:
        """``value``, ``value_and_grad``, ``grad`` or ``hvp`` on inputs of shape ``shape + (B,)``.

        Values come back with shape ``(B,)``, gradients and products with ``shape + (B,)``.
        Raises :class:`NotCompilable` if an operation has no batched form.
        """
        return self._get("batched_" + name)

    # building
    def _install(self, name: str) -> Callable:
        fn = self.__dict__[name] = self._get(name)
        return fn

    def _get(self, name: str) -> Callable:
        fn = self._made.get(name)
        if fn is None:
            try:
                fn = self._make(name)
            except NotCompilable:
                if name not in _EAGER:
                    raise
                fn = _EAGER[name](self.f)  # second derivatives stay eager; first ones still compiled
            self._made[name] = fn
        return fn

    def second(self) -> Graph:
        """The recording with the Hessian-vector product (checked like the first one)."""
        if self._second is None:
            graph = record(self.f, self.x, hvp=True)
            self._check(graph)
            self._second = graph
            hv = self._get("array_hvp")(self.x, np.ones_like(self.x))
            if not _agree(hv, graph.outputs["hv"].data):
                self._second = None
                raise NotCompilable("the replayed Hessian-vector product differs from the recording")
        return self._second

    def _check(self, graph: Graph) -> None:
        """Replay at the recorded point and compare with an independent recording ``graph``."""
        f, g = self._get("value_and_grad")(self.x)
        if not (_agree(f, graph.outputs["f"].data) and _agree(g, graph.outputs["g"].data)):
            raise NotCompilable("a second recording at the same point gives other values "
                                "(f draws random numbers or keeps state)")

    def _make(self, name: str) -> Callable:
        if name.startswith("batched_"):
            return self._array_function(name[len("batched_"):], batched=True)
        if name.startswith("array_"):
            return self._array_function(name[len("array_"):], batched=False)
        if name == "hessian":
            return self._hessian_function()
        if self.scalar:
            array_name = "array_" + name
            try:
                return self._scalar_function(name, lambda *args: self._get(array_name)(*args))
            except _NotScalar:
                self.scalar = False
        return self._get("array_" + name)

    def _outputs(self, name: str) -> tuple[Graph, tuple[str, ...]]:
        return {
            "value": (self.graph, ("f",)),
            "value_and_grad": (self.graph, ("f", "g")),
            "grad": (self.graph, ("g",)),
            "hvp": (self.second(), ("hv",)) if name == "hvp" else (None, ()),
        }[name]

    def _array_function(self, name: str, batched: bool) -> Callable:
        graph, outs = self._outputs(name)
        plan = Plan(graph, outs)
        writer = _ArrayWriter(plan, batched)
        args = ["x", "v"][: len(graph.inputs)]
        names = writer.write(args)
        src = writer.src
        src.env.update(_scatter_add=scatter_add, _at_least=_at_least)
        if batched:
            body = ["B = x.shape[-1]"] + src.lines
            results = [n if plan.kind[id(v)][0] != "const" else
                       f"np.broadcast_to({n}, {_shape_src(v.shape, True)}).copy()"
                       for n, v in zip(names, plan.outputs)]
            results = [r if writer.fresh_array.get(id(v)) or "broadcast_to" in r else f"np.array({r}, dtype=float)"
                       for r, v in zip(results, plan.outputs)]
        else:
            body = list(src.lines)
            results = [_array_out(writer, v, n, as_float=(o == "f")) for n, v, o in zip(names, plan.outputs, outs)]
        body.append("return " + ", ".join(results))
        return src.function(name, ", ".join(args), body, f"{name} replayed from a recording (array code)")

    def _scalar_function(self, name: str, fallback: Callable) -> Callable:
        graph, outs = self._outputs(name)
        plan = Plan(graph, outs)
        src = _Source()
        src.env.update(_SCALAR_ENV, _array=np.array, _errors=SCALAR_ERRORS, _fallback=fallback)
        writer = _ScalarWriter(plan, src)
        arg_names = ["x", "v"][: len(graph.inputs)]
        unpack, atoms = [], []
        for arg in arg_names:
            names = [f"{arg}_{i}" for i in range(self.size)]
            atoms.append(input_atoms(names, self.shape))
            flat = arg if len(self.shape) == 1 else f"{arg}.ravel()"
            unpack.append(f"{', '.join(names)}, = {flat}.tolist()")
        outputs = writer.write(atoms)
        results = [writer.text(o[()]) if n == "f" else _pack(o, writer.text) for o, n in zip(outputs, outs)]
        body = unpack + _guarded(writer.body(outputs), f"_fallback({', '.join(arg_names)})") + [
            "return " + ", ".join(results)]
        return src.function(name, ", ".join(arg_names), body, f"{name} replayed from a recording (scalar code)")

    def scalar_block(self, name: str, inputs: list[list[str]], tag: str, vector: bool = False
                     ) -> tuple[list[str], list[list[str]], dict]:
        """Scalar code of ``name`` (``value_and_grad``, ``grad``, ``value``, ``hvp``) for inlining.

        ``inputs`` names the flat elements of each input (x, and v for hvp). Returns the
        statements, the source of each output's flat elements (a literal where it is
        constant), and the names the statements use (``tag`` keeps them apart from the
        caller's). Python float errors (:data:`SCALAR_ERRORS`) may be raised by the
        statements. With ``vector`` the code works on numpy arrays, one element per point
        (numpy's inf and nan instead of errors). Raises :class:`NotCompilable` if there is
        no scalar form.
        """
        if not self.scalar:
            raise NotCompilable("no scalar code for this function")
        graph, outs = self._outputs(name)
        src = _Source(tag)
        src.env.update(_VECTOR_ENV if vector else _SCALAR_ENV)
        writer = _ScalarWriter(Plan(graph, outs), src, vector=vector)
        outputs = writer.write([input_atoms(names, self.shape) for names in inputs])
        return writer.body(outputs), [[writer.text(a) for a in o.ravel()] for o in outputs], src.env

    def _hessian_function(self) -> Callable:
        n = self.size
        if self.scalar:
            try:
                return self._scalar_hessian()
            except _NotScalar:
                pass
        hvp = self._get("array_hvp")
        eye = np.eye(n)
        try:
            batched = self.batched("hvp") if n * n <= 4_000_000 else None
        except NotCompilable:
            batched = None
        shape = self.shape

        def hessian(x: np.ndarray) -> np.ndarray:
            """Rows H e_i; with batched code all at once, the batch axis along the columns."""
            x = np.asarray(x, dtype=float)
            if batched is not None:
                xs = np.broadcast_to(x.reshape(shape + (1,)), shape + (n,))
                cols = batched(xs, eye.reshape(shape + (n,)))
                return np.ascontiguousarray(cols.reshape(n, n).T).reshape(shape + shape)
            rows = np.empty((n, n))
            for i in range(n):
                rows[i] = hvp(x, eye[i].reshape(shape)).reshape(-1)
            return rows.reshape(shape + shape)

        return hessian

    def _scalar_hessian(self) -> Callable:
        graph = self.second()
        plan = Plan(graph, ("hv",))
        src = _Source()
        fallback = self._hessian_fallback()
        src.env.update(_SCALAR_ENV, _array=np.array, _errors=SCALAR_ERRORS, _fallback=fallback)
        writer = _ScalarWriter(plan, src)
        names = [f"x_{i}" for i in range(self.size)]
        x_atoms = input_atoms(names, self.shape)
        rows = []
        for i in range(self.size):
            unit = np.zeros(self.size, dtype=object)
            unit[:] = [1.0 if j == i else 0.0 for j in range(self.size)]
            writer.values.clear()
            rows.append(writer.write([x_atoms, unit.reshape(self.shape)])[0].ravel())
        table = np.array(rows, dtype=object).reshape(self.shape + self.shape)
        flat = "x" if len(self.shape) == 1 else "x.ravel()"
        body = [f"{', '.join(names)}, = {flat}.tolist()"] + _guarded(writer.body([table]), "_fallback(x)") + [
            "return " + _pack(table, writer.text)]
        return src.function("hessian", "x", body, "Hessian replayed from a recording (scalar code)")

    def _hessian_fallback(self) -> Callable:
        array_hvp = self._get("array_hvp")
        eye = np.eye(self.size)
        shape = self.shape

        def hessian(x: np.ndarray) -> np.ndarray:
            rows = [array_hvp(x, eye[i].reshape(shape)).reshape(-1) for i in range(eye.shape[0])]
            return np.array(rows).reshape(shape + shape)

        return hessian


def _eager_hvp(f: Callable) -> Callable:
    from .functional import hvp

    return hvp(f)


def _eager_hessian(f: Callable) -> Callable:
    from .functional import hessian

    return hessian(f)


_EAGER = {"hvp": _eager_hvp, "hessian": _eager_hessian}


def compile_function(f: Callable[[Variable], Any], x: np.ndarray) -> Compiled:
    """Compiled derivatives of scalar ``f`` for inputs shaped like ``x`` (raises :class:`NotCompilable`)."""
    return Compiled(f, x)
