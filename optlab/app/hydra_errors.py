"""Hydra's and OmegaConf's multi-line errors as one line that names the bad value."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError


def one_line(exc: BaseException, config_dir: str) -> str:
    if isinstance(exc.__cause__, ConfigError):  # raised by an object Hydra built (a callback's options): as it is
        return str(exc.__cause__)
    text = str(exc)
    missing = re.search(r"Could not find '(\w+)/([^']*)'.*Available options in '\w+':\n(.*?)"
                        r"(\nConfig search path|\n\n|$)", text, re.S)
    if missing:
        group, name, options = missing.groups()[:3]
        allowed = ", ".join(options.split())
        return f"{group}={name!r} is unknown; allowed: {allowed}"
    not_struct = re.search(r"Could not override '([^']+)'", text)
    if not_struct and "is not in struct" in f"{text} {exc.__cause__}":
        key = not_struct.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        if parent and f"{parent}=null" in sys.argv[1:]:
            return (f"{key} cannot be set after {parent}=null, which removes the {parent} options; allowed: "
                    f"{parent}=null or {key}=VALUE, not both")
        return f"{key} is not an option; allowed: {allowed_keys(key, config_dir)}"
    if "Config group override must be a string or a list" in text:
        nulls = [a.split("=")[0] for a in sys.argv[1:] if re.fullmatch(r"[\w/]+=null", a)]
        for group in nulls:
            names = sorted(p.stem for p in Path(config_dir, group).glob("*.yaml"))
            if names:
                return f"{group}=null is not allowed; allowed: {group}=NAME with NAME one of {', '.join(names)}"
    ambiguous = re.match(r"Ambiguous value for argument '(.*)'\n", text)
    if ambiguous:
        return (f"{ambiguous.group(1)} is ambiguous; allowed: a list key=[a,b], a quoted string key='a,b', "
                "or a sweep over the values with -m")
    if isinstance(exc, OverrideParseException):
        return (f"cannot parse the override {exc.override!r}; allowed: KEY=VALUE with a number, a word, "
                "a quoted string or a list like [0,2] (see python -m optlab --help)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("    ")]
    return "; ".join(lines) or type(exc).__name__


def allowed_keys(key: str, config_dir: str) -> str:
    """The keys next to ``key`` in the default config (best effort, for the message)."""
    from hydra import compose, initialize_config_dir

    parent = key.rsplit(".", 1)[0] if "." in key else ""
    choices = [a for a in sys.argv[1:] if re.match(r"^(objective|solver)=[^,]+$", a)]
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            cfg = compose("config", overrides=choices)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [k for k in node.keys() if k != "_target_"] if isinstance(node, DictConfig) else []
    except Exception:  # noqa: BLE001 - only for the message
        keys = []
    return ", ".join(keys) if keys else "see python -m optlab --help"
