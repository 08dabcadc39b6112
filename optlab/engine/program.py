"""Step programs: a first-order solver's step and the objective's derivatives, recorded once.

A :class:`~optlab.solvers.base.StepSolver` writes its update as ``step(x, g, carry, k)`` with
ordinary arithmetic. :class:`StepProgram` records that step on Variables, chains it with the
recording of f's value and gradient at the new point and with ||grad f|| (the norm of
:mod:`optlab.engine.stopping`), and lowers the whole with the writers of
:mod:`optlab.autodiff.scalar_code`:

* the fused loop (:mod:`optlab.engine.fused`): scalar code advancing one run many steps per call,
  in blocks of steps;
* :meth:`StepProgram.vector_step`: the same statements vectorised, one step of many runs at
  once (batches of starts and learning rates) or of many blocks of one run at once (the
  replay of a fused stretch).

Both come from one recording and one set of lowerings, so they compute the same bits on any
CPU, and those of the generic path (``solver.update`` on numpy arrays), which performs the
same IEEE operations in the same order.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autodiff.codegen import Plan, Source
from ..autodiff.compile import Compiled, NotCompilable
from ..autodiff.record import trace
from ..autodiff.scalar_code import ScalarWriter, input_atoms
from ..solvers.base import LEARNING_RATE, StepSolver


@dataclasses.dataclass
class StepAtoms:
    """One written step: atoms (names or literals) of the new x, g and carry leaves (flat
    lists), the step size, f and ||grad f|| at the new point."""

    x: list
    g: list
    leaves: list
    step_size: Any
    f: Any
    gn: Any

    @property
    def carry(self) -> list:
        """What the next step starts from: x, g and the carry leaves, flat."""
        return [*self.x, *self.g, *self.leaves]


class StepProgram:
    """``solver.step`` chained with the objective's value, gradient and gradient norm.

    ``traced`` names solver options (e.g. ``lr``) kept as inputs rather than constants, so
    that one program serves runs that differ in them (a batch over learning rates).
    """

    def __init__(self, solver: StepSolver, compiled: Compiled, carry: tuple, traced: Sequence[str] = ()) -> None:
        self.shape, self.n, self.traced = compiled.shape, compiled.size, tuple(traced)
        self.carry_type = type(carry)
        self.leaf_shapes = [np.shape(leaf) for leaf in carry]
        self.sizes = [int(np.prod(s)) for s in self.leaf_shapes]
        twin = copy.copy(solver)
        count = len(carry)

        def stepped(x: Any, g: Any, *rest: Any) -> tuple:
            leaves, k, params = rest[:count], rest[count], rest[count + 1:]
            for name, value in zip(self.traced, params):
                setattr(twin, name, value)
            x_new, carry_new, step_size = twin.step(x, g, self._rebuild(list(leaves)), k)
            return (x_new, *carry_new, step_size)

        x0 = compiled.x
        graph = trace(stepped, [x0, x0, *(np.asarray(leaf, dtype=float) for leaf in carry), 0.0,
                                *(float(getattr(solver, name)) for name in self.traced)])
        self.step_plan = Plan(graph, tuple(graph.outputs))
        self.value_plan = compiled.plan("value_and_grad")
        used = {id(self.step_plan.resolve(x)) for fn in self.step_plan.nodes for x in fn.inputs}
        used |= {id(v) for v in self.step_plan.outputs}
        self.uses_k = id(graph.inputs[2 + count]) in used
        self._code: dict[tuple, Callable] = {}

    def _rebuild(self, leaves: list) -> tuple:
        return self.carry_type(*leaves) if self.carry_type is not tuple else tuple(leaves)

    def carry_of(self, x: np.ndarray, g: np.ndarray, carry: tuple) -> list[float]:
        """A state's x, g and carry leaves as one flat list of floats (the loop's carry)."""
        return [*x.ravel().tolist(), *g.ravel().tolist(), *(v for leaf in carry for v in np.ravel(leaf).tolist())]

    def split(self, flat: Sequence) -> tuple[np.ndarray, np.ndarray, tuple]:
        """The inverse of :meth:`carry_of`: x, g and the carry (arrays) from flat values."""
        values = np.asarray(flat, dtype=float)
        n = self.n
        x, g = values[:n].reshape(self.shape), values[n:2 * n].reshape(self.shape)
        leaves, at = [], 2 * n
        for shape, size in zip(self.leaf_shapes, self.sizes):
            leaves.append(values[at:at + size].reshape(shape).copy())
            at += size
        return x.copy(), g.copy(), self._rebuild(leaves)

    @property
    def width(self) -> int:
        """How many numbers the carry holds."""
        return 2 * self.n + sum(self.sizes)

    def write(self, writer: ScalarWriter, carry: list, k: Any, params: Sequence = ()) -> StepAtoms:
        """The statements of one step from the carry's atoms; returns the new atoms."""
        n = self.n
        x, g = input_atoms(carry[:n], self.shape), input_atoms(carry[n:2 * n], self.shape)
        leaves, at = [], 2 * n
        for shape, size in zip(self.leaf_shapes, self.sizes):
            leaves.append(input_atoms(carry[at:at + size], shape))
            at += size
        scalars = [np.array(a, dtype=object) for a in (k, *params)]
        x_new, *leaves_new, step_size = writer.write(self.step_plan, [x, g, *leaves, *scalars])
        f, g_new = writer.write(self.value_plan, [x_new])
        return StepAtoms(list(x_new.ravel()), list(g_new.ravel()), [a for leaf in leaves_new for a in leaf.ravel()],
                         step_size[()], f[()], writer.norm(g_new.ravel()))

    # -- lowerings ---------------------------------------------------------------------------
    def vector_step(self, batched_k: bool, batched_params: Sequence[str] = ()) -> Callable:
        """``step(carry, k, params, out)`` on numpy arrays: one step of many runs from the carry
        (a list of rows, one element per run), k and params (numbers, or rows where
        ``batched_k``, ``batched_params``), written into the rows of ``out``: the new carry,
        then f, ||grad f|| and the step size. The bits of :meth:`loop`."""
        key = ("vector", batched_k, tuple(batched_params))
        if key not in self._code:
            src = Source("v")
            writer = ScalarWriter(src, vector=True)
            carry = [f"c_{i}" for i in range(self.width)]
            params = [f"p_{name}" for name in self.traced]
            writer.batched.update(carry + ([] if not batched_k else ["k"])
                                  + [p for p, name in zip(params, self.traced) if name in batched_params])
            out = self.write(writer, carry, "k", params)
            exports = [*out.carry, out.f, out.gn, out.step_size]
            into: dict[str, str] = {}
            for i, atom in enumerate(exports):
                if isinstance(atom, str) and atom not in into and writer.writes_out(atom):
                    into[atom] = f"out[{i}]"
            copies = [f"out[{i}][...] = {writer.text(a)}" for i, a in enumerate(exports)
                      if into.get(a) != f"out[{i}]"]
            body = [f"{', '.join(carry)}, = carry", *(f"{p} = params[{i}]" for i, p in enumerate(params)),
                    *writer.body(exports, into=into), *copies]
            self._code[key] = src.function("step", "carry, k, params, out", body, "one step of many runs (vectorised)")
        return self._code[key]

    def lowered(self, key: tuple, lower: Callable[[], Callable]) -> Callable:
        """The lowering ``key`` of this program, made by ``lower()`` once (the fused loop of
        :mod:`optlab.engine.fused` keeps its loops here, one per log and clock options)."""
        if key not in self._code:
            self._code[key] = lower()
        return self._code[key]


