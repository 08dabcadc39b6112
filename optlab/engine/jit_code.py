"""The generated code both machine-code loops share (one run: :mod:`optlab.engine.jit`; a batch:
:mod:`optlab.engine.jit_many`): one step's statements in native form, the stopping rules as
statements, what the code binds, and the compiled loop kept on its program."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..autodiff import native
from ..autodiff.codegen import Source
from ..autodiff.record import NotCompilable
from ..autodiff.scalar_code import ScalarWriter
from . import stopping
from .program import StepAtoms, StepProgram
from .stopping import NAMES, RULES

CLOCK_EVERY = 64  # steps between two clock readings (one costs about as much as two steps of gd)


class Written(NamedTuple):
    """One step in native form: its statements, the names of what it computes, the source's
    bindings and how many operations it takes."""

    lines: list[str]
    atoms: StepAtoms
    src: Source
    operations: int


def written(program: StepProgram) -> Written:
    """One step's statements in native form, from the carry ``c_0, c_1, ...``, iteration ``k_0``
    and parameters ``p_0, ...``; kept on the program."""
    def write() -> Written:
        src = Source("j")
        writer = ScalarWriter(src, native=True)
        carry = [f"c_{i}" for i in range(program.width)]
        out = program.write(writer, carry, "k_0", [f"p_{i}" for i in range(len(program.traced))])
        lines = writer.body([*out.carry, out.f, out.gn, out.step_size])
        text = writer.text
        atoms = StepAtoms([text(a) for a in out.x], [text(a) for a in out.g], [text(a) for a in out.leaves],
                          text(out.step_size), text(out.f), text(out.gn))
        return Written(lines, atoms, src, len(writer.statements))
    return program.lowered(("native step",), write)


#: What the generated code passes for each field of :class:`~optlab.engine.stopping.Standing`
#: (``F``, ``GN``: f and ||grad f|| after the step); a rule's option goes by its own name.
READS = {"f": "F", "gn": "GN", "g_bad": "g_bad", "x_bad": "x_bad", "step": "step", "previous_norm": "previous_norm",
         "k": "k", "nfev": "k + 1"}


def rule_lines(atoms: StepAtoms, x_old: Sequence[str] | None, names: Sequence[str]) -> list[str]:
    """Statements setting ``code`` (1 + the rule's position in :data:`~optlab.engine.stopping.NAMES`,
    0: go on) by the rules ``names`` of :data:`~optlab.engine.stopping.RULES`, in their order,
    each by its own predicate (compiled with the loop); their inputs are computed as the
    drivers compute them (norms summed first to last). ``x_old``: the x before the step (None:
    no step to judge)."""
    f, gn, x = atoms.f, atoms.gn, atoms.x
    lines = [f"F, GN = {f}, {gn}", "g_bad = _not_finite(GN)", f"x_bad = {' or '.join(f'_not_finite({a})' for a in x)}"]
    if x_old is not None:
        step = " + ".join(f"({y} - {p}) * ({y} - {p})" for y, p in zip(x, x_old))
        size = " + ".join(f"{p} * {p}" for p in x_old)
        lines += [f"step = _sqrt({step})", f"previous_norm = _sqrt({size}) if xtol else _nan"]
    branch = "if"
    lines.append("code = 0")
    for name in names:
        rule = RULES[name]
        if "step" in rule.reads and x_old is None:
            continue
        unknown = [field for field in rule.reads if field not in READS]
        if unknown:  # (a rule reading what the loop does not compute: the Python lowering judges it)
            raise NotCompilable(f"the stopping rule {name} reads {', '.join(unknown)}, which machine code lacks")
        args = [READS[field] for field in rule.reads] + ([rule.option] if rule.option else [])
        lines += [f"{branch} _rule_{name}({', '.join(args)}):", f"    code = {NAMES.index(name) + 1}"]
        branch = "elif"
    return lines


def environment(src: Source) -> dict[str, Any]:
    """What generated machine code binds: the step's libm functions and constants, the stopping
    rules' predicates and the helpers."""
    rules = {f"_rule_{name}": rule.holds for name, rule in RULES.items() if rule.holds is not None}
    return {**src.env, **rules, "_not_finite": stopping.not_finite, "_sqrt": math.sqrt, "_nan": math.nan,
            "pointer": native.pointer, "int_pointer": native.int_pointer, "now": native.now}


def function_source(name: str, args: str, body: list[str], src: Source, kinds: str
                    ) -> tuple[str, str, dict[str, Any], str]:
    """(name, source, bindings, argument kinds) of the generated function ``name(args)`` with
    ``body`` (statements, unindented), as :func:`compiled_loop` takes it."""
    return name, f"def {name}({args}):\n" + "".join(f"    {line}\n" for line in body), environment(src), kinds


def compiled_loop(program: StepProgram, which: Callable) -> tuple[Callable, float]:
    """The machine code of a loop of ``program`` (made once per program) and the seconds this
    call spent compiling it (0.0 when it was cached on disk or made before)."""
    spent: list[float] = []

    def make() -> Callable:
        fn, seconds = native.load(*which(program))
        spent.append(seconds)
        return fn

    fn = program.lowered(("machine code", which.__name__), make)
    return fn, sum(spent)
