"""scipy's methods as a solver plugin: ``solver=scipy solver.method=BFGS`` (scipy is an optional extra).

``scipy.optimize.minimize`` owns its loop: it calls the objective and, once per iteration, a
callback. optlab's driver owns the run: it asks for one iterate per ``update``, logs it with
the counts as they are then, and applies its stopping rules in between. The two meet through a
worker thread: scipy runs there and evaluates only through optlab's :class:`Problem` (so nfev,
ngev and nhev are counted as optlab counts them, finite differences of a black box included);
at each callback the worker hands the new iterate to the driver and waits. ``update`` lets
scipy go on until its next callback and returns that iterate, while scipy is paused, so the
log's counts are the counts at that iterate. Only one side runs at a time: nothing is evaluated
twice, no evaluation is made that the counts do not show, and scipy's path is the path of a
direct ``scipy.optimize.minimize`` call.

Why a thread rather than a callback that raises ``StopIteration``: the driver needs every
iterate handed back as it happens (its clock, ``max_seconds``, Ctrl-C, the log in chunks),
which a callback cannot do without running the whole of scipy inside one ``update``. When the
driver stops (a rule holds, Ctrl-C, an error), the paused worker is told to end: its next step
raises inside scipy and unwinds it, and from then on no evaluation is counted. That happens at
once when the run ends (the driver calls :meth:`ScipyMethod.end`), and otherwise, for a run
driven by other code, when its last state is released (a weak reference) or the same solver
starts its next run.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import threading
import weakref
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, EndRun, NoProgress, SolverFailure, check_number, describe
from .base import Solver, State
from .options import check_choice
from .problem import Problem

#: Methods that use no derivatives: ``g`` is None and ``stop.gtol`` does not apply.
DERIVATIVE_FREE = ("nelder-mead", "powell", "cobyla", "cobyqa")
#: Methods that take Hessian-vector products (``hessian=auto``), and those that need the Hessian.
HESSP = ("newton-cg", "trust-ncg", "trust-krylov", "trust-constr")
HESS = ("trust-exact", "dogleg")
HESSIANS = ("auto", "hess", "hessp", "none")
#: Methods that evaluate the gradient at a new iterate right after their callback: optlab evaluates it
#: at the callback (counted at that iterate) and hands it to scipy. Other methods' iterates carry the
#: gradient scipy evaluated there, or none (SLSQP's callback point is a trial point it never
#: differentiates): then ||grad f|| is not logged and ``stop.gtol`` does not apply.
GRADIENT_NEXT = ("trust-ncg", "trust-krylov", "trust-exact", "dogleg")
#: scipy's messages (lower case) that mean a budget ran out or no step decreases f.
MAX_ITER = ("maximum number of iterations", "iterations reached limit", "iteration limit", "max. number of iter")
MAX_FEV = ("maximum number of function evaluations", "evaluations exceeds limit", "max. number of function",
           "evaluated maxfun")
STALLED = ("precision loss", "line search", "lnsrch", "abnormal", "rounding errors", "failure to predict improvement",
           "stp = stpm")
MEMO = 16  # points whose values scipy asked for, kept to read an iterate's f and g without evaluating again


def _scipy() -> Any:
    try:
        import scipy.optimize
    except ImportError:
        raise ConfigError("solver=scipy needs scipy, which is not installed; allowed: install it with "
                          "pip install 'optlab[scipy]'") from None
    return scipy.optimize


def method_options(method: str) -> list[str]:
    """The options scipy documents for ``method`` (its ``show_options`` text); [] if it documents none."""
    doc = _scipy().show_options(solver="minimize", method=method, disp=False) or ""
    section = doc.split("Options\n", 1)[1] if "Options\n" in doc else ""
    heads = re.findall(r"^ {0,8}(\w+(?:, *\w+)*) *: ", section, flags=re.MULTILINE)  # "maxiter, maxfev : int"
    return [name.strip() for head in heads for name in head.split(",")]


def status_of(result: Any) -> str:
    """optlab's status for how scipy ended: ``converged`` when scipy's own test held, ``max_iter`` and
    ``max_fev`` for its budgets, ``stalled`` for precision loss or a failed line search (no step
    decreases f), ``failed`` otherwise."""
    if result.success:
        return "converged"
    text = str(result.message).lower()
    for status, patterns in (("max_iter", MAX_ITER), ("max_fev", MAX_FEV), ("stalled", STALLED)):
        if any(p in text for p in patterns):
            return status
    return "failed"


class _Abandoned(BaseException):
    """Raised inside scipy once the driver has ended the run (a BaseException, so that no
    ``except Exception`` in scipy takes it for a failure of the objective)."""


class _Session:
    """One run of scipy in its worker thread, handing control back and forth with the driver."""

    def __init__(self, solver: ScipyMethod, problem: Problem, x0: np.ndarray) -> None:
        self.solver, self.problem, self.x0 = solver, problem, x0
        self.cond = threading.Condition()
        self.turn = "driver"
        self.event: tuple | None = None
        self.abandoned = False
        self.thread: threading.Thread | None = None
        self.last_x = x0
        self.pending: tuple | None = None  # scipy's result, once its last point has been handed over
        # evaluations made for the driver (an iterate's f or g scipy had not asked for yet): scipy
        # gets each once without a second count, as it would have made it next
        self.prefetched: dict[tuple[str, bytes], Any] = {}
        self.seen: dict[str, collections.OrderedDict] = {"f": collections.OrderedDict(),
                                                         "g": collections.OrderedDict()}

    # -- evaluations (worker thread; the driver's prefetches while scipy is paused)
    def _counted(self, name: str) -> None:
        with self.cond:  # once abandoned, the counts stay as the run's outcome recorded them
            if self.abandoned:
                raise _Abandoned
            self.problem.count(name)

    def _remember(self, kind: str, key: bytes, value: Any) -> None:
        memo = self.seen[kind]
        memo[key] = value
        if len(memo) > MEMO:
            memo.popitem(last=False)

    def value(self, x: np.ndarray) -> float:
        key = np.asarray(x, dtype=float).tobytes()
        if ("f", key) in self.prefetched:
            return self.prefetched.pop(("f", key))
        self._counted("value")
        f = float(self.problem.watched("value", self.problem.derivatives.value, np.array(x, dtype=float)))
        self._remember("f", key, f)
        return f

    def grad(self, x: np.ndarray) -> np.ndarray:
        key = np.asarray(x, dtype=float).tobytes()
        if ("g", key) in self.prefetched:
            return self.prefetched.pop(("g", key)).copy()
        self._counted("grad")
        g = np.asarray(self.problem.watched("grad", self.problem.derivatives.grad, np.array(x, dtype=float)),
                       dtype=float)
        self._remember("g", key, g)
        return g.copy()

    def hessian(self, x: np.ndarray) -> np.ndarray:
        self._counted("hessian")
        return np.asarray(self.problem.watched("hessian", self.problem.derivatives.hessian, np.array(x, dtype=float)),
                          dtype=float)

    def hvp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        self._counted("hvp")
        return np.asarray(self.problem.watched("hvp", self.problem.derivatives.hvp, np.array(x, dtype=float),
                                               np.array(p, dtype=float)), dtype=float)

    def at(self, x: np.ndarray, f_hint: float | None = None, start: bool = False
           ) -> tuple[float, np.ndarray | None]:
        """f and (for a gradient method) g at iterate ``x``: what scipy evaluated there, else
        evaluated now (counted at this iterate) and kept for scipy's next request, where scipy
        makes that request next (at the start; g for :data:`GRADIENT_NEXT`)."""
        key = x.tobytes()
        f = self.seen["f"].get(key, f_hint)
        if f is None:
            f = self.value(x)
            self.prefetched[("f", key)] = f
        if not self.solver.uses_gradient:
            return float(f), None
        g = self.seen["g"].get(key)
        if g is None and (start or self.solver.key in GRADIENT_NEXT):
            g = self.grad(x)
            self.prefetched[("g", key)] = g
        return float(f), None if g is None else np.array(g, dtype=float)

    # -- the worker thread
    def start(self) -> None:
        self.thread = threading.Thread(target=self._work, name=f"optlab-scipy-{self.solver.method}", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            with self.cond:  # scipy starts only once the driver has handed over the first turn
                while self.turn != "scipy" and not self.abandoned:
                    self.cond.wait()
            if self.abandoned:
                return
            event: tuple = ("end", self.solver.minimize(self))
        except _Abandoned:
            return
        except BaseException as exc:  # noqa: BLE001 - the driver raises it as the run's end (EndRun: max_fev)
            event = ("raise", exc)
        self._hand_over(event, last=True)

    def callback(self, intermediate_result: Any) -> None:
        """scipy's callback: hand a new iterate to the driver and wait for the next turn. A step
        that leaves x where it was (a rejected trust-region step, a simplex iteration without a new
        best vertex) is not an iteration: optlab counts accepted steps."""
        res = intermediate_result
        x = np.array(getattr(res, "x", res), dtype=float).reshape(self.x0.shape)
        if np.array_equal(x, self.last_x):
            return
        fun = getattr(res, "fun", None)
        f, g = self.at(x, float(fun) if fun is not None and np.ndim(fun) == 0 else None)
        self.last_x = x
        self._hand_over(("iterate", x, f, g))

    def _hand_over(self, event: tuple, last: bool = False) -> None:
        """Give ``event`` to the driver and wait for the next turn; after the ``last`` event (scipy's
        result or exception) the worker ends at once, holding nothing of the run."""
        with self.cond:
            if self.abandoned:
                if last:
                    return
                raise _Abandoned
            self.event, self.turn = event, "driver"
            self.cond.notify_all()
            if last:
                return
            while self.turn != "scipy" and not self.abandoned:
                self.cond.wait()
            if self.abandoned:
                raise _Abandoned

    # -- the driver's side
    def next_event(self) -> tuple:
        """Let scipy run to its next callback (or its end) and return what it handed over. The wait
        is interruptible: Ctrl-C abandons the run (every iterate so far is logged)."""
        if self.thread is None:
            self.start()
        try:
            with self.cond:
                self.event, self.turn = None, "scipy"
                self.cond.notify_all()
                while self.turn != "driver":
                    self.cond.wait()
                event, self.event = self.event, None  # (an exception kept here would keep its frames alive)
                return event
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """End the worker: it raises inside scipy at its next evaluation or callback."""
        with self.cond:
            self.abandoned = True
            self.cond.notify_all()


class _Handle:
    """What the driver's states hold of a session (the worker holds the session only): when the
    last state of a run is released, the worker is told to end."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        weakref.finalize(self, session.abandon)


