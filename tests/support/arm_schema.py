"""ARM REST models from the azure-mgmt-* packages as property trees: which API versions a package knows for a resource
type, and what a request body (or a Bicep resource body) may contain at each path for that version."""

from __future__ import annotations

import enum
import functools
import importlib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep.transformer import BicepElement

DATA = Path(__file__).resolve().parents[1] / "data"
MODELS_TABLE = DATA / "arm_models.json"

# Keys Bicep adds to a resource body that are not part of the REST body.
BICEP_KEYS = {"parent", "scope", "dependsOn", "depends_on", "name"}


# -- the tree ------------------------------------------------------------------------------------------------
@dataclass
class Obj:
    """An object: its REST property names, each with its node and whether the service sets it (read-only)."""

    name: str
    fields: dict[str, tuple[Any, bool]] = field(default_factory=dict)
    discriminator: str | None = None
    variants: dict[str, Any] = field(default_factory=dict)  # discriminator value -> thunk returning an Obj


@dataclass
class ListOf:
    item: Any


@dataclass
class MapOf:
    value: Any


@dataclass
class Prim:
    kind: str  # "str", "int", "float", "bool", "any"
    values: frozenset[str] = frozenset()  # an enum's known values (lower case: ARM compares them so), else empty
    enum: str = ""  # the enum's name, for messages


def _enum_prim(args: list[Any]) -> Prim | None:
    """`Union[str, SomeEnum]` (both SDK generations type an enum property so) -> a str with known values."""
    for a in args:
        if isinstance(a, type) and issubclass(a, enum.Enum):
            return Prim("str", frozenset(str(m.value).lower() for m in a), a.__name__)
    return None


def resolve(node: Any) -> Any:
    """A node of the tree, its thunk called if it is one (models refer to each other lazily)."""
    return node() if callable(node) and not isinstance(node, (Obj, ListOf, MapOf, Prim)) else node


# -- msrest models (_attribute_map) --------------------------------------------------------------------------
_PRIMS = {"str": "str", "int": "int", "long": "int", "float": "float", "bool": "bool", "object": "any",
          "iso-8601": "str", "duration": "str", "date": "str", "rfc-1123": "str", "unix-time": "int",
          "bytearray": "str", "base64": "str", "decimal": "float"}


def _msrest_type(text: str, models: Any, hint: Any = None) -> Any:
    if text.startswith("[") and text.endswith("]"):
        return ListOf(_msrest_type(text[1:-1], models, _inner(hint, list)))
    if text.startswith("{") and text.endswith("}"):
        return MapOf(_msrest_type(text[1:-1], models, _inner(hint, dict)))
    if text == "str" and hint is not None:
        found = _enum_prim(_union_args(hint))
        if found is not None:
            return found
    if text in _PRIMS:
        return Prim(_PRIMS[text])
    cls = getattr(models, text, None)
    if cls is None:
        return Prim("str")  # an enum name
    return lambda: _msrest_obj(cls, models)


def _union_args(hint: Any) -> list[Any]:
    return list(typing.get_args(hint)) if typing.get_origin(hint) is typing.Union else [hint]


def _inner(hint: Any, container: type) -> Any:
    """The item type of `list[...]` / value type of `dict[...]` inside an (optional) hint."""
    for a in _union_args(hint):
        if typing.get_origin(a) is container and typing.get_args(a):
            return typing.get_args(a)[-1]
    return None


