"""Scalar code: recorded graphs unrolled element by element, on Python floats or on batches.

For small inputs numpy's per-call overhead dominates; written out on floats the value and
gradient of a 2-D function take a microsecond. Every value is an object array of *atoms*
(local names or literal floats); statements are folded, shared (common subexpressions) and
rewritten only where IEEE arithmetic gives the same bits.

The same statements also run *vectorised* (``vector=True``): each name then holds a numpy
array with one element per point of a batch, or a numpy float where the value depends only
on inputs that are the same for the whole batch. Each operation is written from its
:class:`~optlab.autodiff.core.Lowering`: arithmetic as operators, exact operations as numpy
ufuncs, and the others (exp, pow, ...) by the C library's function element by element, so a
batch computes exactly the bits of scalar code on every CPU. Vectorised code never raises:
where a float operation raises in Python (overflow, a division by zero, a domain error) it
gives numpy's inf or nan, which is also what a scalar function answers, by handing that one
call to its vectorised twin (:func:`guarded`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from . import core, elementwise, shapes
from .codegen import Plan, Source, literal, normal_axes
from .core import Function, Lowering, Variable
from .record import NotCompilable


class NotScalar(NotCompilable):
    pass


Atom = str | float  # a local name or a literal


def libm(fn: Callable, ufunc: Callable, *args: Any) -> Any:
    """``fn`` (a C library function of floats) element by element on numpy arrays or numbers,
    as scalar code computes it; where it raises (overflow, a domain error), numpy's answer."""
    if not any(type(a) is np.ndarray for a in args):
        try:
            return np.float64(fn(*args))
        except (ArithmeticError, ValueError):
            with np.errstate(all="ignore"):
                return np.float64(ufunc(*args))
    arrays = np.broadcast_arrays(*args)
    lists = [a.ravel().tolist() for a in arrays]
    try:
        out = np.fromiter(map(fn, *lists), float, count=arrays[0].size)
    except (ArithmeticError, ValueError):
        out = np.array([libm(fn, ufunc, *values) for values in zip(*lists)], dtype=float)
    return out.reshape(arrays[0].shape)


