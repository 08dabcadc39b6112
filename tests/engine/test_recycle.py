"""Log memory goes back for reuse when the last table using it dies, and never before."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from optlab.engine import recycle
from optlab.engine.log import arrow_column
from optlab.engine.run_set import run_set
from optlab.engine.stopping import Stop
from optlab.objectives import Rosenbrock
from optlab.solvers import GradientDescent


@pytest.fixture(autouse=True)
def no_collector():
    """Memory must come back by reference counting alone: a cycle would hold it until a collection."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_block_returns_when_its_last_arrow_column_dies_and_is_reused():
    before = recycle.kept_bytes()
    array = recycle.pool_array((4, 100_000))
    array[:] = 7.0
    column = arrow_column(array[2], False)
    address = array.ctypes.data
    del array
    assert recycle.kept_bytes() == before  # the column still reads it
    assert column.to_numpy()[-1] == 7.0
    del column
    assert recycle.kept_bytes() == before + recycle.size_class(8 * 400_000)
    again = recycle.pool_array((4, 100_000))
    assert again.ctypes.data == address and again.flags.writeable


def test_small_arrays_are_plain_numpy():
    small = recycle.pool_array(100, np.int64, fill=3)
    assert small.dtype == np.int64 and small.base is None and np.all(small == 3)


def test_size_classes_round_up_by_at_most_a_quarter():
    for size in [1, 7, 2**18, 2**18 + 1, 3 * 2**20 + 5, 10**9]:
        kept = recycle.size_class(size)
        assert size <= kept <= max(size * 1.25, 8)


def test_freed_blocks_kept_are_bounded_newest_first(monkeypatch):
    monkeypatch.setattr(recycle, "RECYCLE_BYTES", 2**22)
    arrays = [recycle.pool_array(2**18) for _ in range(8)]  # 8 blocks of 2 MiB
    addresses = [a.ctypes.data for a in arrays]
    while arrays:  # freed in order: the last two stay
        arrays.pop(0)
    assert recycle.kept_bytes() <= 2**22
    assert recycle.pool_array(2**18).ctypes.data == addresses[-1]
    too_large = recycle.pool_array(2**20)  # 8 MiB: freed, not kept
    kept = recycle.kept_bytes()
    del too_large
    assert recycle.kept_bytes() == kept


def test_a_batchs_rows_survive_later_batches_and_its_memory_returns_with_its_tables():
    from optlab.engine.run_set import InMemory

    starts, stop = np.array([[0.0, 2.0], [-1.0, 1.0], [1.5, 0.5], [0.5, 0.5]]), Stop(max_iter=30_000, gtol=0)
    sinks = InMemory()
    outcomes = run_set(Rosenbrock(), GradientDescent(lr=1e-4), starts, stop, sinks)
    assert {o.backend for o in outcomes} == {"batched"}
    tables = list(sinks.tables.values())
    f = [t["f"].to_numpy().copy() for t in tables]
    for lr in (2e-4, 5e-4):  # later batches take freed memory, never the memory of a live table
        run_set(Rosenbrock(), GradientDescent(lr=lr), starts, stop)
    assert all(np.array_equal(t["f"].to_numpy(), g) for t, g in zip(tables, f))
    kept = recycle.kept_bytes()
    del tables, sinks
    assert recycle.kept_bytes() >= kept + 8 * 4 * 10_000  # at least its f buffer came back, with no collection
