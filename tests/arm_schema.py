"""ARM REST models from the azure-mgmt-* packages as property trees: which API versions a package knows for a resource
type, and what a request body (or a Bicep resource body) may contain at each path for that version."""

from __future__ import annotations

import functools
import importlib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
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


def _resolve(node: Any) -> Any:
    return node() if callable(node) and not isinstance(node, (Obj, ListOf, MapOf, Prim)) else node


# -- msrest models (_attribute_map) --------------------------------------------------------------------------
_PRIMS = {"str": "str", "int": "int", "long": "int", "float": "float", "bool": "bool", "object": "any",
          "iso-8601": "str", "duration": "str", "date": "str", "rfc-1123": "str", "unix-time": "int",
          "bytearray": "str", "base64": "str", "decimal": "float"}


def _msrest_type(text: str, models: Any) -> Any:
    if text.startswith("[") and text.endswith("]"):
        return ListOf(_msrest_type(text[1:-1], models))
    if text.startswith("{") and text.endswith("}"):
        return MapOf(_msrest_type(text[1:-1], models))
    if text in _PRIMS:
        return Prim(_PRIMS[text])
    cls = getattr(models, text, None)
    if cls is None:
        return Prim("str")  # an enum name
    return lambda: _msrest_obj(cls, models)


def _split_key(key: str) -> list[str]:
    return [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]


@functools.cache
def _msrest_obj_cached(cls: type, models_name: str) -> Obj:
    models = importlib.import_module(models_name)
    obj = Obj(cls.__name__)
    validation = getattr(cls, "_validation", {}) or {}
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
        target.fields[parts[-1]] = (_msrest_type(spec["type"], models), readonly)
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
        return _ts_type(models[0]) if models else Prim(_prim_name(args))
    if origin is list:
        return ListOf(_ts_type(args[0]) if args else Prim("any"))
    if origin is dict:
        return MapOf(_ts_type(args[1]) if len(args) > 1 else Prim("any"))
    if _is_rest_model(hint):
        return lambda: _ts_obj(hint)
    return Prim(_prim_name([hint]))


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


def _key(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == "'" else name


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    checked: int = 0  # property paths matched against the models


def validate(body: Any, node: Any, path: str = "", report: Report | None = None, *, json_types: bool = False,
             skip: set[str] = frozenset(), response: bool = False) -> Report:
    """Check `body` against a model tree: unknown names, wrong depth/shape, read-only properties (and with
    `json_types`, a real JSON body's primitive types; a `response` may carry read-only properties)."""
    report = report if report is not None else Report()
    node = _resolve(node)
    if is_expression(body):
        return report
    if not json_types and isinstance(body, str) and not isinstance(node, Prim):
        return report  # pycep renders a reference (`tags: tags`) as a bare string: its shape is not known here
    if isinstance(node, Obj):
        if not isinstance(body, dict):
            report.errors.append(f"{path or '<body>'}: expected an object ({node.name}), got {type(body).__name__}")
            return report
        variant = node
        if node.discriminator and node.variants:
            value = body.get(node.discriminator)
            if isinstance(value, str) and value in node.variants:
                variant = _resolve(node.variants[value]())
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
            report.errors.append(f"{path}: expected a list, got {type(body).__name__}")
            return report
        for i, item in enumerate(body):
            validate(item, node.item, f"{path}[{i}]", report, json_types=json_types, response=response)
    elif isinstance(node, MapOf):
        if not isinstance(body, dict):
            report.errors.append(f"{path}: expected a map, got {type(body).__name__}")
            return report
        for k, v in body.items():
            validate(v, node.value, f"{path}[{_key(k)}]", report, json_types=json_types, response=response)
    elif isinstance(node, Prim):
        if isinstance(body, (dict, list)) and node.kind != "any":
            report.errors.append(f"{path}: expected a {node.kind}, got {type(body).__name__}")
        elif json_types and body is not None and node.kind != "any":
            ok = {"str": isinstance(body, str), "bool": isinstance(body, bool),
                  "int": isinstance(body, int) and not isinstance(body, bool),
                  "float": isinstance(body, (int, float)) and not isinstance(body, bool)}[node.kind]
            if not ok:
                report.errors.append(f"{path}: expected a {node.kind}, got {body!r}")
    return report