class ScalarWriter:
    """Graphs unrolled on atoms; see the module docstring for ``vector``."""

    def __init__(self, src: Source, prefix: str = "s", vector: bool = False, native: bool = False) -> None:
        self.src, self.prefix, self.vector, self.native = src, prefix, vector, native  # native: numba's floats
        # (target, expression, names used, (function, arguments) where the expression is one ufunc call)
        self.statements: list[tuple[str, str, tuple[str, ...], tuple | None]] = []
        self.common: dict[str, str] = {}
        self.values: dict[int, np.ndarray] = {}
        self.negated: dict[str, Atom] = {}  # name -> atom it is the negation of
        self.batched: set[str] = set()  # vector code: names holding arrays (the rest hold numbers)
        self.plan: Plan | None = None
        if vector:
            self.src.env["_libm"] = libm

    # atoms
    def text(self, atom: Atom) -> str:
        if isinstance(atom, str):
            return atom
        lit = literal(atom)
        return lit if lit is not None else self.src.bind(float(atom), "k")

    def _emit(self, expr: str, atoms: tuple[Atom, ...], ufunc: Callable | None = None) -> Atom:
        if expr in self.common:
            return self.common[expr]
        name = self.src.fresh(self.prefix)
        used = tuple(a for a in atoms if isinstance(a, str))
        vector_call = self.vector and isinstance(ufunc, np.ufunc)
        call = (self._bound(ufunc), [self.text(a) for a in atoms]) if vector_call else None
        self.statements.append((name, expr, used, call))
        self.common[expr] = name
        if any(a in self.batched for a in used):
            self.batched.add(name)
        return name

    def lowered(self, lowering: Lowering, *atoms: Atom) -> Atom:
        """An elementwise operation on atoms: folded when they are all literals."""
        if all(isinstance(a, float) for a in atoms):
            with np.errstate(all="ignore"):
                return float(lowering.ufunc(*(np.float64(a) for a in atoms)))
        texts = [self.text(a) for a in atoms]
        if self.vector and lowering.exact:
            return self._emit(f"{self._bound(lowering.ufunc)}({', '.join(texts)})", atoms, lowering.ufunc)
        elif self.vector:
            expr = f"_libm({self._bound(lowering.libm)}, {self._bound(lowering.ufunc)}, {', '.join(texts)})"
        elif self.native and lowering.native is not None:
            expr = lowering.native.format(*texts)
        elif lowering.scalar is not None:
            expr = lowering.scalar.format(*texts)
        else:
            expr = f"{self._bound(lowering.libm)}({', '.join(texts)})"
        return self._emit(expr, atoms)

    def _bound(self, fn: Callable) -> str:
        """A name for ``fn`` in the generated code (its own name where that is free)."""
        name = "_" + getattr(fn, "__name__", "fn").lstrip("_")
        if self.src.env.setdefault(name, fn) is not fn:
            name = self.src.bind(fn, "f")
        return name

    # Rewrites below are exact in IEEE arithmetic: a + (-b) is a - b, (-a) * b is -(a * b), and
    # rounding is symmetric, so signs move freely; x + 0.0 -> x only loses the sign of a zero.
    def arithmetic(self, template: str, fold: np.ufunc, a: Atom, b: Atom) -> Atom:
        if isinstance(a, float) and isinstance(b, float):
            with np.errstate(all="ignore"):
                return float(fold(np.float64(a), np.float64(b)))
        return self._emit(template.format(self.text(a), self.text(b)), (a, b), fold)

    def neg(self, a: Atom) -> Atom:
        if isinstance(a, float):
            return -a
        if a in self.negated:
            return self.negated[a]
        name = self._emit(f"-{a}", (a,), np.negative)
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
        return self.arithmetic("{0} + {1}", np.add, a, b)

    def sub(self, a: Atom, b: Atom) -> Atom:
        if isinstance(b, float) and b == 0.0:
            return a
        if b in self.negated:
            return self.add(a, self.negated[b])
        return self.arithmetic("{0} - {1}", np.subtract, a, b)

    def mul(self, a: Atom, b: Atom) -> Atom:
        for p, q in ((a, b), (b, a)):
            if isinstance(q, float) and q == 1.0:
                return p
            if isinstance(q, float) and q == -1.0:
                return self.neg(p)
            if p in self.negated:
                return self.neg(self.mul(self.negated[p], q))
        return self.arithmetic("{0} * {1}", np.multiply, a, b)

    def div(self, a: Atom, b: Atom) -> Atom:
        if isinstance(b, float) and b == 1.0:
            return a
        if a in self.negated:
            return self.neg(self.div(self.negated[a], b))
        if b in self.negated:
            return self.neg(self.div(a, self.negated[b]))
        return self.arithmetic("{0} / {1}", np.divide, a, b)

    def total(self, atoms: Any) -> Atom:
        """The sum of ``atoms``, first to last (the order of :func:`optlab.norms.norm` too)."""
        acc: Atom = 0.0
        for i, atom in enumerate(np.asarray(atoms, dtype=object).ravel()):
            acc = atom if i == 0 else self.add(acc, atom)
        return acc

    def norm(self, atoms: Any) -> Atom:
        """sqrt(a_0 a_0 + a_1 a_1 + ...), summed first to last."""
        return self.lowered(elementwise.Sqrt.lowering, self.total([self.mul(a, a) for a in atoms]))

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

    def write(self, plan: Plan, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The statements of ``plan`` on input atoms; returns the outputs' atoms."""
        self.plan = plan
        for var, atoms in zip(plan.graph.inputs, inputs):
            self.values[id(var)] = atoms
        for fn in plan.nodes:
            args = [self.atoms_of(x) for x in fn.inputs]
            out = self.op(fn, args)
            out = np.asarray(out, dtype=object) if not isinstance(out, np.ndarray) else out
            if out.shape != fn.output().shape:
                raise NotScalar(f"{type(fn).__name__} gave shape {out.shape}, recorded {fn.output().shape}")
            self.values[id(fn.output())] = out
        return [self.atoms_of(v) for v in plan.outputs]

    def elementwise(self, apply: Callable[..., Atom], *arrays: np.ndarray) -> np.ndarray:
        arrays = np.broadcast_arrays(*arrays)
        out = np.empty(arrays[0].shape, dtype=object)
        for pos in np.ndindex(out.shape):
            out[pos] = apply(*(a[pos] for a in arrays))
        return out

    def op(self, fn: Function, a: list[np.ndarray]) -> np.ndarray:  # noqa: C901 - one branch per kind
        t = type(fn)
        arithmetic = {core.Add: self.add, core.Sub: self.sub, core.Mul: self.mul, core.Div: self.div,
                      core.Neg: self.neg}.get(t)
        if arithmetic is not None:
            return self.elementwise(arithmetic, *a)
        if fn.lowering is not None:
            return self.elementwise(lambda *xs: self.lowered(fn.lowering, *xs), *a)
        if t is core.PowConst:
            exponents = np.empty(np.shape(fn.c), dtype=object)
            for pos, c in np.ndenumerate(np.asarray(fn.c, dtype=float)):
                exponents[pos] = float(c)
            return self.elementwise(self.power, a[0], exponents)
        if t is shapes.Reshape:
            return a[0].reshape(fn.shape)
        if t is shapes.Transpose:
            return np.transpose(a[0])
        if t is shapes.BroadcastTo:
            return np.broadcast_to(a[0], fn.shape).copy()
        if t is shapes.Sum:
            return self.reduce(a[0], fn.axis, fn.keepdims)
        if t is shapes.SumTo:
            return self.reduce(a[0], shapes.summed_axes(a[0].shape, fn.shape), True).reshape(fn.shape)
        if t is shapes.GetItem:
            picked = a[0][fn.index]
            return picked if isinstance(picked, np.ndarray) else np.array(picked, dtype=object)
        if t is shapes.ScatterAdd:
            return self.scatter(a[0], fn.index, fn.shape)
        if t is shapes.MatMul:
            return self.matmul(a[0], a[1])
        if t is shapes.Concatenate:
            return np.concatenate(a, axis=fn.axis)
        raise NotScalar(f"no scalar form of {t.__name__}")

    def power(self, x: Atom, c: float) -> Atom:
        """x ** c as numpy's ``**`` computes it: x * x, sqrt and 1 / x for 2, 0.5 and -1."""
        if c == 1.0:
            return x
        if c == 2.0:
            return self.mul(x, x)
        if c == 0.5:
            return self.lowered(elementwise.Sqrt.lowering, x)
        if c == -1.0:
            return self.div(1.0, x)
        return self.lowered(core.Pow.lowering, x, c)

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

    def body(self, outputs: list[Any], since: int = 0, into: dict[str, str] | None = None) -> list[str]:
        """The statements (from number ``since`` on) that the output atoms need, in order; a
        value used once is written in place (same operations, fewer local variables).
        Vectorised code writes a name of ``into`` straight into the array its value names,
        where its statement is one ufunc call (``out=``)."""
        into = into or {}
        out_names = {a for arr in outputs for a in np.asarray(arr, dtype=object).ravel() if isinstance(a, str)}
        live = set(out_names)
        kept = []
        for target, expr, used, call in reversed(self.statements[since:]):
            if target in live:
                kept.append((target, expr, call))
                live.update(used)
        kept.reverse()
        uses: dict[str, int] = {}
        for _, expr, _ in kept:
            for name in _NAME.findall(expr):
                uses[name] = uses.get(name, 0) + 1
        inline = {t: e for t, e, _ in kept if uses.get(t) == 1 and t not in out_names}

        def expand(expr: str) -> str:
            while True:
                expanded = _NAME.sub(lambda m: f"({inline[m.group()]})" if m.group() in inline else m.group(), expr)
                if expanded == expr:
                    return expr
                expr = expanded

        lines = []
        for target, expr, call in kept:
            if target in inline:
                continue
            if target in into and self.writes_out(target):
                expr = f"{call[0]}({', '.join(expand(a) for a in call[1])}, out={into[target]})"
            lines.append(f"{target} = {expand(expr)}")
        return lines


    def writes_out(self, name: Atom) -> bool:
        """Whether vectorised code can compute ``name`` straight into an array (one ufunc call)."""
        return name in self.batched and any(t == name and c is not None for t, _, _, c in self.statements)


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def input_atoms(names: list[str], shape: tuple[int, ...]) -> np.ndarray:
    arr = np.empty(len(names), dtype=object)
    arr[:] = names
    return arr.reshape(shape)


def guarded(statements: list[str], fallback: str) -> list[str]:
    """``statements`` inside try: a Python float error hands the call to ``fallback``, the
    vectorised twin of the same statements (which gives numpy's inf and nan instead)."""
    if not statements:
        return []
    return ["try:", *(f"    {s}" for s in statements), "except _errors:", f"    return {fallback}"]


def pack(atoms: np.ndarray, text: Callable[[Atom], str]) -> str:
    """Source of a numpy array holding ``atoms``."""
    if atoms.ndim == 0:
        return f"_array({text(atoms[()])})"
    items = ", ".join(text(a) for a in atoms.ravel())
    return f"_array([{items}])" + ("" if atoms.ndim == 1 else f".reshape({atoms.shape})")
