"""Runs as the benchmarking formats see them: a suite, a function and instance, a dimension, an
algorithm, and the evaluations at which the best f - f* so far improved.

Mapping (the same for COCO's and IOHprofiler's formats):

- **BBOB runs** (``objective=bbob``) keep COCO's suite ``bbob``, function number, instance and
  dimension (the functions named as IOHprofiler names them), and f* is the instance's optimal
  value: the data are COCO's own.
- **Other objectives** form the suite ``optlab``: each objective with its options (all but the
  ones that only draw a random instance, ``instance`` and ``seed``) is a function, numbered 1, 2,
  ... in the order of its name; each value of ``seed`` (or ``instance``) is an instance, numbered
  1, 2, ... in numeric order; ``problems.csv`` in the output lists the numbering. f* is the
  objective's known minimum, or where it is unknown the best value any exported run found on
  that problem (``f_star_known`` says which): precision f - f* is then relative to the best run.
- **Starts** are repeated trials of the same instance.
- **Algorithm**: the solver setting, as the report names it (``gd (lr=0.001)``).
- **Evaluations**: function evaluations (``nfev``, finite differences included), or with
  ``cost="evals"`` function, gradient and Hessian evaluations together. optlab logs iterates, not
  single evaluations: an improvement is dated with the count at the end of the iteration that
  made it (a run ended by ``stop.target`` ends at the evaluation that reached the target, its
  last row), and the start with 1 (f(x0) is the first evaluation of every run). The last
  evaluation is the run's total.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

SUITE_BBOB = "bbob"
SUITE_OTHER = "optlab"
#: The 24 BBOB functions by the names IOHprofiler gives them.
BBOB_NAMES = ("Sphere", "Ellipsoid", "Rastrigin", "BuecheRastrigin", "LinearSlope", "AttractiveSector",
              "StepEllipsoid", "Rosenbrock", "RosenbrockRotated", "EllipsoidRotated", "Discus", "BentCigar",
              "SharpRidge", "DifferentPowers", "RastriginRotated", "Weierstrass", "Schaffers10", "Schaffers1000",
              "GriewankRosenBrock", "Schwefel", "Gallagher101", "Gallagher21", "Katsuura", "LunacekBiRastrigin")


@dataclasses.dataclass
class ExportRun:
    run_id: str
    suite: str
    function_id: int
    function_name: str
    instance: int
    dim: int
    algorithm: str
    f_star: float
    f_star_known: bool
    evals: np.ndarray  # strictly increasing, starting at 1: where the best precision improved
    best: np.ndarray  # best f - f* so far at those evaluations (>= 0)
    f_at: np.ndarray  # f of the iterate that made each improvement
    spent: int  # the run's total evaluations (>= the last of evals)
    x_best: list[float]


def improvements(f: np.ndarray, counts: np.ndarray, f_star: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(evaluations, best precision so far, f)`` where the best f - f* improved: the start at 1,
    every count made strictly increasing (an improvement at a count already written replaces it)."""
    gap = np.where(np.isfinite(f), np.maximum(f - f_star, 0.0), np.inf)
    at = np.maximum(np.nan_to_num(np.asarray(counts, dtype=float), nan=1.0), 1.0)
    at[0] = 1.0
    evals: list[int] = []
    best: list[float] = []
    values: list[float] = []
    current = math.inf
    for k in range(gap.size):
        if gap[k] < current or k == 0:
            current = gap[k]
            e = max(int(round(at[k])), evals[-1] if evals else 1)
            if evals and e == evals[-1]:
                best[-1], values[-1] = float(current), float(f[k])
            else:
                evals.append(e)
                best.append(float(current))
                values.append(float(f[k]))
    return np.array(evals, dtype=np.int64), np.array(best), np.array(values)


def export_runs(data: Any, cost: str = "nfev") -> tuple[list[ExportRun], Any]:
    """The runs of a report's data (:func:`optlab.report.read`) with iterates, and the table of
    functions and instances (``problems.csv``)."""
    import pandas as pd

    from ..report.repeats import REPEAT_OPTIONS, cost_along, spent_of

    valid = data.valid
    if valid.empty:
        return [], pd.DataFrame()
    repeats: dict[str, set] = {}
    for name, params in zip(valid.objective, valid.objective_opts):
        if name != "bbob":
            repeats.setdefault(_function_key(name, params), set()).add(_repeat_value(params, REPEAT_OPTIONS))
    numbers = {k: n for n, k in enumerate(sorted(repeats), 1)}
    instance_of = {k: {v: i for i, v in enumerate(sorted(vs, key=_order), 1)} for k, vs in repeats.items()}
    spent = spent_of(valid, cost)
    out, rows = [], {}
    for r, total in zip(valid.itertuples(), spent):
        info = data.problems[r.problem]
        params = r.objective_opts
        if r.objective == "bbob":
            fid = int(params["function"])
            suite, name, inst = SUITE_BBOB, BBOB_NAMES[fid - 1], int(params["instance"])
        else:
            key = _function_key(r.objective, params)
            suite, fid, inst = SUITE_OTHER, numbers[key], instance_of[key][_repeat_value(params, REPEAT_OPTIONS)]
            name = _function_name(r.objective, {k: v for k, v in params.items() if k not in REPEAT_OPTIONS})
        t = data.traces[r.run_id]
        f_star = float(r.f_ref)
        evals, best, values = improvements(t.f, cost_along(t, cost), f_star)
        total = int(round(total)) if math.isfinite(total) else int(evals[-1])
        x = r.x_final if isinstance(r.x_final, list) else []
        out.append(ExportRun(r.run_id, suite, fid, name, inst, int(r.dim), r.solver_label, f_star,
                             info.f_star is not None, evals, best, values, max(total, int(evals[-1])), list(x)))
        rows[(suite, fid, inst)] = {"suite": suite, "function_id": fid, "function": name, "instance": inst,
                                    "objective": r.objective, "options": json.dumps(params, sort_keys=True),
                                    "dim": int(r.dim), "f_star": f_star, "f_star_known": info.f_star is not None}
    table = pd.DataFrame(sorted(rows.values(), key=lambda row: (row["suite"], row["function_id"], row["instance"],
                                                                 row["dim"])))
    return out, table


def _function_key(name: str, params: dict[str, Any]) -> str:
    """An objective with its options but the dimension and those that draw an instance."""
    from ..report.repeats import REPEAT_OPTIONS

    return json.dumps([name, {k: v for k, v in params.items() if k not in (*REPEAT_OPTIONS, "dim")}], sort_keys=True,
                      default=str)


def _repeat_value(params: dict[str, Any], names: tuple[str, ...]) -> str:
    return json.dumps({k: params[k] for k in names if k in params}, sort_keys=True, default=str)


def _order(value: str) -> tuple:
    parsed = json.loads(value)
    return tuple((k, v if isinstance(v, (int, float)) else math.inf, str(v)) for k, v in sorted(parsed.items()))


def _function_name(objective: str, options: dict[str, Any]) -> str:
    shown = "_".join(f"{k}={v}" for k, v in sorted(options.items()) if k != "dim")
    return "".join(c if c.isalnum() or c in "=.-" else "_" for c in f"{objective}_{shown}".strip("_"))[:80]