def _init_hints(cls: type, models: Any) -> dict[str, Any]:
    """msrest models type their enums only in `__init__`'s keyword hints (`Union[str, "_models.Kind"]`)."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = vars(klass).get("__init__")
        if init is None:
            continue
        module = importlib.import_module(klass.__module__)
        try:
            hints.update(typing.get_type_hints(init, globalns={**vars(module), "_models": models}))
        except (NameError, TypeError, AttributeError):
            continue
    return hints


def _split_key(key: str) -> list[str]:
    return [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]


@functools.cache
def _msrest_obj_cached(cls: type, models_name: str) -> Obj:
    models = importlib.import_module(models_name)
    obj = Obj(cls.__name__)
    validation = getattr(cls, "_validation", {}) or {}
    hints = _init_hints(cls, models)
    for attr, spec in (getattr(cls, "_attribute_map", {}) or {}).items():
        parts = _split_key(spec["key"])
        readonly = bool(validation.get(attr, {}).get("readonly"))
        target = obj
        for part in parts[:-1]:
            node, ro = target.fields.get(part, (None, False))
            if not isinstance(node, Obj):
                node = Obj(f"{cls.__name__}.{part}")
                target.fields[part] = (node, False)
            target = node
        target.fields[parts[-1]] = (_msrest_type(spec["type"], models, hints.get(attr)), readonly)
    subtypes = getattr(cls, "_subtype_map", None) or {}
    for attr, mapping in subtypes.items():
        obj.discriminator = _split_key(cls._attribute_map[attr]["key"])[-1]
        for value, sub_name in mapping.items():
            sub = getattr(models, sub_name)
            obj.variants[value] = functools.partial(_msrest_obj, sub, models)
    return obj


def _msrest_obj(cls: type, models: Any) -> Obj:
    return _msrest_obj_cached(cls, models.__name__)


# -- typespec models (rest_field) ----------------------------------------------------------------------------
def _is_rest_model(cls: Any) -> bool:
    return isinstance(cls, type) and any(c.__name__ == "Model" and "model_base" in c.__module__ for c in cls.__mro__)


def _ts_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is typing.Union:
        models = [a for a in args if _is_rest_model(a) or typing.get_origin(a) in (list, dict)]
        return _ts_type(models[0]) if models else (_enum_prim(args) or Prim(_prim_name(args)))
    if origin is list:
        return ListOf(_ts_type(args[0]) if args else Prim("any"))
    if origin is dict:
        return MapOf(_ts_type(args[1]) if len(args) > 1 else Prim("any"))
    if _is_rest_model(hint):
        return lambda: _ts_obj(hint)
    return _enum_prim([hint]) or Prim(_prim_name([hint]))


def _prim_name(args: list[Any]) -> str:
    for a in args:
        if a is bool:
            return "bool"
        if a is int:
            return "int"
        if a is float:
            return "float"
    return "str" if any(a is str or (isinstance(a, type) and issubclass(a, str)) for a in args) else "any"


@functools.cache
def _ts_obj(cls: type) -> Obj:
    module = importlib.import_module(cls.__module__)
    models = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    hints = typing.get_type_hints(cls, globalns={**vars(module), "_models": models})
    obj = Obj(cls.__name__)
    for klass in reversed(cls.__mro__):
        for attr, rf in vars(klass).items():
            if attr.startswith("_") or not hasattr(rf, "_rest_name_input") or not hasattr(rf, "_visibility"):
                continue
            rest = rf._rest_name_input or attr
            readonly = rf._visibility == ["read"]
            obj.fields[rest] = (_ts_type(hints.get(attr, Any)), readonly)
            if getattr(rf, "_is_discriminator", False):
                obj.discriminator = rest
    mapping = getattr(cls, "__mapping__", None)
    if mapping:
        obj.variants = {value: functools.partial(_ts_obj, sub) for value, sub in mapping.items() if sub is not cls}
    return obj


def model_tree(cls: type) -> Obj:
    """The property tree of one azure-mgmt model class (either generation of the SDK)."""
    if _is_rest_model(cls):
        return _ts_obj(cls)
    return _msrest_obj(cls, importlib.import_module(cls.__module__.rsplit(".", 1)[0]))


# -- API versions and the model of each resource type ----------------------------------------------------------
_API = re.compile(r'"api-version",\s*"([0-9]{4}-[0-9]{2}-[0-9]{2}(?:-preview)?)"')
_URL = re.compile(r'"(/[^"\s]*\{[^"\s]*)"')


def _types_in_url(url: str) -> set[str]:
    if re.fullmatch(r"/subscriptions/\{[^}]+\}/resourcegroups/\{[^}]+\}", url, re.I):
        return {"microsoft.resources/resourcegroups"}
    if "/providers/" not in url:
        return set()
    tail = url.rsplit("/providers/", 1)[1].split("/")
    namespace, rest = tail[0], tail[1:]
    found = set()
    names = [rest[i] for i in range(0, len(rest), 2) if not rest[i].startswith("{")]
    for n in range(1, len(names) + 1):
        found.add(f"{namespace}/{'/'.join(names[:n])}".lower())
    return found


@functools.cache
def known_versions(package: str) -> dict[str, set[str]]:
    """Resource type (lower case) -> API versions the package's operations send for it."""
    root = Path(list(importlib.import_module(f"azure.mgmt.{package}").__path__)[0])
    out: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        if "operations" not in path.parts:
            continue
        text = path.read_text()
        versions = set(_API.findall(text))
        if not versions:
            continue
        for url in _URL.findall(text):
            for t in _types_in_url(url):
                out.setdefault(t, set()).update(versions)
    return out


@functools.cache
def models_table() -> dict[str, dict[str, str]]:
    return json.loads(MODELS_TABLE.read_text())["types"]


def model_for(resource_type: str, api_version: str) -> tuple[type | None, str | None]:
    """(model class, None) for a type@version the SDK knows, else (None, why not)."""
    entry = models_table().get(resource_type)
    if entry is None:
        return None, f"{resource_type}: no azure-mgmt model listed for this type in {MODELS_TABLE.name}"
    package = entry["package"]
    top = package.split(".")[0]
    versions = known_versions(package).get(resource_type.lower(), set())
    if api_version not in versions:
        return None, (f"{resource_type}@{api_version}: API version unknown to azure-mgmt-{top} "
                      f"(it knows {', '.join(sorted(versions)) or 'none'})")
    folder = "v" + api_version.replace("-", "_")
    try:
        models = importlib.import_module(f"azure.mgmt.{package}.{folder}.models")
    except ModuleNotFoundError:
        models = importlib.import_module(f"azure.mgmt.{package}.models")
    cls = getattr(models, entry["model"], None)
    if cls is None:
        return None, f"{resource_type}@{api_version}: {models.__name__} has no {entry['model']}"
    return cls, None


