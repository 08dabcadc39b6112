"""Memory for log columns, recycled: a run's columns go back to a free list when its table dies.

Memory fresh from the system costs a page fault per 4 KiB when first written (about 10 us on the
project's 2-core virtual machine, more than a machine-code step takes to write its row), and
allocators hand freed memory back to the system within milliseconds (mimalloc, Arrow's default
pool) or once it is large (glibc), so each run of a sweep would fault its whole log in again.
Here a large block (:data:`RECYCLE_MIN_BYTES` and up) is owned by an :class:`_Owner` that every
array and Arrow buffer made from it keeps alive; when the last of them goes, the block returns
to a free list of at most :data:`RECYCLE_BYTES`, and the next block of its size class comes from
there, its pages already mapped.
"""

from __future__ import annotations

import collections
import ctypes
import math
import threading

import numpy as np

RECYCLE_MIN_BYTES = 2**18  # smaller arrays come from numpy (glibc reuses them itself)
RECYCLE_BYTES = 256 * 2**20  # freed blocks kept for reuse, at most (the newest)
_free: collections.deque = collections.deque()  # (size class, block), oldest first
_free_bytes = 0
_lock = threading.Lock()


class _Owner:
    """Keeps a block; when the last array using it dies, the block goes back for reuse."""

    __slots__ = ("block",)

    def __init__(self, block: np.ndarray) -> None:
        self.block = block

    def __del__(self) -> None:
        lock = _lock
        # (never waits: this may run inside a take in the same thread; then the block is just freed)
        if lock is None or not lock.acquire(blocking=False):  # (None at interpreter exit)
            return
        try:
            _keep(self.block)
        finally:
            lock.release()


def size_class(size: int) -> int:
    """``size`` rounded up to a quarter of its power of two (at most a quarter wasted)."""
    quarter = 1 << max(0, size.bit_length() - 3)
    return -(-size // quarter) * quarter


def pool_array(shape: int | tuple[int, ...], dtype: type = np.float64, fill: float | None = None) -> np.ndarray:
    """An uninitialised array of 8-byte items for log columns: a large one in recycled memory (see
    the module docstring), which the log may keep in its tables without a copy."""
    size = 8 * (shape if isinstance(shape, int) else math.prod(shape))
    if size < RECYCLE_MIN_BYTES:
        array = np.empty(shape, dtype)
    else:
        block = _take(size_class(size))
        memory = (ctypes.c_char * size).from_address(block.ctypes.data)  # (writable, unlike Arrow's foreign buffer)
        memory.owner = _Owner(block)
        array = np.frombuffer(memory, dtype=dtype).reshape(shape)
    if fill is not None:
        array.fill(fill)
    return array


def _keep(block: np.ndarray) -> None:
    """Put a freed block on the list, dropping the oldest beyond :data:`RECYCLE_BYTES` (lock held)."""
    global _free_bytes
    if block.nbytes > RECYCLE_BYTES:
        return
    _free.append((block.nbytes, block))
    _free_bytes += block.nbytes
    while _free_bytes > RECYCLE_BYTES:
        _free_bytes -= _free.popleft()[0]


def _take(nbytes: int) -> np.ndarray:
    """A block of ``nbytes`` (a size class): the newest freed one of that size, else a new one."""
    global _free_bytes
    with _lock:
        for i in range(len(_free) - 1, -1, -1):
            if _free[i][0] == nbytes:
                block = _free[i][1]
                del _free[i]
                _free_bytes -= nbytes
                return block
    return np.empty(nbytes, np.uint8)


def kept_bytes() -> int:
    """Bytes of freed blocks kept for reuse."""
    return _free_bytes
