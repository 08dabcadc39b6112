"""A sweep directory's identity, and where each of its jobs keeps its runs.

A sweep writes ``sweep.json`` in its directory before its first job: the sweep's overrides,
normalised (in sorted order, each sweep's values sorted, the report's options aside), and
their hash, the sweep id. Running the same sweep again into that directory resumes it, whatever
the order of its arguments; a different sweep is refused in one line, as is a directory that
already holds runs of something else.

Each job is known by its settings (:func:`optlab.app.config.settings_key`). A job resumes in the
directory that holds runs of its settings, wherever that is (the sweep typed in another order
numbers its jobs differently); a job whose numbered directory holds the runs of other settings
writes into ``N-KEY`` beside it, so nothing finished is ever overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..rundir.layout import MANIFEST, RECORD, write_atomic

IGNORED = ("report.",)  # overrides that change no run: a resumed sweep may add or drop them
_INDEX: dict[tuple[str, str], dict[str, Path]] = {}  # per process: (sweep dir, sweep id) -> {settings: job dir}


def normalised(overrides: list[str]) -> list[str]:
    """The overrides as a sorted list of ``key=values``, each sweep's values sorted."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if key.lstrip("+~").startswith(IGNORED):
            continue
        if override.is_discrete_sweep():
            values = ",".join(sorted(override.sweep_string_iterator()))
        elif override.is_sweep_override():  # an interval or tagged search space: as typed
            values = (override.input_line or "").partition("=")[2]
        else:
            values = override.get_value_element_as_str()
        out.append(f"{key}={values}")
    return sorted(out)


def sweep_id(overrides: list[str]) -> str:
    return hashlib.sha256(json.dumps(normalised(overrides)).encode()).hexdigest()[:12]


def open_sweep(sweep_dir: Path, overrides: list[str]) -> str:
    """Claim ``sweep_dir`` for the sweep of ``overrides`` (with its lock held) and return its id;
    :class:`ConfigError` when the directory holds another sweep or other runs."""
    from ..rundir.load import job_records

    ident = sweep_id(overrides)
    manifest = sweep_dir / MANIFEST
    found = _read(manifest)
    if found is not None:
        if found.get("sweep_id") != ident:
            theirs = " ".join(found.get("overrides") or []) or "unknown overrides"
            raise ConfigError(f"hydra.sweep.dir={sweep_dir} holds another sweep ({theirs[:200]}); allowed: "
                              "the same sweep again (to resume it) or a new hydra.sweep.dir")
    elif job_records(sweep_dir) or (sweep_dir / RECORD).exists():
        raise ConfigError(f"hydra.sweep.dir={sweep_dir} already holds runs that are not of this sweep; allowed: "
                          "a new hydra.sweep.dir")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"sweep_id": ident, "overrides": normalised(overrides),
                       "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}, indent=1)
    write_atomic(manifest, lambda p: p.write_text(text))
    return ident


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_sweep_id(sweep_dir: Path) -> str | None:
    found = _read(Path(sweep_dir) / MANIFEST)
    return found.get("sweep_id") if found else None


def swept(task_overrides: list[str], sweep_dir: Path, sweeper_params: Any) -> list[str]:
    """The overrides of a sweep's job that its sweep varies: those of the keys the sweeper's
    ``params`` name and those given on the command line with several values (``solver=gd,bfgs``);
    a job's summary shows them (which rate was this?)."""
    keys = {str(k) for k in (sweeper_params or {})}
    for line in (_read(Path(sweep_dir) / MANIFEST) or {}).get("overrides") or []:
        key, _, values = str(line).partition("=")
        if "," in values or "(" in values:
            keys.add(key.lstrip("+~"))
    return [o for o in task_overrides if o.partition("=")[0].lstrip("+~") in keys]


def _keys_in(job_dir: Path) -> set[Any]:

    keys = set()
    for path in [job_dir / RECORD, *job_dir.glob(f"start_*/{RECORD}")]:
        record = _read(path)
        if record is not None:
            keys.add(record.get("settings_key"))
    return keys


def _index(sweep_dir: Path, ident: str | None) -> dict[str, Path]:
    """Which job directory holds runs of which settings (read once per process and sweep)."""
    from ..rundir.load import job_records

    cache = (str(sweep_dir), ident or "")
    if cache not in _INDEX:
        index: dict[str, Path] = {}
        for path in job_records(sweep_dir):
            record = _read(path)
            job = path.parent if path.parent.parent == sweep_dir else path.parent.parent  # (a start's job)
            if record is not None and isinstance(record.get("settings_key"), str):
                index.setdefault(record["settings_key"], job)
        _INDEX[cache] = index
    return _INDEX[cache]


def job_dir(sweep_dir: Path, out_dir: Path, key: str) -> Path:
    """Where the job of settings ``key`` keeps its runs: its own numbered directory, unless runs of
    its settings are elsewhere in the sweep (then there), or its directory holds other settings'
    runs (then ``N-KEY`` beside it)."""
    keys = _keys_in(out_dir)
    if key in keys:
        return out_dir
    elsewhere = _index(sweep_dir, read_sweep_id(sweep_dir)).get(key)
    if elsewhere is not None and elsewhere != out_dir and key in _keys_in(elsewhere):
        return elsewhere
    if not keys:
        return out_dir
    return out_dir.with_name(f"{out_dir.name}-{key[:8]}")
