"""One writer per run or sweep directory: an exclusive lock file holding its owner.

``DIR/.optlab.lock`` is created with ``O_CREAT | O_EXCL`` (atomic on local and network file
systems) and holds the owner's pid, host and start time. A second writer gets
:class:`LockHeld`, whose message names the holder. A lock whose owner is gone (a process of this
host that no longer exists: kill -9, a crash) is stale and taken over; a lock held by another
host cannot be checked from here and is respected: the message says which file to remove.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .layout import LOCK

#: Directories this process holds a lock on: a lock inside one of them is already covered (the
#: run directories of a job, the starts of a batch), so no file is written for it.
_HELD: dict[Path, int] = {}


class LockHeld(RuntimeError):
    """Another live process writes this directory."""


def _owner_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": secrets.token_hex(8),
                       "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})


def _read(path: Path) -> tuple[str, dict[str, Any]] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "", {}
    try:
        owner = json.loads(text)
    except ValueError:
        owner = {}
    return text, owner if isinstance(owner, dict) else {}


def _alive(owner: dict[str, Any], path: Path) -> bool:
    """Whether the owner may still be running: always for another host; for an unreadable lock,
    unless it is old (its writer died between creating and filling it)."""
    if not owner:
        try:
            return path.stat().st_mtime > dt.datetime.now().timestamp() - 10.0
        except OSError:
            return False
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname():
        return True
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False  # (this process's own pid: a lock left by a dead process whose pid was reused)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def covered(directory: Path) -> bool:
    """Whether this process already holds a lock on ``directory`` or on a folder above it."""
    here = directory.resolve()
    return here in _HELD or any(parent in _HELD for parent in here.parents)


def owners(paths: Any) -> list[int]:
    """The pids of the live processes of this host, this one aside, that hold the lock files
    ``paths``."""
    pids = []
    for path in paths:
        found = _read(Path(path))
        owner = found[1] if found else {}
        pid = owner.get("pid")
        if owner.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() \
                and _alive(owner, Path(path)):
            pids.append(pid)
    return pids


def describe_owner(owner: dict[str, Any]) -> str:
    if not owner:
        return "an unknown process (the lock file is unreadable)"
    return f"process {owner.get('pid')} on {owner.get('host')} (since {owner.get('since')})"


def acquire(directory: str | Path) -> str | None:
    """Lock ``directory`` (created if needed) for this process; returns the lock's text to
    :func:`release` with, or None when a lock of this process already covers it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if covered(directory):
        return None
    path = directory / LOCK
    text = _owner_text()
    for _ in range(10):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            found = _read(path)
            if found is None:  # released meanwhile
                continue
            seen, owner = found
            if _alive(owner, path):
                raise LockHeld(f"{directory} is being written by {describe_owner(owner)}; allowed: one writer "
                               f"per directory (wait for it, or remove {path} if that process is gone)") from None
            _break(path, seen)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        _HELD[directory.resolve()] = os.getpid()
        return text
    raise LockHeld(f"{directory}: its lock {path} keeps changing hands; allowed: one writer per directory")


def _break(path: Path, seen: str) -> None:
    """Remove a stale lock, unless another process replaced it meanwhile: it is moved aside under
    a name of this process's own first, and put back if it is not the one found stale."""
    aside = path.with_name(f"{path.name}.stale.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    found = _read(aside)
    if found is not None and found[0] != seen:  # a fresh lock, taken after we looked: give it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def release(directory: str | Path, text: str | None) -> None:
    """Give up the lock taken by :func:`acquire` (a no-op for None); a lock file that is no longer
    this one's is left alone."""
    if text is None:
        return
    directory = Path(directory)
    _HELD.pop(directory.resolve(), None)
    found = _read(directory / LOCK)
    if found is not None and found[0] == text:
        (directory / LOCK).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(directory: str | Path) -> Iterator[None]:
    """Hold the lock of ``directory`` for the block."""
    text = acquire(directory)
    try:
        yield
    finally:
        release(directory, text)
