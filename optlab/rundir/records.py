"""What a run record (``run.json``) must hold to be read: its run id and the type of every
field a reader uses. :mod:`optlab.rundir.reading` (``optlab.load``) and the report check records here,
so a record one of them accepts the other accepts too.
"""

from __future__ import annotations

import re
from typing import Any

from ..engine.stopping import POINTS, STATUSES

RECORD_STATUSES = (*STATUSES, "invalid", "running")
RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_LIST = 100_000  # coordinates in x0 and x_final
MAX_OPTIONS = 100  # entries in a table of options


# Records are JSON: their values are exactly of these types (no subclass, no numpy scalar), so a
# value's type is tested by identity, and a list's or a table's values all at once.
NUMBER_TYPES = frozenset({int, float, type(None)})
PLAIN_TYPES = NUMBER_TYPES | {bool, str}


def is_number(v: Any) -> bool:
    return type(v) in NUMBER_TYPES


def _count(v: Any) -> bool:
    return v is None or (type(v) is int and v >= 0)


def _numbers(v: Any) -> bool:
    return v is None or (type(v) is list and len(v) <= MAX_LIST and set(map(type, v)) <= NUMBER_TYPES)


def _param(v: Any, depth: int = 0) -> bool:
    if type(v) in PLAIN_TYPES:
        return True
    if type(v) is list and depth < 2 and len(v) <= 1000:
        return all(_param(x, depth + 1) for x in v)
    return False


def _params(v: Any) -> bool:
    if v is None:
        return True
    if type(v) is not dict or len(v) > MAX_OPTIONS or not set(map(type, v)) <= {str}:
        return False
    return set(map(type, v.values())) <= PLAIN_TYPES or all(_param(x) for x in v.values())


def _text(v: Any) -> bool:
    return v is None or isinstance(v, str)


CHECKS = {  # field -> (test, what it should be)
    "status": (lambda v: v in RECORD_STATUSES, "one of " + ", ".join(RECORD_STATUSES)),
    "objective": (_text, "a name"),
    "solver": (_text, "a name"),
    "objective_params": (_params, "a table of options"),
    "solver_params": (_params, "a table of options"),
    "stop": (lambda v: v is None or (type(v) is dict and set(map(type, v.values())) <= NUMBER_TYPES),
             "a table of numbers"),
    "start": (_params, "a table"),
    "dim": (lambda v: v is None or (_count(v) and v >= 1), "a positive integer"),
    "x0": (_numbers, "a list of numbers"),
    "x_final": (_numbers, "a list of numbers"),
    "f_star": (is_number, "a number or null"),
    "f_final": (is_number, "a number or null"),
    "gap": (is_number, "a number or null"),
    "wall_time_s": (is_number, "a number or null"),
    "iterations": (_count, "a count"),
    "nfev": (_count, "a count"),
    "ngev": (_count, "a count"),
    "nhev": (_count, "a count"),
    "message": (_text, "text"),
    "overrides": (lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
                  "a list of overrides"),
    "not_applicable": (lambda v: v is None or isinstance(v, bool), "true or false"),
    "point": (lambda v: v is None or v in POINTS, "one of " + ", ".join(POINTS)),
}


def check_record(record: Any) -> str | None:
    """Why this record cannot be used, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    run_id = record.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        return f"run_id {repr(run_id)[:40]} is not an id (letters, digits, _.:-, at most 64)"
    for field, (test, what) in CHECKS.items():
        if not test(record.get(field)):
            return f"field {field} is {repr(record.get(field))[:60]} (expected {what})"
    if record["status"] != "invalid" and not isinstance(record.get("objective"), str):
        return "it names no objective"
    x0, dim = record.get("x0"), record.get("dim")
    if x0 is not None and dim is not None and len(x0) != dim:
        return f"x0 has {len(x0)} coordinates, dim is {dim}"
    return None
