"""The lowest allowed version of every direct dependency, read from pyproject.toml.

``python .ci/floors.py EXTRA ...`` prints one requirement per line for the project's dependencies
and those of the named extras: ``name==FLOOR`` for each with a lower bound (``>=FLOOR``), the
requirement as written for the others (``alembic<1.14``). Installed together with the project,
they are the set a floor promises works. ``--check`` instead compares what is installed in the
running environment with those floors and exits 1 naming each difference.

Standard library only (it runs before anything is installed); Python 3.11+ for tomllib.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9._-]+)(?P<extras>\[[^\]]*\])?\s*(?P<specs>[^;]*)(?P<marker>;.*)?$")


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"floors.py: unknown extra(s) {', '.join(unknown)}; allowed: {', '.join(optional)}")
    found = list(project["dependencies"])
    for extra in extras:
        found += [r for r in optional[extra] if r not in found]
    return found


def floor(requirement: str) -> tuple[str, str | None]:
    """``(name, lowest allowed version)``; None when the requirement has no lower bound."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise SystemExit(f"floors.py: cannot read the requirement {requirement!r}")
    lows = [s.strip()[2:].strip() for s in match["specs"].split(",") if s.strip().startswith(">=")]
    return match["name"], (lows[0] if lows else None)


def pinned(requirement: str) -> str:
    name, low = floor(requirement)
    if low is None:
        return requirement
    extras = REQUIREMENT.match(requirement)["extras"] or ""
    return f"{name}{extras}=={low}"


def check(extras: list[str]) -> int:
    wrong, checked = [], 0
    for requirement in requirements(extras):
        name, low = floor(requirement)
        if low is None:
            continue
        checked += 1
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != low:
            wrong.append(f"{name}: floor {low}, installed {installed}")
    for line in wrong:
        print(f"floors.py: {line}", file=sys.stderr)
    print(f"floors.py: {checked} direct dependencies with a floor, {checked - len(wrong)} installed at it")
    return 1 if wrong else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        return check(argv[1:])
    print("\n".join(pinned(r) for r in requirements(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
