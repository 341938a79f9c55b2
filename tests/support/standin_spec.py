"""The Batch stand-in's checks: request/response bodies against the 2025-06-01 REST spec, and List Tasks $filter."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema

API_VERSION = "2025-06-01"
SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "specs"
SPEC_FILE = SPEC_DIR / f"batch-{API_VERSION}.json"

# Properties Batch accepts in a List Tasks $filter (learn.microsoft.com/rest/api/batchservice/odata-filters-in-batch).
TASK_FILTER_PROPS = {
    "state": "string",
    "stateTransitionTime": "datetime",
    "creationTime": "datetime",
    "executionInfo/result": "string",
    "executionInfo/exitCode": "int",
    "executionInfo/startTime": "datetime",
    "executionInfo/endTime": "datetime",
    "executionInfo/retryCount": "int",
    "executionInfo/requeueCount": "int",
}
_DURATION = re.compile(r"^-?P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+(\.\d+)?D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_CLAUSE = re.compile(
    r"^\(?\s*([A-Za-z]+(?:/[A-Za-z]+)?)\s+(eq|ne|ge|gt|le|lt)\s+(datetime'[^']*'|'[^']*'|-?\d+)\s*\)?$",
    re.IGNORECASE,
)


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class FilterError(ValueError):
    """The $filter is outside what Batch (or this stand-in) accepts."""


# --------------------------------------------------------------------------------------------------
# Spec validation


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if isinstance(value, str):
            parse_time(value)
        return True

    @checker.checks("duration")
    def _duration(value: object) -> bool:
        return not isinstance(value, str) or bool(_DURATION.match(value))

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlparse(value)
        return bool(parts.scheme and parts.netloc) and not re.search(r"[\s\x00-\x1f]", value)

    @checker.checks("int32")
    def _int32(value: object) -> bool:
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    return checker


def _strict(definitions: dict[str, Any], *, drop_required: bool) -> dict[str, Any]:
    """Definitions with unknown properties rejected (Batch rejects them too); optionally nothing required."""
    defs = copy.deepcopy(definitions)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            if drop_required:
                node.pop("required", None)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(defs)
    return defs


@dataclass
class Operation:
    operation_id: str
    method: str
    pattern: re.Pattern[str]
    body_schema: dict[str, Any] | None
    responses: dict[str, dict[str, Any] | None]


class SpecValidator:
    """The spec's operations, with jsonschema validators for request bodies and responses ($refs resolved)."""

    def __init__(self, spec_file: Path = SPEC_FILE) -> None:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        self._defs = _strict(spec["definitions"], drop_required=False)
        self._defs_relaxed = _strict(spec["definitions"], drop_required=True)
        self._checker = _format_checker()
        self._cache: dict[tuple[str, bool], jsonschema.protocols.Validator] = {}
        self.operations: list[Operation] = []
        for path, item in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            for method, op in item.items():
                if method == "parameters":
                    continue
                body = next((p.get("schema") for p in op.get("parameters", []) if p.get("in") == "body"), None)
                responses = {code: r.get("schema") for code, r in op.get("responses", {}).items()}
                self.operations.append(Operation(op["operationId"], method.upper(), pattern, body, responses))

    def operation(self, method: str, path: str) -> Operation | None:
        return next((o for o in self.operations if o.method == method and o.pattern.match(path)), None)

    def errors(self, schema: dict[str, Any], instance: Any, *, relaxed: bool = False) -> list[str]:
        key = (json.dumps(schema, sort_keys=True), relaxed)
        validator = self._cache.get(key)
        if validator is None:
            root = {**schema, "definitions": self._defs_relaxed if relaxed else self._defs}
            validator = jsonschema.Draft4Validator(root, format_checker=self._checker)
            self._cache[key] = validator
        return [
            f"{'/'.join(str(p) for p in err.absolute_path) or '<body>'}: {err.message}"
            for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
        ]

    def request_errors(self, op: Operation, body: Any) -> list[str]:
        if op.body_schema is None:
            return [] if body is None else [f"{op.operation_id} takes no body"]
        if body is None:
            return [f"{op.operation_id} needs a body"]
        return self.errors(op.body_schema, body)

    def response_errors(self, op: Operation, status: int, body: Any, *, selected: bool) -> list[str]:
        code = str(status)
        if code in op.responses:
            schema = op.responses[code]
        elif status >= 400:
            schema = op.responses.get("default")
        else:
            return [f"{op.operation_id} does not answer {status}"]
        if schema is None:
            return [] if body is None else [f"{op.operation_id} {status} has no body in the spec"]
        if body is None:
            return [f"{op.operation_id} {status} needs a body"]
        return self.errors(schema, body, relaxed=selected)


def parse_filter(text: str) -> list[tuple[str, str, Any]]:
    """The $filter subset Batch takes for List Tasks: clauses joined by 'and' (no 'or', no functions)."""
    text = text.strip()
    if not text:
        return []
    if re.search(r"\s+or\s+", text, re.IGNORECASE):
        raise FilterError(f"the stand-in does not implement 'or' in $filter: {text!r}")
    clauses = []
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        m = _CLAUSE.match(part.strip())
        if not m:
            raise FilterError(f"cannot parse $filter clause {part!r}")
        prop, op, literal = m.group(1), m.group(2).lower(), m.group(3)
        kind = TASK_FILTER_PROPS.get(prop)
        if kind is None:
            raise FilterError(f"property {prop!r} cannot be filtered in List Tasks")
        value: Any
        if kind == "datetime":
            if not literal.lower().startswith("datetime'"):
                raise FilterError(f"{prop} needs a datetime'...' literal, got {literal}")
            try:
                value = parse_time(literal[len("datetime'") : -1])
            except ValueError as exc:
                raise FilterError(f"bad datetime literal {literal}") from exc
        elif kind == "int":
            if not re.fullmatch(r"-?\d+", literal):
                raise FilterError(f"{prop} needs an integer, got {literal}")
            value = int(literal)
        else:
            if not literal.startswith("'"):
                raise FilterError(f"{prop} needs a quoted string, got {literal}")
            if op not in ("eq", "ne"):
                raise FilterError(f"{prop} allows only eq and ne")
            value = literal[1:-1].lower()
        clauses.append((prop, op, value))
    return clauses


def matches(task: dict[str, Any], clauses: list[tuple[str, str, Any]]) -> bool:
    for prop, op, value in clauses:
        current: Any = task
        for key in prop.split("/"):
            current = current.get(key) if isinstance(current, dict) else None
        if current is None:
            return False
        kind = TASK_FILTER_PROPS[prop]
        if kind == "datetime":
            current = parse_time(current)
        elif kind == "string":
            current = str(current).lower()
        ok = {
            "eq": current == value,
            "ne": current != value,
            "ge": current >= value,
            "gt": current > value,
            "le": current <= value,
            "lt": current < value,
        }[op]
        if not ok:
            return False
    return True
