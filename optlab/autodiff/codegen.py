"""Array code: one numpy call per recorded operation, for any size, optionally with a batch axis.

:class:`Plan` picks the operations some outputs need and simplifies them exactly (folding
constants, dropping x * 1, x ** 1, --x); :class:`ArrayWriter` writes the statements of a
function computing them. With a batch axis every value that depends on the inputs gets a
trailing axis of length ``B``, so one call evaluates many points.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import core, shapes
from .core import Function, Variable
from .record import Graph, NotCompilable, toposort


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


def literal(value: float) -> str | None:
    """Python source for a finite float, exactly; None for inf and nan."""
    return repr(float(value)) if math.isfinite(value) else None


def shape_src(shape: tuple[int, ...], batch: bool = False) -> str:
    items = [str(n) for n in shape] + (["B"] if batch else [])
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class Source:
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
def buffer_slots(shapes: list[tuple[int, ...]]) -> Callable[[], list[np.ndarray]]:
    """``slots()``: the arrays of ``shapes`` kept for generated code, made on first use in each
    thread (two threads calling one function never share them)."""
    kept = threading.local()

    def slots() -> list[np.ndarray]:
        arrays = getattr(kept, "arrays", None)
        if arrays is None:
            arrays = kept.arrays = [np.empty(shape) for shape in shapes]
        return arrays

    return slots


class _Unbatchable(NotCompilable):
    pass


def normal_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """The axes of a reduction as sorted non-negative numbers (all of them for None)."""
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


def scatter_add(gy: np.ndarray, index: Any, shape: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
    """zeros(shape) with ``gy`` added at ``index``: the adjoint of indexing (into ``out`` if given)."""
    if out is None:
        gx = np.zeros(shape)
    else:
        gx = out
        gx.fill(0.0)
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


class ArrayWriter:
    """One numpy statement per recorded operation; with ``batched`` every value dependent on
    the inputs carries a trailing batch axis of length ``B``.

    With ``buffers``, elementwise results and scatters are written into arrays kept from one
    call to the next (``_b[k]``, :attr:`slots` gives their shapes), a slot freed by a value's
    last use serving the next value of its shape: no fresh memory, and so no page faults, per
    call (:func:`buffer_slots`); outputs are new arrays, which the caller keeps.
    """

    def __init__(self, plan: Plan, batched: bool, buffers: bool = False) -> None:
        self.plan, self.batched, self.buffers = plan, batched, buffers and not batched
        self.src = Source()
        self.names: dict[int, str] = {}
        self.fresh_array: dict[int, bool] = {}  # owns its memory (not a view, constant or input)
        self.slots: list[tuple[int, ...]] = []  # shapes of the kept arrays
        self.slot_of: dict[str, int] = {}  # name -> the slot holding its value
        self._free: dict[tuple[int, ...], list[int]] = {}

    def ref(self, var: Variable) -> str:
        var = self.plan.resolve(var)
        if id(var) in self.names:
            return self.names[id(var)]
        kind = self.plan.kind[id(var)]
        if kind[0] == "const":
            value = kind[1]
            lit = literal(value) if value.ndim == 0 else None
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
            reuse = next((x for x in dying if x.shape == out.shape and _writes_out(fn)
                          and (self.batched or out.ndim)), None)  # 0-d: numpy scalars
            if reuse is not None:
                name = self.names[id(reuse)]
                lines.append(f"{name} = {expr[:-1]}, out={name})")
            else:
                name = self.src.fresh()
                slot = self._slot(fn, out.shape) if fresh and out.ndim else None
                if slot is not None:
                    self.slot_of[name] = slot
                    expr = f"{expr[:-1]}, out=_b[{slot}])"
                lines.append(f"{name} = {expr}")
            self.names[id(out)] = name
            self.fresh_array[id(out)] = fresh
            for x in dying:
                if x is not reuse and self.names[id(x)] in self.slot_of:
                    self._free.setdefault(x.shape, []).append(self.slot_of[self.names[id(x)]])
            gone = {self.names[id(x)] for x in dying if x is not reuse and (self.batched or x.size >= 1024)}
            lines.extend(f"del {n}" for n in sorted(gone))
        outputs = [self.ref(v) for v in self.plan.outputs]
        self._release(outputs)
        return outputs

    def _release(self, outputs: list[str]) -> None:
        """Outputs get new arrays: the statement that first gives an output's name its kept
        array allocates instead (the caller may keep what it is given)."""
        for name in dict.fromkeys(outputs):
            slot = self.slot_of.pop(name, None)
            if slot is None:
                continue
            tail = f", out=_b[{slot}])"
            at = next(i for i, line in enumerate(self.src.lines) if line.startswith(f"{name} = ")
                      and line.endswith(tail))
            self.src.lines[at] = self.src.lines[at][: -len(tail)] + ")"
            if not any(f"_b[{slot}]" in line for line in self.src.lines):
                self.slots[slot] = (0,)  # (no other value uses it: nothing to keep)

    def _slot(self, fn: Function, shape: tuple[int, ...]) -> int | None:
        """A kept array for the fresh result of ``fn`` (one ufunc call or a scatter), if buffered."""
        if not self.buffers or not (_writes_out(fn) or type(fn) is shapes.ScatterAdd):
            return None
        free = self._free.get(shape)
        if free:
            return free.pop()
        self.slots.append(shape)
        return len(self.slots) - 1

    def is_batched(self, var: Variable) -> bool:
        return self.batched and self.plan.kind[id(self.plan.resolve(var))][0] != "const"

    def expr(self, fn: Function, a: list[str]) -> tuple[str, bool]:
        """Source computing ``fn`` from operand names, and whether the result owns its memory."""
        t = type(fn)
        if fn.lowering is not None:
            return f"{self.src.bind(fn.lowering.ufunc, 'u')}({', '.join(a)})", True
        if t is core.PowConst:
            return self.power(fn, a[0])
        x = fn.inputs[0]
        batched = self.is_batched(x)
        nd = x.ndim
        if t is shapes.Reshape:
            return f"np.reshape({a[0]}, {shape_src(fn.output().shape, batched)})", False
        if t is shapes.Transpose:
            if not batched:
                return f"np.transpose({a[0]})", False
            return f"np.transpose({a[0]}, {(*reversed(range(nd)), nd)})", False
        if t is shapes.Sum:
            axis = normal_axes(fn.axis, nd) if batched else fn.axis
            return f"np.sum({a[0]}, axis={axis!r}, keepdims={fn.keepdims})", True
        if t is shapes.BroadcastTo:
            return f"np.broadcast_to({a[0]}, {shape_src(fn.shape, batched)})", False
        if t is shapes.SumTo:
            summed = f"np.sum({a[0]}, axis={shapes.summed_axes(x.shape, fn.shape)!r}, keepdims=True)"
            return f"np.reshape({summed}, {shape_src(fn.shape, batched)})", True
        if t is shapes.GetItem:
            index = _batched_index(fn.index, nd) if batched else fn.index
            return f"{a[0]}[{self.src.bind(index, 'i')}]", not _basic_index(index)
        if t is shapes.ScatterAdd:
            index = _batched_index(fn.index, len(fn.shape)) if batched else fn.index
            return f"_scatter_add({a[0]}, {self.src.bind(index, 'i')}, {shape_src(fn.shape, batched)})", True
        if t is shapes.Concatenate:
            parts = [n if self.is_batched(v) or not self.batched else
                     f"np.broadcast_to({self.src.bind(np.asarray(v.data)[..., None])}, {shape_src(v.shape, True)})"
                     for n, v in zip(a, fn.inputs)]
            return f"np.concatenate(({', '.join(parts)},), axis={fn.axis % fn.output().ndim})", True
        if t is shapes.MatMul:
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


def _writes_out(fn: Function) -> bool:
    """Whether the array code of ``fn`` is one numpy ufunc call, which can write into an operand."""
    if type(fn) is core.PowConst:
        return True
    return fn.lowering is not None and isinstance(fn.lowering.ufunc, np.ufunc)