_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Compiled -> {solver key: program}


def traceable(solver: StepSolver) -> tuple[str, ...]:
    """The options of ``solver`` a program keeps as inputs: its learning rate, so that runs
    at different rates (a sweep's jobs, a batch) share one program and its compiled code."""
    return (LEARNING_RATE,) if isinstance(getattr(solver, LEARNING_RATE, None), (int, float)) else ()


def program_for(solver: StepSolver, compiled: Compiled, carry: tuple, traced: Sequence[str] = ()) -> StepProgram:
    """The step program of ``solver`` on ``compiled``'s objective, made once per solver options.

    Raises :class:`NotCompilable` where there is none: the objective has no scalar code, or
    the step reads values of its input.
    """
    if not compiled.scalar:
        raise NotCompilable("the objective has no scalar code (more than 16 coordinates, or a large recording)")
    options = solver.params()
    for name in traced:
        options.pop(name, None)
    key = (type(solver), repr(sorted(options.items())), tuple(traced),
           tuple(np.shape(leaf) for leaf in carry), type(carry))
    programs = _PROGRAMS.setdefault(compiled, {})
    if key not in programs:
        try:
            programs[key] = StepProgram(solver, compiled, carry, traced)
        except TypeError as exc:  # the step branches on a traced option (``if self.lr > ...``)
            if not traced:
                raise
            raise NotCompilable(f"the step uses {', '.join(traced)} as a number: {exc}") from exc
    return programs[key]
