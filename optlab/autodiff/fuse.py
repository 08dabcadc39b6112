"""Fused array code: chains of elementwise operations on vectors in one loop each, as machine code.

Array code (:class:`~optlab.autodiff.codegen.ArrayWriter`) makes one pass over memory per
operation: a gradient of an n-dimensional sum is a dozen passes. Here the operations on
vectors whose bits numpy computes exactly (each :class:`~optlab.autodiff.core.Lowering` with
``exact``: arithmetic, sqrt, comparisons, x**2, ...), basic slices, their adjoints (a slice
scattered into zeros) and numbers broadcast to vectors are *fused*: a vector that leaves such
a chain (an output, or the operand of another operation) is computed by one loop over its
elements, which reads the vectors the chain starts from and recomputes what it needs at
neighbouring positions (``x[i + 1] - x[i]**2`` for elements i and i - 1) instead of storing it.
Everything else (library functions such as exp, whose numpy versions differ from the C
library's in the last bit; sums; matrix products) stays a numpy statement. Each element takes
the same operations in the same order as in array code, so the bits are the same.

A loop is split where a scatter's slice begins or ends, so that no branch is left inside;
:mod:`optlab.autodiff.native` compiles it (numba) and keeps it on disk. :func:`fused_writer`
returns None where no chain is worth a loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import core, elementwise, shapes
from .codegen import ArrayWriter, Plan, literal
from .core import Function, Variable
from .record import NotCompilable

MAX_BODY = 400  # statements per loop body; beyond, a value used at many positions is stored instead
MAX_NODES = 5000  # recorded operations; a larger recording stays array code (writing it would take long)


class _Store(Exception):
    """A value must be stored in an array of its own (raised while writing a loop)."""

    def __init__(self, var: Variable) -> None:
        self.var = var


def _slice(index: Any, length: int) -> tuple[int, int, int] | None:
    """(start, stop, step) of a basic slice of a vector, or None for any other index."""
    if isinstance(index, tuple) and len(index) == 1:
        index = index[0]
    if not isinstance(index, slice):
        return None
    return index.indices(length)


def fusable(fn: Function) -> bool:
    """Whether ``fn`` can be written element by element in a loop over its (vector) output."""
    out = fn.output()
    if out.ndim != 1:
        return False
    ins = [x.shape for x in fn.inputs]
    if fn.lowering is not None:
        return fn.lowering.exact and all(s in ((), (1,), out.shape) for s in ins)
    t = type(fn)
    if t is core.PowConst:
        return np.ndim(fn.c) == 0 and float(fn.c) in (2.0, 0.5, -1.0) and ins[0] in ((), out.shape)
    if t is shapes.GetItem:
        return len(ins[0]) == 1 and _slice(fn.index, ins[0][0]) is not None
    if t is shapes.ScatterAdd:
        found = len(fn.shape) == 1 and _slice(fn.index, fn.shape[0])
        return bool(found) and found[2] == 1 and ins[0] == (len(range(*found)),)
    if t in (shapes.BroadcastTo, shapes.Reshape):
        return ins[0] in ((), (1,)) or ins[0] == out.shape
    return False


class FusedWriter(ArrayWriter):
    """Array code whose vector chains are loops (see the module docstring). After :meth:`write`,
    :attr:`loops` holds each loop's (name, source, bindings, argument kinds) for
    :func:`optlab.autodiff.native.load`; the array code calls ``_loop{i}`` with the addresses
    of the vectors it writes and reads, and the numbers it reads."""

    def __init__(self, plan: Plan, stored: frozenset[int] = frozenset()) -> None:
        super().__init__(plan, batched=False, buffers=True)
        self.loops: list[tuple[str, str, dict[str, Any], str]] = []
        self.stored = stored  # fused values kept in arrays besides the roots (a loop grew too long)

    def roots(self) -> list[Variable]:
        """Fused values that leave their chain: outputs and operands of other operations."""
        nodes = self.plan.nodes
        fused = {id(fn.output()) for fn in nodes if fusable(fn)}
        leaving = {id(v) for v in self.plan.outputs} | self.stored
        for fn in nodes:
            if id(fn.output()) not in fused:
                leaving.update(id(self.plan.resolve(x)) for x in fn.inputs)
        return [fn.output() for fn in nodes if id(fn.output()) in fused and id(fn.output()) in leaving]

    def write(self, input_names: list[str]) -> list[str]:
        roots = {id(v) for v in self.roots()}
        outputs = {id(v) for v in self.plan.outputs}
        for var, name in zip(self.plan.graph.inputs, input_names):
            self.names[id(var)] = name
            self.fresh_array[id(var)] = False
            self.src.lines.append(f"{name} = _contiguous({name}, dtype=float)")
        self.src.env.update(_contiguous=np.ascontiguousarray, _empty=np.empty)
        for fn in self.plan.nodes:
            out = fn.output()
            if id(out) in roots:
                self._loop(out, id(out) in outputs)
            elif not fusable(fn):
                expr, fresh = self.expr(fn, [self.ref(x) for x in fn.inputs])
                name = self.src.fresh()
                slot = self._slot(fn, out.shape) if fresh and out.ndim else None
                if slot is not None:
                    self.slot_of[name] = slot
                    expr = f"{expr[:-1]}, out=_b[{slot}])"
                self.src.lines.append(f"{name} = {expr}")
                self.names[id(out)], self.fresh_array[id(out)] = name, fresh
        return [self.ref(v) for v in self.plan.outputs]

    def _loop(self, root: Variable, output: bool) -> None:
        """The loop computing ``root`` into a new array (an output) or a kept one."""
        name = self.src.fresh()
        if output:
            self.src.lines.append(f"{name} = _empty({root.shape})")
        else:
            self.slots.append(root.shape)
            self.src.lines.append(f"{name} = _b[{len(self.slots) - 1}]")
            self.slot_of[name] = len(self.slots) - 1
        loop = _Loop(self, root)
        self.names[id(root)], self.fresh_array[id(root)] = name, True
        held = []  # the vectors read, contiguous, held by a name for the length of the call
        for i, array in enumerate(loop.arrays):
            held.append(f"{name}_{i}")
            self.src.lines.append(f"{held[-1]} = _contiguous({array})")
        args = [f"{a}.ctypes.data" for a in [name, *held]] + [f"float({s})" for s in loop.scalars]
        fn = f"_loop{len(self.loops)}"
        self.src.lines.append(f"{fn}({', '.join(args)})")
        self.loops.append(loop.source(fn))


class _Loop:
    """The statements of one fused loop over the elements of ``root``."""

    def __init__(self, writer: FusedWriter, root: Variable) -> None:
        self.writer, self.plan, self.root = writer, writer.plan, root
        self.arrays: list[str] = []  # array code's names of the vectors read, in argument order
        self.scalars: list[str] = []  # array code's names of the numbers read
        self.env: dict[str, Any] = {"_sqrt": math.sqrt, "np": np}
        cuts = {0, root.shape[0]}
        self._visit(root, 1, 0, set(), cuts)
        bounds = sorted(c for c in cuts if 0 <= c <= root.shape[0])
        self.segments = [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
        self.bodies = [self._body(lo, hi) for lo, hi in self.segments]

    def _fused(self, var: Variable) -> Function | None:
        """The fused operation computing ``var``, or None for a value the loop reads."""
        var = self.plan.resolve(var)
        kind = self.plan.kind[id(var)]
        if kind[0] != "node" or id(var) in self.writer.names and var is not self.root:
            return None
        fn = kind[1]
        return fn if fusable(fn) and (var is self.root or id(var) not in self.writer.stored) else None

    def _inputs(self, fn: Function, a: int, b: int) -> list[tuple[Variable, int, int]]:
        """The operands of ``fn`` with the positions read for element ``a * j + b`` of its output."""
        t, out = type(fn), fn.output()
        if t is shapes.GetItem:
            start, _, step = _slice(fn.index, fn.inputs[0].shape[0])
            return [(fn.inputs[0], step * a, start + step * b)]
        if t is shapes.ScatterAdd:
            start = _slice(fn.index, fn.shape[0])[0]
            return [(fn.inputs[0], a, b - start)]
        return [(x, a, b) if x.shape == out.shape else (x, 0, 0) for x in fn.inputs]

    def _visit(self, var: Variable, a: int, b: int, seen: set, cuts: set) -> None:
        """Collect where scatters' slices begin and end along the loop (its segments' bounds)."""
        fn = self._fused(var)
        if fn is None or (id(var), a, b) in seen:
            return
        seen.add((id(var), a, b))
        if type(fn) is shapes.ScatterAdd:
            start, stop, _ = _slice(fn.index, fn.shape[0])
            if a == 1:
                cuts.update((start - b, stop - b))
            elif a != 0:
                raise _Store(var)
        for x, ax, bx in self._inputs(fn, a, b):
            self._visit(x, ax, bx, seen, cuts)

    def _body(self, lo: int, hi: int) -> list[str]:
        self.lines: list[str] = []
        self.memo: dict[tuple[int, int, int], str] = {}
        self.lo, self.hi = lo, hi
        self.lines.append(f"out[j] = {self._element(self.root, 1, 0)}")
        if len(self.lines) > MAX_BODY:  # store the value read at the most positions, if any is read at two
            uses: dict[int, int] = {}
            for key in self.memo:
                uses[key[0]] = uses.get(key[0], 0) + 1
            most = max((v for v in uses if v != id(self.root)), key=uses.get, default=None)
            if most is not None and uses[most] > 1:
                raise _Store(next(fn.output() for fn in self.plan.nodes if id(fn.output()) == most))
        return self.lines

    def _element(self, var: Variable, a: int, b: int) -> str:
        """Text of element ``a * j + b`` of ``var`` (a local name, a literal or an array element)."""
        var = self.plan.resolve(var)
        fn = self._fused(var)
        if fn is None:
            return self._read(var, a, b)
        key = (id(var), a, b)
        if key not in self.memo:
            text = self._compute(fn, a, b)
            name = f"v{len(self.memo)}"
            self.lines.append(f"{name} = {text}")
            self.memo[key] = name
        return self.memo[key]

    def _compute(self, fn: Function, a: int, b: int) -> str:
        t = type(fn)
        args = [self._element(x, ax, bx) for x, ax, bx in self._inputs(fn, a, b)] if t is not shapes.ScatterAdd \
            else None
        if t is shapes.ScatterAdd:
            start, stop, _ = _slice(fn.index, fn.shape[0])
            inside = start <= b < stop if a == 0 else start - b <= self.lo and self.hi <= stop - b
            return f"0.0 + {self._element(fn.inputs[0], a, b - start)}" if inside else "0.0"
        if t in (shapes.GetItem, shapes.BroadcastTo, shapes.Reshape):
            return args[0]
        if t is core.PowConst:
            c = float(fn.c)
            return {2.0: f"{args[0]} * {args[0]}", 0.5: f"_sqrt({args[0]})", -1.0: f"1.0 / {args[0]}"}[c]
        lowering = fn.lowering
        if lowering.native is not None:
            return lowering.native.format(*args)
        if lowering.scalar is not None:
            return lowering.scalar.format(*args)
        if lowering is elementwise.Sqrt.lowering:
            return f"_sqrt({args[0]})"
        raise _Store(fn.output())  # (an exact library function without a form here: stored by numpy)

    def _read(self, var: Variable, a: int, b: int) -> str:
        """A value the loop reads: a number, or an element of a vector (an argument)."""
        kind = self.plan.kind[id(var)]
        if kind[0] == "const" and np.size(kind[1]) and np.all(kind[1] == np.ravel(kind[1])[0]):
            text = literal(float(np.ravel(kind[1])[0]))  # (a number broadcast and folded: no array to read)
            if text is not None:
                return f"({text})"
        name = self.writer.ref(var)
        if var.ndim == 0:
            if name not in self.scalars:
                self.scalars.append(name)
            return f"s{self.scalars.index(name)}"
        if name not in self.arrays:
            self.arrays.append(name)
        index = "0" if var.shape == (1,) else _index(a, b)
        return f"a{self.arrays.index(name)}[{index}]"

    def source(self, fn: str) -> tuple[str, str, dict[str, Any], str]:
        from .native import pointer

        arrays = [f"a{i}" for i in range(len(self.arrays))]
        args = ["out_at", *(f"{a}_at" for a in arrays), *(f"s{i}" for i in range(len(self.scalars)))]
        lines = ["out = pointer(out_at)", *(f"{a} = pointer({a}_at)" for a in arrays)]
        for (lo, hi), body in zip(self.segments, self.bodies):
            lines += [f"for j in range({lo}, {hi}):", *(f"    {line}" for line in body)]
        lines.append("return 0")
        source = f"def {fn}({', '.join(args)}):\n" + "".join(f"    {line}\n" for line in lines)
        return fn, source, {**self.env, "pointer": pointer}, "i" * (1 + len(arrays)) + "f" * len(self.scalars)


def _index(a: int, b: int) -> str:
    if a == 0:
        return str(b)
    head = "j" if a == 1 else f"{a} * j"
    return head if b == 0 else f"{head} + {b}" if b > 0 else f"{head} - {-b}"


def fused_writer(plan: Plan, args: list[str]) -> FusedWriter | None:
    """``plan``'s array code written with its vector chains fused (inputs named ``args``), or
    None where no chain of two or more operations would make a loop (array code is as good)."""
    chains = [fn for fn in plan.nodes if fusable(fn) and type(fn) not in (shapes.GetItem, shapes.Reshape)]
    if len(chains) < 2 or len(plan.nodes) > MAX_NODES:
        return None
    stored: frozenset[int] = frozenset()
    while True:
        writer = FusedWriter(plan, stored)
        try:
            writer.names_out = writer.write(args)
            return writer
        except _Store as store:  # a loop grew too long, or reads a scatter at every other position
            stored = stored | {id(store.var)}
        except RecursionError:  # a chain too deep to write element by element: array code it stays
            return None


def machine_code(writer: FusedWriter) -> dict[str, Callable]:
    """The writer's loops as machine code (compiled, or opened from the cache)."""
    from .native import load

    return {name: load(name, source, env, args)[0] for name, source, env, args in writer.loops}