@dataclasses.dataclass
class ScipyState(State):
    """Adds ``run``, the handle of the run's session with scipy (its worker thread)."""

    run: Any = dataclasses.field(default=None, repr=False, compare=False)


class ScipyMethod(Solver):
    """``scipy.optimize.minimize(method=METHOD)`` on optlab's objective, one scipy iteration per
    ``update``: BFGS, L-BFGS-B, CG, Newton-CG, trust-ncg, trust-krylov, trust-exact, dogleg,
    Nelder-Mead, Powell, TNC, SLSQP, COBYLA, COBYQA, trust-constr (scipy's names, any case).

    f, the gradient and (``hessian``: ``auto`` gives Hessian-vector products to Newton-CG,
    trust-ncg, trust-krylov and trust-constr, the Hessian to trust-exact and dogleg; ``hess``,
    ``hessp``, ``none``) come from optlab's derivatives and are counted by optlab. ``options``
    go to scipy as they are (e.g. ``{gtol: 1e-8, maxiter: 1000}``), ``tol`` too; scipy's defaults
    otherwise. How scipy ends maps to optlab's statuses (:func:`status_of`): its own test ->
    ``converged`` (the message quotes scipy), its iteration or evaluation limits -> ``max_iter``,
    ``max_fev``, precision loss or a failed line search -> ``stalled``, anything else -> ``failed``.
    optlab's stopping rules apply between iterations as for every solver. Reference: Virtanen et
    al., SciPy 1.0, Nature Methods 17, 2020.
    """

    name: ClassVar[str] = "scipy"

    def __init__(self, method: str = "BFGS", options: dict[str, Any] | None = None, tol: float | None = None,
                 hessian: str = "auto", **recorded: Any) -> None:
        optimize = _scipy()
        options = dict(options or {}) if isinstance(options, dict) or options is None else options
        for key, value in recorded.items():  # options as params() records them: options.gtol=1e-8
            if not key.startswith("options.") or not isinstance(options, dict):
                raise ConfigError(f"solver.{key} is not an option of solver {type(self).__module__}."
                                  f"{type(self).__name__}; allowed: method, options, tol, hessian")
            options[key.split(".", 1)[1]] = value
        from scipy.optimize._minimize import MINIMIZE_METHODS

        if not isinstance(method, str) or method.lower() not in MINIMIZE_METHODS:
            raise ConfigError(f"solver.method={describe(method)} is unknown; allowed: one of scipy's methods "
                              f"{', '.join(MINIMIZE_METHODS)} (any case)")
        self.method = method
        self.key = method.lower()
        # recorded per instance, so a report tells scipy's BFGS from optlab's bfgs (and from scipy's CG)
        self.name = f"scipy:{method}"  # type: ignore[misc]
        self.hessian = check_choice("solver.hessian", hessian, HESSIANS)
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"solver.options={describe(options)} is not a table; allowed: scipy's options of "
                              f"{method}, e.g. solver.options={{maxiter:100}}")
        self.options = dict(options or {})
        known = method_options(self.key)
        for name in self.options:
            if known and name not in known:
                raise ConfigError(f"solver.options.{name} is not an option of scipy's {method}; allowed: "
                                  f"{', '.join(known)}")
        self.tol = check_number("solver.tol", tol, low=0, allow_none=True)
        takes = {"hess": HESSP + HESS, "hessp": HESSP}.get(self.hessian)
        if takes is not None and self.key not in takes:
            raise ConfigError(f"solver.hessian={self.hessian} does not apply to scipy's {method}; allowed: auto, none"
                              f" (hessian={self.hessian} for {', '.join(takes)})")
        self._optimize = optimize
        self.uses_gradient = self.key not in DERIVATIVE_FREE
        self.second = ({"auto": "hessp" if self.key in HESSP else "hess" if self.key in HESS else "none"}
                       .get(self.hessian, self.hessian) if self.uses_gradient else "none")
        self.evaluates = ("value",) + (("grad",) if self.uses_gradient else ()) + (
            {"hessp": ("hvp",), "hess": ("hessian",)}.get(self.second, ()))
        self._sessions: weakref.WeakSet = weakref.WeakSet()

    def init(self, problem: Problem, x0: np.ndarray) -> ScipyState:
        for old in list(self._sessions):  # a run of this solver that ended without releasing its state
            old.abandon()
        x0 = np.array(x0, dtype=float)
        session = _Session(self, problem, x0)
        self._sessions.add(session)
        f, g = session.at(x0, start=True)
        return ScipyState(x=x0, f=f, g=g, run=_Handle(session))

    def end(self, state: ScipyState) -> None:
        """The worker ends now, however the run ended (Ctrl-C between two of its turns included)."""
        if state.run is not None:
            state.run.session.abandon()

    def update(self, problem: Problem, state: ScipyState) -> ScipyState:
        session = state.run.session
        event = session.pending if session.pending is not None else session.next_event()
        if event[0] == "iterate":
            _, x, f, g = event
            return ScipyState(x=x, f=f, g=g, run=state.run)
        if event[0] == "raise":
            error, event = event[1], None
            try:
                raise error
            finally:  # no cycle through this frame: the run's states are released when it ends
                error = None
        result = event[1]
        x = np.array(result.x, dtype=float).reshape(session.x0.shape)
        if session.pending is None and not np.array_equal(x, session.last_x):
            # scipy's answer is not the last iterate it showed: it is logged as one more
            session.pending, session.last_x = event, x
            f, g = session.at(x, float(result.fun) if np.ndim(result.fun) == 0 else None)
            return ScipyState(x=x, f=f, g=g, run=state.run)
        raise self.ending(result)

    def ending(self, result: Any) -> Exception:
        """The exception that ends the run as scipy ended (:func:`status_of`), quoting scipy."""
        status = status_of(result)
        text = f"scipy's {self.method}: {str(result.message).strip()}"
        if status == "converged":
            return EndRun(f"met scipy's own test ({text})", "converged")
        if status == "stalled":
            return NoProgress(text)
        if status == "failed":
            return SolverFailure(text)
        return EndRun(text, status)

    def minimize(self, session: _Session) -> Any:
        """scipy's run (in the worker thread), every evaluation through ``session``."""
        kwargs: dict[str, Any] = {"method": self.method, "callback": session.callback, "options": self.options}
        if self.tol is not None:
            kwargs["tol"] = self.tol
        if self.uses_gradient:
            kwargs["jac"] = session.grad
            if self.second == "hessp":
                kwargs["hessp"] = session.hvp
            elif self.second == "hess":
                kwargs["hess"] = session.hessian
        return self._optimize.minimize(session.value, session.x0.copy(), **kwargs)

    def params(self) -> dict[str, Any]:
        """The options, scipy's each under ``options.NAME`` (a record holds plain values, not tables);
        ``type(s)(**s.params())`` rebuilds the solver."""
        return {"method": self.method, "tol": self.tol, "hessian": self.hessian,
                **{f"options.{k}": v for k, v in sorted(self.options.items())}}


__all__ = ["ScipyMethod", "ScipyState", "method_options", "status_of"]
