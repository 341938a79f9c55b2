"""Reads infra/ Bicep with pycep-parser (the parser checkov uses): resources with their type, API version and body."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


@dataclass(frozen=True)
class Resource:
    """One `resource` declaration (child resources flattened, as pycep does: `parent__child`)."""

    file: str
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: dict[str, Any]  # the object after any `if (...)` or `[for ...]` wrapper


def files(root: Path = INFRA) -> list[Path]:
    return sorted(root.rglob("*.bicep"))


def parse(path: Path | None = None, *, text: str | None = None) -> dict[str, Any]:
    """pycep's JSON rendering of one Bicep file; ValueError / lark errors when it does not parse."""
    parser = _parser()
    return parser.parse(text=text) if text is not None else parser.parse(file_path=path)


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()  # builds the Lark grammar once per process (seconds)


def unwrap(config: dict[str, Any]) -> dict[str, Any]:
    """The body inside `if (cond) {...}` and `[for x in y: {...}]`."""
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources(tree: dict[str, Any], file: str = "<text>") -> list[Resource]:
    out = []
    for symbol, res in (tree.get("resources") or {}).items():
        out.append(Resource(file, symbol, res["type"], res["api_version"], bool(res.get("existing")),
                            unwrap(res["config"])))
    return out


@functools.cache
def all_resources(root: Path = INFRA) -> tuple[Resource, ...]:
    return tuple(r for path in files(root) for r in resources(parse(path), str(path.relative_to(root))))


def literal(value: Any) -> str | None:
    """A plain string value (pycep renders identifiers as strings too; callers compare against known names)."""
    return value if isinstance(value, str) else None
