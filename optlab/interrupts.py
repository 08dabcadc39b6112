"""Ctrl-C and the other signals that stop a run, in one place.

A run stopped by the user ends with status ``interrupted`` and keeps every iterate it counted.
Three signals do that: Ctrl-C (SIGINT), SIGTERM (a timeout, a batch system's time limit,
``docker stop``) and :data:`STOP_SIGNAL`, which a sweep stopped by Ctrl-C sends to its jobs'
processes. :func:`interrupt_signals` makes all three raise ``KeyboardInterrupt`` (the first one
only); :func:`interrupt_deferred` holds them while something must not be cut in half (a file
being written, a block of steps being logged); :func:`forward` passes a sweep's stop on.

In ``python -m optlab`` they are never lost and never a traceback: from the process's first
moment to its last (a :func:`session`), a signal outside a job's run is recorded rather than
raised, and :func:`requested` says so to every loop that asks (a job about to start, a run
between steps), also where a library swallowed the ``KeyboardInterrupt`` it raised.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Iterator
from typing import Any

try:  # the C functions under signal's: a run swaps handlers a dozen times, and the enum wrapping is 95% of that
    import _signal as raw_signal
except ImportError:  # (another interpreter)
    raw_signal = signal

#: The signal a sweep stopped by Ctrl-C sends to its jobs' processes: not SIGINT, which some
#: launchers' workers never see as Python's (Ray's handle it in C).
STOP_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGINT)
#: The signals that end a run as interrupted, where the process has a handler for them
#: (``python -m optlab`` does).
INTERRUPTS = tuple(dict.fromkeys((signal.SIGINT, signal.SIGTERM, STOP_SIGNAL)))


_received: list[int] | None = None  # the signals received in the session (None: no session)
_holding = 0  # > 0 inside held(): a signal of interrupt_signals waits in _pending
_pending: list[int] = []


@contextlib.contextmanager
def session() -> Iterator[None]:
    """For a whole command: the three signals are recorded from here on (see the module's
    docstring); a block of :func:`interrupt_signals` raises them."""
    global _received
    if _received is not None:  # (python -m optlab enters one before the command's own)
        yield
        return
    _received = []

    def record(number: int, frame: Any) -> None:
        _received.append(number)

    try:
        with _handlers(record):
            yield
    finally:
        _received = None


def requested() -> bool:
    """Whether the command was asked to stop (only inside a :func:`session`)."""
    return bool(_received)


def note(number: int) -> None:
    """Record that ``number`` asked the command to stop (inside a :func:`session`)."""
    if _received is not None:
        _received.append(number)


@contextlib.contextmanager
def interrupt_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and :data:`STOP_SIGNAL` raise KeyboardInterrupt in the block, also in a
    launcher's worker process that ignores Ctrl-C (joblib's), so its job records
    ``interrupted``. Only the first does: a job often gets two (a terminal's Ctrl-C to its
    process group, then the sweep's stop signal), and a second one while the job ends would
    leave its record unwritten."""
    raised = False

    def first_only(number: int, frame: Any) -> None:
        nonlocal raised
        note(number)
        if _holding:
            _pending.append(number)
        elif not raised:
            raised = True
            raise KeyboardInterrupt

    with _handlers(first_only):
        if requested():  # asked before the block began
            raised = True
            raise KeyboardInterrupt
        yield


def held() -> contextlib.AbstractContextManager[None]:
    """Inside :func:`interrupt_signals`, a signal waits until the block ends, then raises: for
    bookkeeping that must be whole (a run's row and its count), at the cost of a counter (no
    handler is installed; outside such a block the signals behave as they do there)."""
    return _HELD


class _Held:
    """The block of :func:`held` (a class rather than a generator: it is entered every iteration
    of a run, and is reentrant, keeping its count in the module)."""

    def __enter__(self) -> None:
        global _holding
        _holding += 1

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        global _holding
        _holding -= 1
        if kind is None and not _holding and _pending:
            _pending.clear()
            raise KeyboardInterrupt


_HELD = _Held()


def interrupt_deferred() -> contextlib.AbstractContextManager[list[int]]:
    """Ctrl-C (and SIGTERM, where the process handles it) inside the block is held until its end
    and reported in the yielded list (in the main thread; Python delivers signals nowhere else)."""
    return _Deferred()


class _Deferred:
    """The block of :func:`interrupt_deferred` (a class rather than a generator: a run enters a
    few, and their cost was mostly the generator's)."""

    def __enter__(self) -> list[int]:
        caught: list[int] = []

        def hold(number: int, frame: Any) -> None:
            note(number)
            caught.append(number)

        # (a default SIGTERM ends the process at once: it is left alone)
        numbers = [n for n in INTERRUPTS if n == signal.SIGINT or callable(raw_signal.getsignal(n))]
        self.previous = _install(hold, numbers)
        return caught

    def __exit__(self, *exc: Any) -> None:
        _restore(self.previous)


@contextlib.contextmanager
def _handlers(handler: Any, numbers: Iterable[int] = INTERRUPTS) -> Iterator[None]:
    """``handler`` for the signals ``numbers`` in the block, the previous handlers after it."""
    previous = _install(handler, numbers)
    try:
        yield
    finally:
        _restore(previous)


def _install(handler: Any, numbers: Iterable[int]) -> dict[int, Any]:
    """Set ``handler`` for the signals ``numbers``: the handlers it replaced, by signal (none
    outside the main thread, where signals are not delivered anyway)."""
    previous = {}
    try:
        for number in numbers:
            previous[number] = raw_signal.signal(number, handler)
    except ValueError:  # not the main thread
        pass
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for number, old in previous.items():
        raw_signal.signal(number, old)


def forward(pids: Iterable[int]) -> None:
    """Pass a sweep's stop on to its jobs' processes (:data:`STOP_SIGNAL`)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, STOP_SIGNAL)
