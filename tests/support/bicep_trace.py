"""Follows a value through infra/: from the module that makes it, through main.bicep, to the module that uses it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.bicep_reader import INFRA, parse

MAIN_FILE = INFRA / "main.bicep"


@dataclass(frozen=True)
class Made:
    """Where a value is made: a resource's property (`path` after its symbol) in one module, or a main.bicep param
    (`symbol` "", `path` ("param", name))."""

    file: str  # relative to infra/
    symbol: str
    path: tuple[str, ...] = ()

    @property
    def resource(self) -> tuple[str, str]:
        return self.file, self.symbol


@dataclass(frozen=True)
class Scope:
    """One Bicep file as deployed: the params its caller gives it, and that caller."""

    file: Path
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    caller: Scope | None = None

    @property
    def tree(self) -> dict[str, Any]:
        return _tree(self.file)

    def module(self, name: str) -> Scope:
        mod = self.tree["modules"][name]
        return Scope((self.file.parent / mod["detail"]["path"]).resolve(), mod["config"]["params"], self)


MAIN = Scope(MAIN_FILE.resolve())


@functools.cache
def _tree(path: Path) -> dict[str, Any]:
    tree = parse(path)
    return {key: tree.get(key) or {} for key in ("parameters", "variables", "resources", "modules", "outputs")}


def _chain(expr: Any) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None for anything else."""
    names: list[str] = []
    while isinstance(expr, dict) and expr.get("operator", {}).get("type") == "property_accessor":
        operands = expr["operator"]["operands"]
        if not isinstance(operands["operand_1"], str):
            return None
        names.append(operands["operand_1"])
        expr = operands["operand_2"]
    return names + [expr] if names and isinstance(expr, str) else None


@dataclass(frozen=True)
class Joined:
    """An interpolated string ('https://${account.properties.accountEndpoint}'): where each `${...}` is made."""

    parts: tuple[Any, ...]


def follow(scope: Scope, expr: Any) -> Any:
    """Where `expr` (as pycep renders it) in `scope` is made: a Made, a Joined, or the literal value it is."""
    if isinstance(expr, str) and "${" in expr:
        return Joined(tuple(_name(scope, *_split(name)) for name in re.findall(r"\$\{([\w.]+)\}", expr)))
    if isinstance(expr, str):
        return _name(scope, expr, ())
    chain = _chain(expr)
    return _name(scope, chain[0], tuple(chain[1:])) if chain else expr


def _name(scope: Scope, head: str, rest: tuple[str, ...]) -> Any:
    tree = scope.tree
    if head in tree["modules"] and rest[:1] == ("outputs",):
        inner = scope.module(head)
        return _index(inner, follow(inner, inner.tree["outputs"][rest[1]]["value"]), rest[2:])
    if head in tree["parameters"]:
        if scope.caller is None:
            return Made(str(scope.file.relative_to(INFRA.resolve())), "", ("param", head, *rest))
        return _index(scope.caller, follow(scope.caller, scope.params[head]), rest)
    if head in tree["variables"]:
        return _index(scope, tree["variables"][head]["value"], rest)
    if head in tree["resources"]:
        return Made(str(scope.file.relative_to(INFRA.resolve())), head, rest)
    assert not rest, f"{head}.{'.'.join(rest)} names nothing in {scope.file.name}"
    return head  # a literal string


def _index(scope: Scope, value: Any, rest: tuple[str, ...]) -> Any:
    for i, key in enumerate(rest):
        if isinstance(value, Made):
            return Made(value.file, value.symbol, value.path + rest[i:])
        value = follow(scope, value[key])
    return value


def _split(dotted: str) -> tuple[str, tuple[str, ...]]:
    head, *rest = dotted.split(".")
    return head, tuple(rest)


def body(scope: Scope, symbol: str) -> dict[str, Any]:
    config = scope.tree["resources"][symbol]["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def real(scope: Scope, symbol: str) -> Made:
    """The resource an `existing` declaration names (its name followed to where the real one is made), else itself."""
    if not scope.tree["resources"][symbol].get("existing"):
        return Made(str(scope.file.relative_to(INFRA.resolve())), symbol)
    name = follow(scope, body(scope, symbol)["name"])
    assert isinstance(name, Made) and name.path == ("name",), f"{symbol}'s name is not another resource's: {name}"
    return Made(name.file, name.symbol)
