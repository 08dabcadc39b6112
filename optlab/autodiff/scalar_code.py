"""Scalar code: a recorded graph unrolled element by element on Python floats.

For small inputs numpy's per-call overhead dominates; written out on floats the value and
gradient of a 2-D function take a microsecond. Every value is an object array of *atoms*
(local names or literal floats); statements are folded, shared (common subexpressions)
and rewritten only where IEEE arithmetic gives the same bits. The same code runs on numpy
arrays with one element per point (``vector=True``), for batches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from . import core
from .codegen import Plan, Source, at_least, literal, normal_axes
from .core import Function, Variable
from .record import AtLeast, NotCompilable, Sign


# -- scalar code --------------------------------------------------------------------------------
class NotScalar(NotCompilable):
    pass


Atom = str | float  # a local name or a literal


class ScalarWriter:
    """The graph unrolled on Python floats: every value is an object array of atoms."""

    def __init__(self, plan: Plan, src: Source, prefix: str = "s", vector: bool = False) -> None:
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
        lit = literal(atom)
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
                raise NotScalar(f"{type(fn).__name__} gave shape {out.shape}, recorded {fn.output().shape}")
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
        raise NotScalar(f"no scalar form of {t.__name__}")

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
        axes = tuple(range(x.ndim)) if axis is None else normal_axes(axis, x.ndim)
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
            raise NotScalar("matmul of stacked matrices")
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
    AtLeast: ("(1.0 if {0} >= {1} else 0.0)", at_least),
}
# The same code on numpy arrays (one element per point of a batch): conditionals become ufuncs.
_VECTOR_TEMPLATES: dict[type, tuple[str, Callable]] = {
    core.Maximum: ("_maximum({0}, {1})", np.maximum), core.Minimum: ("_minimum({0}, {1})", np.minimum),
    Sign: ("_sign({0})", np.sign), AtLeast: ("at_least({0}, {1})", at_least),
}
VECTOR_ENV = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
               "tanh": np.tanh, "pow": np.power, "_maximum": np.maximum, "_minimum": np.minimum,
               "_sign": np.sign, "at_least": at_least}
SCALAR_ENV = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log,
               "sqrt": math.sqrt, "tanh": math.tanh, "pow": math.pow}


def input_atoms(names: list[str], shape: tuple[int, ...]) -> np.ndarray:
    arr = np.empty(len(names), dtype=object)
    arr[:] = names
    return arr.reshape(shape)


def guarded(statements: list[str], fallback: str) -> list[str]:
    """``statements`` inside try: a Python float error hands the call to array code (inf, nan)."""
    if not statements:
        return []
    return ["try:", *(f"    {s}" for s in statements), "except _errors:", f"    return {fallback}"]


def pack(atoms: np.ndarray, text: Callable[[Atom], str]) -> str:
    """Source of a numpy array holding ``atoms``."""
    if atoms.ndim == 0:
        return f"_array({text(atoms[()])})"
    items = ", ".join(text(a) for a in atoms.ravel())
    return f"_array([{items}])" + ("" if atoms.ndim == 1 else f".reshape({atoms.shape})")