# -- validation --------------------------------------------------------------------------------------------------
def is_expression(value: Any) -> bool:
    """A Bicep expression as pycep renders it (function call, operator, loop): its shape is not known statically."""
    return isinstance(value, dict) and bool(value) and (
        set(value) <= {"function", "operator"} or "loop_type" in value or set(value) == {"condition", "config"}
    )


def is_reference(value: Any) -> bool:
    """A bare identifier in Bicep (`kind: storageKind`): pycep keeps it a BicepElement, apart from a 'literal'."""
    return isinstance(value, BicepElement)


def alternatives(value: Any) -> list[Any] | None:
    """The values a Bicep expression is written to take: both branches of `c ? a : b` and every argument of
    `union(...)` (each is checked against the same model); None when nothing is known statically."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if "function" in value and isinstance(value["function"], dict) and value["function"].get("type") == "union":
        return list((value["function"].get("parameters") or {}).values())
    op = value.get("operator")
    while isinstance(op, dict):
        operands = op.get("operands") or {}
        if op.get("type") == "conditional":
            return [operands.get("true_value"), operands.get("false_value")]
        # pycep binds `a == b ? x : y` as `a == (b ? x : y)`: the conditional ends the chain of last operands.
        last = list(operands.values())[-1] if operands else None
        op = last.get("operator") if isinstance(last, dict) and set(last) == {"operator"} else None
    return None


def _key(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == "'" else name


_PRIM_OK = {"str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    checked: int = 0  # property paths matched against the models


def validate(body: Any, node: Any, path: str = "", report: Report | None = None, *, json_types: bool = False,
             skip: set[str] = frozenset(), response: bool = False) -> Report:
    """Check `body` against a model tree: unknown names, wrong depth/shape, read-only properties, primitive types
    and enum values. A Bicep body (not `json_types`) may hold references and expressions: a reference is not
    checked, a conditional's branches and union()'s arguments are; a `response` may carry read-only properties."""
    report = report if report is not None else Report()
    node = resolve(node)
    if body is None:
        return report  # null: the property is left out
    if not json_types:
        branches = alternatives(body)
        if branches is not None:
            for branch in branches:
                validate(branch, node, path, report, response=response)
            return report
        if isinstance(body, dict) and "loop_type" in body and isinstance(node, ListOf):
            return validate(body.get("config"), node.item, f"{path}[]", report, response=response)
        if is_expression(body) or is_reference(body):
            return report
    if isinstance(node, Obj):
        if not isinstance(body, dict):
            report.errors.append(f"{path or '<body>'}: expected an object ({node.name}), got {body!r}")
            return report
        variant = node
        if node.discriminator and node.variants:
            value = body.get(node.discriminator)
            if isinstance(value, str) and value in node.variants:
                variant = resolve(node.variants[value]())
        for raw, value in body.items():
            key = _key(raw)
            if not path and key in skip:
                continue
            sub = f"{path}.{key}" if path else key
            if key not in variant.fields:
                known = ", ".join(sorted(variant.fields)) or "none"
                report.errors.append(f"{sub}: not a property of {variant.name} (it has: {known})")
                continue
            child, readonly = variant.fields[key]
            report.checked += 1
            if readonly and not response and key != variant.discriminator:
                report.errors.append(f"{sub}: read-only in {variant.name} (set by the service)")
                continue
            validate(value, child, sub, report, json_types=json_types, response=response)
    elif isinstance(node, ListOf):
        if not isinstance(body, list):
            report.errors.append(f"{path}: expected a list, got {body!r}")
            return report
        for i, item in enumerate(body):
            validate(item, node.item, f"{path}[{i}]", report, json_types=json_types, response=response)
    elif isinstance(node, MapOf):
        if not isinstance(body, dict):
            report.errors.append(f"{path}: expected a map, got {body!r}")
            return report
        for k, v in body.items():
            validate(v, node.value, f"{path}[{_key(k)}]", report, json_types=json_types, response=response)
    elif isinstance(node, Prim) and node.kind != "any":
        _check_prim(body, node, path, report, interpolated=not json_types and isinstance(body, str) and "${" in body)
    return report


def _check_prim(body: Any, node: Prim, path: str, report: Report, *, interpolated: bool) -> None:
    """A literal's JSON type, and an enum's value among the SDK's known values (ARM compares them ignoring case)."""
    if not _PRIM_OK[node.kind](body):
        report.errors.append(f"{path}: expected a {node.kind}, got {body!r}")
    elif node.values and not interpolated and body.lower() not in node.values:
        report.errors.append(f"{path}: {body!r} is not a known {node.enum} (known: {', '.join(sorted(node.values))})")
