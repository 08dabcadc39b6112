"""A sweep job's score, the value a sweeper such as Optuna minimises."""

from __future__ import annotations

from typing import Any

from ..engine.stopping import FAILURES


def score(records: list[dict[str, Any]]) -> float:
    """The median final gap f - f* (f when f* is unknown) over a job's runs; inf for a run that
    diverged, failed or was invalid, and for a job without runs."""
    values = sorted(run_score(r) for r in records)
    if not values:
        return float("inf")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


def run_score(record: dict[str, Any]) -> float:
    value = record.get("gap") if record.get("gap") is not None else record.get("f_final")
    ok = value is not None and record.get("status") not in FAILURES
    return float(value) if ok else float("inf")