def cached(writer: FusedWriter) -> bool:
    """Whether every loop of the writer is compiled already (in this process or on disk)."""
    from .native import is_cached

    return all(is_cached(source, env, args) for _, source, env, args in writer.loops)


class Switching:
    """Array code until the time spent in it passes what compiling costs, then the fused
    machine code (the same bits): the rule of ``OPTLAB_JIT=auto`` for array code."""

    def __init__(self, plain: Callable, fused: Callable[[], Callable], budget: float) -> None:
        self.fn, self.fused, self.budget = plain, fused, budget

    def __call__(self, *args: Any) -> Any:
        if self.fused is None:
            return self.fn(*args)
        start = time.perf_counter()
        out = self.fn(*args)
        self.budget -= time.perf_counter() - start
        if self.budget < 0.0:
            make, self.fused = self.fused, None
            try:
                self.fn = make()
            except NotCompilable:  # numba cannot compile a loop: array code it stays
                pass
        return out


def array_code(plan: Plan, args: list[str], host: Callable[[ArrayWriter, list[str], dict], Callable]) -> Callable:
    """The array code of ``plan``, fused where the setting ``OPTLAB_JIT`` and numba allow:
    ``host(writer, output names, loops)`` makes the function from a written writer."""
    from . import native

    writer = ArrayWriter(plan, batched=False, buffers=True)
    plain = host(writer, writer.write(args), {})
    mode = native.setting()
    if mode == "off" or native.installed() is not None:
        return plain
    fused = fused_writer(plan, args)
    if fused is None:
        return plain

    def machine() -> Callable:
        return host(fused, fused.names_out, machine_code(fused))

    if mode == "on" or cached(fused):
        return machine()
    return Switching(plain, machine, native.COMPILE_SECONDS)
