"""Compiled derivatives: record a function once, replay the recording as straight-line code.

The define-by-run engine (:mod:`optlab.autodiff.core`) creates Python objects for every
operation at every call. Here ``f`` is recorded once per input shape, its backward pass
included (:mod:`optlab.autodiff.record`), and each recorded graph becomes the source of one
flat Python function:

* array code (:mod:`optlab.autodiff.codegen`): one numpy call per operation, any size;
* scalar code (:mod:`optlab.autodiff.scalar_code`): unrolled on Python floats for small
  inputs; a floating-point exception (a division by zero, an overflow in ``exp``, ``log``
  of a negative number) hands that one call to the same statements vectorised
  (:meth:`Compiled.vectorised`), which give numpy's inf and nan and otherwise the same bits;
* batched code: array code with a trailing batch axis, for many points in one call.

The eager engine is the reference. The replay performs the same floating-point operations
on the same values, so it agrees with it bit for bit except where the order of a sum may
differ (gradient contributions accumulated from three or more uses, reductions and
matrix products in scalar or batched code) and in the last bits of some library functions
(``tanh``). Each :class:`Compiled` checks its replay against a second, independent
recording at the recorded point; where ``f`` reads input values or is random,
:class:`NotCompilable` is raised and the caller stays on the eager engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import functional, fuse
from .codegen import ArrayWriter, Plan, Source, buffer_slots, scatter_add, shape_src
from .core import Variable
from .record import Graph, NotCompilable, agree, record
from .scalar_code import NotScalar, ScalarWriter, guarded, input_atoms, pack

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

    def vectorised(self, name: str) -> Callable:
        """Scalar code's statements on rows of numpy arrays (``value_and_grad``, ``value`` or
        ``grad``): ``fn(X)`` for points in the columns of X (shape ``(size, B)``) gives values
        of shape (B,) and gradients of shape (size, B), with the bits of scalar code on every
        CPU. Raises :class:`NotCompilable` where there is no scalar code."""
        return self._get("vectorised_" + name)

    def batched(self, name: str) -> Callable:
        """``value``, ``value_and_grad``, ``grad`` or ``hvp`` on inputs of shape ``shape + (B,)``
        by array code (numpy's own functions). Values come back with shape ``(B,)``, gradients
        and products with ``shape + (B,)``. Raises :class:`NotCompilable` if an operation has
        no batched form.
        """
        return self._get("batched_" + name)

    def prepare(self, names: list[str]) -> None:
        """Build the code of ``names`` (``value``, ``value_and_grad``, ``grad``, ``hessian``,
        ``hvp``) now, so that a run's clock does not count it."""
        for name in names:
            self._get(name)

    def plan(self, name: str) -> Plan:
        """The simplified recording of ``value``, ``value_and_grad``, ``grad`` or ``hvp``."""
        graph, outs = {
            "value": (self.graph, ("f",)),
            "value_and_grad": (self.graph, ("f", "g")),
            "grad": (self.graph, ("g",)),
            "hvp": (self.second(), ("hv",)) if name == "hvp" else (None, ()),
        }[name]
        return Plan(graph, outs)

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
                if name not in ("hvp", "hessian"):
                    raise
                fn = getattr(functional, name)(self.f)  # second derivatives stay eager; first ones still compiled
            self._made[name] = fn
        return fn

    def second(self) -> Graph:
        """The recording with the Hessian-vector product (checked like the first one)."""
        if self._second is None:
            graph = record(self.f, self.x, hvp=True)
            self._check(graph)
            self._second = graph
            hv = self._get("array_hvp")(self.x, np.ones_like(self.x))
            if not agree(hv, graph.outputs["hv"].data):
                self._second = None
                raise NotCompilable("the replayed Hessian-vector product differs from the recording")
        return self._second

    def describes(self, f: Callable[[Variable], Any]) -> bool:
        """Whether this code also computes ``f`` (another objective with the same options):
        its replay at the recorded point agrees with a recording of ``f`` there."""
        try:
            self._check(record(f, self.x))
        except NotCompilable:
            return False
        return True

    def _check(self, graph: Graph) -> None:
        """Replay at the recorded point and compare with an independent recording ``graph``."""
        f, g = self._get("value_and_grad")(self.x)
        if not (agree(f, graph.outputs["f"].data) and agree(g, graph.outputs["g"].data)):
            raise NotCompilable("a second recording at the same point gives other values "
                                "(f draws random numbers or keeps state)")

    def _make(self, name: str) -> Callable:
        kind, _, what = name.partition("_")
        if kind in ("batched", "array"):
            return self._array_function(what, batched=kind == "batched")
        if kind == "vectorised":
            return self._vectorised_function(what)
        if name == "hessian":
            return self._hessian_function()
        if self.scalar:
            try:
                return self._scalar_function(name)
            except NotScalar:
                self.scalar = False
        return self._get("array_" + name)

    def _array_function(self, name: str, batched: bool) -> Callable:
        plan = self.plan(name)
        args = ["x", "v"][: len(plan.graph.inputs)]
        if not batched:  # fused where machine code is at hand (optlab.autodiff.fuse)
            return fuse.array_code(plan, args, lambda writer, names, loops: _host(name, plan, args, writer, names,
                                                                                   loops))
        writer = ArrayWriter(plan, batched)
        names = writer.write(args)
        src = writer.src
        src.env.update(_scatter_add=scatter_add)
        fresh = [writer.fresh_array.get(id(v)) for v in plan.outputs]
        body = ["B = x.shape[-1]"] + src.lines
        results = [f"np.broadcast_to({n}, {shape_src(v.shape, True)}).copy()" if plan.kind[id(v)][0] == "const"
                   else n if own else f"np.array({n}, dtype=float)"
                   for n, v, own in zip(names, plan.outputs, fresh)]
        body.append("return " + ", ".join(results))
        return src.function(name, ", ".join(args), body, f"{name} replayed from a recording (array code)")

    def _scalar_function(self, name: str) -> Callable:
        plan = self.plan(name)
        fallback = self._get("array_hvp") if name == "hvp" else _one_column(self._get("vectorised_" + name), name,
                                                                              self.shape)
        src = Source()
        src.env.update(_array=np.array, _errors=SCALAR_ERRORS, _fallback=fallback)
        writer = ScalarWriter(src)
        arg_names = ["x", "v"][: len(plan.graph.inputs)]
        unpack, atoms = [], []
        for arg in arg_names:
            names = [f"{arg}_{i}" for i in range(self.size)]
            atoms.append(input_atoms(names, self.shape))
            flat = arg if len(self.shape) == 1 else f"{arg}.ravel()"
            unpack.append(f"{', '.join(names)}, = {flat}.tolist()")
        outputs = writer.write(plan, atoms)
        results = [writer.text(o[()]) if n == "f" else pack(o, writer.text) for o, n in zip(outputs, plan.names)]
        body = unpack + guarded(writer.body(outputs), f"_fallback({', '.join(arg_names)})") + [
            "return " + ", ".join(results)]
        return src.function(name, ", ".join(arg_names), body, f"{name} replayed from a recording (scalar code)")

    def _vectorised_function(self, name: str) -> Callable:
        if not self.scalar or name == "hvp":
            raise NotCompilable("no vectorised scalar code for this function")
        plan = self.plan(name)
        src = Source()
        src.env["_rows"] = rows
        writer = ScalarWriter(src, vector=True)
        names = [f"x_{i}" for i in range(self.size)]
        writer.batched.update(names)
        outputs = writer.write(plan, [input_atoms(names, self.shape)])
        results = [f"_rows([{writer.text(o[()])}], B)[0]" if n == "f" else
                   f"_rows([{', '.join(writer.text(a) for a in o.ravel())}], B)" for o, n in zip(outputs, plan.names)]
        body = [f"{', '.join(names)}, = x", "B = x.shape[-1]", *writer.body(outputs), "return " + ", ".join(results)]
        return src.function(name, "x", body, f"{name} replayed from a recording (vectorised scalar code)")

    def _hessian_function(self) -> Callable:
        if self.scalar:
            try:
                return self._scalar_hessian()
            except NotScalar:
                pass
        n, shape = self.size, self.shape
        try:
            batched = self.batched("hvp") if n * n <= 4_000_000 else None
        except NotCompilable:
            batched = None
        if batched is None:
            return self._hessian_rows()
        eye = np.eye(n).reshape(shape + (n,))

        def hessian(x: np.ndarray) -> np.ndarray:
            """Rows H e_i all at once, the batch axis along the columns."""
            xs = np.broadcast_to(np.asarray(x, dtype=float).reshape(shape + (1,)), shape + (n,))
            return np.ascontiguousarray(batched(xs, eye).reshape(n, n).T).reshape(shape + shape)

        return hessian

    def _hessian_rows(self) -> Callable:
        """The Hessian a row H e_i at a time, by array code."""
        hvp, eye, shape = self._get("array_hvp"), np.eye(self.size), self.shape

        def hessian(x: np.ndarray) -> np.ndarray:
            return np.array([hvp(x, e.reshape(shape)).reshape(-1) for e in eye]).reshape(shape + shape)

        return hessian

    def _scalar_hessian(self) -> Callable:
        plan = self.plan("hvp")
        src = Source()
        src.env.update(_array=np.array, _errors=SCALAR_ERRORS, _fallback=self._hessian_rows())
        writer = ScalarWriter(src)
        names = [f"x_{i}" for i in range(self.size)]
        x_atoms = input_atoms(names, self.shape)
        table_rows = []
        for i in range(self.size):
            unit = np.zeros(self.size, dtype=object)
            unit[:] = [1.0 if j == i else 0.0 for j in range(self.size)]
            writer.values.clear()
            table_rows.append(writer.write(plan, [x_atoms, unit.reshape(self.shape)])[0].ravel())
        table = np.array(table_rows, dtype=object).reshape(self.shape + self.shape)
        flat = "x" if len(self.shape) == 1 else "x.ravel()"
        body = [f"{', '.join(names)}, = {flat}.tolist()"] + guarded(writer.body([table]), "_fallback(x)") + [
            "return " + pack(table, writer.text)]
        return src.function("hessian", "x", body, "Hessian replayed from a recording (scalar code)")


def _host(name: str, plan: Plan, args: list[str], writer: ArrayWriter, names: list[str],
          loops: dict[str, Callable]) -> Callable:
    """The array code function of a written ``writer`` (outputs ``names``), with its fused
    ``loops`` bound and its kept arrays (:func:`buffer_slots`)."""
    src = writer.src
    src.env.update(loops, _scatter_add=scatter_add, _slots=buffer_slots(writer.slots))
    fresh = [writer.fresh_array.get(id(v)) for v in plan.outputs]
    body = [*(["_b = _slots()"] if writer.slots else []), *src.lines]
    results = [f"float({n})" if o == "f" else n if own else f"np.array({n}, dtype=float)"
               for n, o, own in zip(names, plan.names, fresh)]
    body.append("return " + ", ".join(results))
    kind = "fused machine code" if loops else "array code"
    return src.function(name, ", ".join(args), body, f"{name} replayed from a recording ({kind})")


def rows(values: list, count: int) -> np.ndarray:
    """Values of vectorised code (arrays of ``count`` elements, or numbers) as rows of one array."""
    out = np.empty((len(values), count))
    for i, value in enumerate(values):
        out[i] = value
    return out


def _one_column(vectorised: Callable, name: str, shape: tuple[int, ...]) -> Callable:
    """``vectorised`` called like the scalar function ``name`` (one point, not a batch)."""

    def call(x: np.ndarray) -> Any:
        out = vectorised(np.asarray(x, dtype=float).reshape(-1, 1))
        if name == "value":
            return float(out[0])
        if name == "grad":
            return out[:, 0].reshape(shape)
        return float(out[0][0]), out[1][:, 0].reshape(shape)

    return call


def compile_function(f: Callable[[Variable], Any], x: np.ndarray) -> Compiled:
    """Compiled derivatives of scalar ``f`` for inputs shaped like ``x`` (raises :class:`NotCompilable`)."""
    return Compiled(f, x)
