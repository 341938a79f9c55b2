"""Batch REST stand-in for tests: in-memory pools/jobs/tasks over HTTPS, checked against the 2025-06-01 spec."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlparse, urlsplit

import jsonschema
import trustme
from azure.core.credentials import AccessToken

from shared.batch.azure import AzureBatchGateway

API_VERSION = "2025-06-01"
SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "specs"
SPEC_FILE = SPEC_DIR / f"batch-{API_VERSION}.json"
FAKE_TOKEN = "fake-batch-token"

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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class FakeCredential:
    """A TokenCredential that hands out a fixed bearer token and records the scopes asked for."""

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


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


# --------------------------------------------------------------------------------------------------
# The service


@dataclass
class Recorded:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int = 0
    selected: bool = False  # the response carries only $select-ed properties (also on nextLink pages)


@dataclass
class Fault:
    """Answer the next `times` requests matching method/path with `status` (after recording them)."""

    status: int
    path: str
    method: str | None
    times: int
    code: str
    retry_after: str | None = None


@dataclass
class _Cursor:
    job_id: str
    ids: list[str]
    select: list[str] | None
    offset: int
    page_size: int


@dataclass
class BatchStandin:
    """An in-memory Batch account served over HTTPS on 127.0.0.1 (free port) with a trustme CA."""

    page_size: int = 1000
    require_auth: bool = True
    validate: bool | None = None  # None: validate when the spec folder exists
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    validation_errors: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    preempted: dict[str, int] = field(default_factory=dict)  # pool id -> Spot nodes preempted (still in the pool)

    def __post_init__(self) -> None:
        if self.validate is None:
            self.validate = SPEC_FILE.is_file()
        self.validator = SpecValidator() if self.validate else None
        self._lock = threading.RLock()
        self._cursors: dict[str, _Cursor] = {}
        self._etags = itertools.count(0x8D4125FD1A825A4)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="batch-standin-")
        self.ca = trustme.CA()
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.url = ""

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> BatchStandin:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.standin = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="batch-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers -----------------------------------------------------------------------------------

    def gateway(self, credential: Any = None, **fields: Any) -> AzureBatchGateway:
        """The real Azure adapter pointed at this stand-in: its test CA, a fake token, fast retries."""
        fields.setdefault("vm_size", "standard_d2s_v3")
        return AzureBatchGateway(
            account_url=self.url, credential=credential or FakeCredential(), connection_verify=self.ca_path,
            retry_backoff_factor=0.01, retry_backoff_max=0, **fields,
        )

    def fail_next(
        self,
        status: int,
        *,
        path: str = "",
        method: str | None = None,
        times: int = 1,
        code: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """The next `times` requests whose path starts with `path` (and method matches) get `status`."""
        default = {401: "AuthenticationFailed", 403: "Forbidden", 429: "TooManyRequests", 500: "InternalServerError",
                   503: "ServerBusy"}.get(status, "InjectedFault")
        with self._lock:
            self.faults.append(Fault(status, path, method.upper() if method else None, times, code or default,
                                     retry_after))

    def sent(self, method: str | None = None, path: str | None = None, *, prefix: str | None = None) -> list[Recorded]:
        """Recorded requests, filtered by method, exact path or path prefix."""
        with self._lock:
            return [
                r for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or r.path == path)
                and (prefix is None or r.path.startswith(prefix))
            ]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def add_pool(self, pool_id: str, **fields: Any) -> dict[str, Any]:
        """A pool made outside the gateway (infrastructure as code), e.g. with a managed identity."""
        body = {
            "id": pool_id,
            "vmSize": "standard_d2s_v3",
            "taskSlotsPerNode": 1,
            "targetDedicatedNodes": 0,
            **fields,
        }
        with self._lock:
            return self._create_pool(body)

    def set_pool(self, pool_id: str, **fields: Any) -> None:
        with self._lock:
            self.pools[pool_id].update(fields)

    def set_pool_resizing(self, pool_id: str) -> None:
        self.set_pool(pool_id, allocationState="resizing", allocationStateTransitionTime=iso(utcnow()))

    def finish_resize(self, pool_id: str) -> None:
        with self._lock:
            pool = self.pools[pool_id]
            pool.update(
                allocationState="steady",
                allocationStateTransitionTime=iso(utcnow()),
                currentDedicatedNodes=pool.get("targetDedicatedNodes", 0),
                currentLowPriorityNodes=pool.get("targetLowPriorityNodes", 0),
            )

    def set_task(
        self,
        job_id: str,
        task_id: str,
        *,
        state: str = "completed",
        result: str | None = None,
        exit_code: int | None = None,
        failure: tuple[str, str] | None = None,
        retry_count: int | None = None,
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Move a task to a state; completed tasks get a result (success when exit code is 0)."""
        with self._lock:
            task = self.tasks[job_id][task_id]
            _transition(task, state, at or utcnow(), result, exit_code, failure, retry_count)
            task["eTag"] = self._etag()
            return task

    def bulk_load(
        self,
        job_id: str,
        count: int,
        *,
        prefix: str = "bulk",
        state: str = "completed",
        result: str | None = "success",
        at: dt.datetime | None = None,
    ) -> list[str]:
        """Add `count` tasks directly (no requests), e.g. a 5,000-task job; returns their ids."""
        when = at or utcnow()
        ids = []
        with self._lock:
            tasks = self.tasks.setdefault(job_id, {})
            for i in range(count):
                task_id = f"{prefix}-{i:05d}"
                task = self._new_task(job_id, {"id": task_id, "commandLine": "true"}, when)
                if state != "active":
                    _transition(task, state, when, result, None if result is None else int(result == "failure"),
                                None, 0)
                tasks[task_id] = task
                ids.append(task_id)
        return ids

    # -- entities ---------------------------------------------------------------------------------------

    def _etag(self) -> str:
        return f"0x{next(self._etags):X}"

    def _common(self, kind: str, entity_id: str, when: dt.datetime) -> dict[str, Any]:
        return {
            "url": f"{self.url}/{kind}/{entity_id}",
            "eTag": self._etag(),
            "lastModified": iso(when),
            "creationTime": iso(when),
            "state": "active",
            "stateTransitionTime": iso(when),
        }

    def _create_pool(self, body: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        pool = {
            **body,
            **self._common("pools", body["id"], now),
            "allocationState": "steady",
            "allocationStateTransitionTime": iso(now),
            "resizeTimeout": body.get("resizeTimeout", "PT15M"),
            "targetDedicatedNodes": body.get("targetDedicatedNodes", 0),
            "targetLowPriorityNodes": body.get("targetLowPriorityNodes", 0),
            "currentDedicatedNodes": body.get("targetDedicatedNodes", 0),
            "currentLowPriorityNodes": body.get("targetLowPriorityNodes", 0),
            "enableAutoScale": body.get("enableAutoScale", False),
            "taskSlotsPerNode": body.get("taskSlotsPerNode", 1),
        }
        self.pools[body["id"]] = pool
        return pool

    def _new_task(self, job_id: str, body: dict[str, Any], when: dt.datetime) -> dict[str, Any]:
        constraints = {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "retentionTime": "P7D",
                       "maxTaskRetryCount": 0, **body.get("constraints", {})}
        return {
            **body,
            **self._common(f"jobs/{job_id}/tasks", body["id"], when),
            "constraints": constraints,
            "requiredSlots": body.get("requiredSlots", 1),
            "executionInfo": {"retryCount": 0, "requeueCount": 0},
        }

    # -- request handling -------------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        method = handler.command.upper()
        body: Any = None
        bad_json = ""
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                bad_json = f"{method} {path}: body is not JSON: {exc}"
        record = Recorded(method, path, query, body, {k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(record)
            status, payload, headers = self._respond(record, bad_json)
            record.status = status
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("request-id", str(uuid.uuid4()))
        for name, value in headers.items():
            handler.send_header(name, value)
        if payload is not None:
            handler.send_header("Content-Type", "application/json;odata=minimalmetadata")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method != "HEAD" and data:
            handler.wfile.write(data)

    def _fault_for(self, r: Recorded) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and r.path.startswith(fault.path) and fault.method in (None, r.method):
                fault.times -= 1
                return fault
        return None

    def _respond(self, r: Recorded, bad_json: str) -> tuple[int, Any, dict[str, str]]:
        fault = self._fault_for(r)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return fault.status, _error(fault.code, f"Injected fault {fault.status}"), headers
        if self.require_auth and not r.headers.get("authorization"):
            return 401, _error("AuthenticationFailed", "Server failed to authenticate the request."), {}
        if r.query.get("api-version") != API_VERSION:
            self.validation_errors.append(f"{r.method} {r.path}: api-version={r.query.get('api-version')!r}")
            return 400, _error("InvalidQueryParameterValue", "Unsupported api-version"), {}
        if bad_json:
            self.validation_errors.append(bad_json)
            return 400, _error("InvalidRequestBody", bad_json), {}
        op = self.validator.operation(r.method, r.path) if self.validator else None
        if self.validator and op is None:
            self.validation_errors.append(f"{r.method} {r.path}: no such operation in the spec")
            return 404, _error("InvalidUri", "The requested URI does not represent any resource"), {}
        if op is not None and self.validator is not None:
            problems = self.validator.request_errors(op, r.body)
            if problems:
                self.validation_errors.extend(f"{op.operation_id} request: {p}" for p in problems)
                return 400, _error("InvalidRequestBody", "; ".join(problems)), {}
        try:
            status, payload, headers = self._route(r)
        except FilterError as exc:
            self.validation_errors.append(f"{r.method} {r.path}: {exc}")
            return 400, _error("InvalidQueryParameterValue", str(exc)), {}
        if op is not None and self.validator is not None and r.method != "HEAD":
            selected = r.selected or "$select" in r.query
            problems = self.validator.response_errors(op, status, payload, selected=selected)
            self.validation_errors.extend(f"{op.operation_id} response {status}: {p}" for p in problems)
        return status, payload, headers

    def _route(self, r: Recorded) -> tuple[int, Any, dict[str, str]]:
        seg = r.path.strip("/").split("/")
        m = r.method
        if seg == ["pools"] and m == "POST":
            return self._post_pool(r.body)
        if len(seg) == 2 and seg[0] == "pools" and m in ("GET", "HEAD"):
            pool = self.pools.get(seg[1])
            if pool is None:
                return 404, _error("PoolNotFound", "The specified pool does not exist."), {}
            return 200, _select(pool, r.query.get("$select")), {"ETag": pool["eTag"]}
        if seg == ["nodecounts"] and m == "GET":
            return self._node_counts(r.query.get("$filter"))
        if len(seg) == 3 and seg[0] == "pools" and seg[2] == "resize" and m == "POST":
            return self._resize(seg[1], r.body)
        if seg == ["jobs"] and m == "POST":
            return self._post_job(r.body)
        if len(seg) == 2 and seg[0] == "jobs" and m == "GET":
            job = self.jobs.get(seg[1])
            if job is None:
                return _job_not_found()
            return 200, _select(job, r.query.get("$select")), {"ETag": job["eTag"]}
        if len(seg) == 3 and seg[0] == "jobs" and seg[2] == "taskcounts" and m == "GET":
            return self._task_counts(seg[1])
        if len(seg) == 3 and seg[0] == "jobs" and seg[2] == "tasks" and m == "POST":
            return self._post_task(seg[1], r.body)
        if len(seg) == 3 and seg[0] == "jobs" and seg[2] == "addtaskcollection" and m == "POST":
            return self._post_task_collection(seg[1], r.body)
        if len(seg) == 3 and seg[0] == "jobs" and seg[2] == "tasks" and m == "GET":
            return self._list_tasks(seg[1], r)
        if len(seg) == 5 and seg[0] == "jobs" and seg[2] == "tasks" and seg[4] == "terminate" and m == "POST":
            return self._terminate_task(seg[1], seg[3])
        if len(seg) == 4 and seg[0] == "jobs" and seg[2] == "tasks" and m == "GET":
            task = self.tasks.get(seg[1], {}).get(seg[3])
            if task is None:
                return 404, _error("TaskNotFound", "The specified task does not exist."), {}
            return 200, _select(task, r.query.get("$select")), {"ETag": task["eTag"]}
        self.validation_errors.append(f"{m} {r.path}: the stand-in does not implement this operation")
        return 404, _error("InvalidUri", "Not implemented by the stand-in"), {}

    def _node_counts(self, filter_text: str | None) -> tuple[int, Any, dict[str, str]]:
        wanted = None
        if filter_text:
            match = re.fullmatch(r"poolId eq '([^']*)'", filter_text.strip())
            if match is None:
                raise FilterError(f"unsupported node-counts $filter {filter_text!r}")
            wanted = match.group(1)
        value = []
        for pool_id, pool in self.pools.items():
            if wanted is not None and pool_id.lower() != wanted.lower():
                continue
            spot = pool.get("currentLowPriorityNodes", 0)
            preempted = min(self.preempted.get(pool_id, 0), spot)
            value.append({
                "poolId": pool_id,
                "dedicated": _node_state_counts(idle=pool.get("currentDedicatedNodes", 0)),
                "lowPriority": _node_state_counts(idle=spot - preempted, preempted=preempted),
            })
        return 200, {"value": value}, {}

    def _post_pool(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if body["id"] in self.pools:
            return 409, _error("PoolExists", "The specified pool already exists."), {}
        pool = self._create_pool(body)
        return 201, None, {"ETag": pool["eTag"], "DataServiceId": pool["url"], "Location": pool["url"]}

    def _resize(self, pool_id: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        pool = self.pools.get(pool_id)
        if pool is None:
            return 404, _error("PoolNotFound", "The specified pool does not exist."), {}
        if pool.get("enableAutoScale"):
            return 409, _error("AutoScalingEnabled", "The pool has autoscale enabled."), {}
        if pool.get("allocationState") != "steady":
            return 409, _error("PoolNotSteady", "The specified pool is not in steady allocation state."), {}
        pool["targetDedicatedNodes"] = body.get("targetDedicatedNodes", pool["targetDedicatedNodes"])
        pool["targetLowPriorityNodes"] = body.get("targetLowPriorityNodes", pool["targetLowPriorityNodes"])
        pool["allocationState"] = "resizing"
        pool["allocationStateTransitionTime"] = iso(utcnow())
        pool["eTag"] = self._etag()
        return 202, None, {"ETag": pool["eTag"], "DataServiceId": pool["url"]}

    def _post_job(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if body["id"] in self.jobs:
            return 409, _error("JobExists", "The specified job already exists."), {}
        job = {"priority": 0, "onAllTasksComplete": "noaction", "onTaskFailure": "noaction", **body,
               **self._common("jobs", body["id"], utcnow())}
        self.jobs[body["id"]] = job
        self.tasks.setdefault(body["id"], {})
        return 201, None, {"ETag": job["eTag"], "DataServiceId": job["url"]}

    def _post_task(self, job_id: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if job_id not in self.jobs:
            return _job_not_found()
        tasks = self.tasks.setdefault(job_id, {})
        if body["id"] in tasks:
            return 409, _error("TaskExists", "The specified task already exists."), {}
        task = self._new_task(job_id, body, utcnow())
        tasks[body["id"]] = task
        return 201, None, {"ETag": task["eTag"], "DataServiceId": task["url"]}

    def _terminate_task(self, job_id: str, task_id: str) -> tuple[int, Any, dict[str, str]]:
        if job_id not in self.jobs:
            return _job_not_found()
        task = self.tasks[job_id].get(task_id)
        if task is None:
            return 404, _error("TaskNotFound", "The specified task does not exist."), {}
        if task["state"] == "completed":
            return 409, _error("TaskCompleted", "The specified task is already completed."), {}
        _transition(task, "completed", utcnow(), "failure", None,
                    ("TaskEnded", "Task Was Ended by User Request"), None)
        task["eTag"] = self._etag()
        return 204, None, {"ETag": task["eTag"]}

    def _post_task_collection(self, job_id: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if job_id not in self.jobs:
            return _job_not_found()
        results = []
        for item in body.get("value", []):
            status, payload, _ = self._post_task(job_id, item)
            entry: dict[str, Any] = {"status": "success" if status == 201 else "clienterror", "taskId": item["id"]}
            if status == 201:
                task = self.tasks[job_id][item["id"]]
                entry.update(eTag=task["eTag"], lastModified=task["lastModified"], location=task["url"])
            else:
                entry["error"] = payload
            results.append(entry)
        return 200, {"value": results}, {}

    def _task_counts(self, job_id: str) -> tuple[int, Any, dict[str, str]]:
        if job_id not in self.jobs:
            return _job_not_found()
        counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
        slots = dict(counts)
        for task in self.tasks.get(job_id, {}).values():
            state = "running" if task["state"] == "preparing" else task["state"]
            keys = [state]
            if state == "completed":
                keys.append("failed" if task.get("executionInfo", {}).get("result") == "failure" else "succeeded")
            for key in keys:
                counts[key] += 1
                slots[key] += task.get("requiredSlots", 1)
        return 200, {"taskCounts": counts, "taskSlotCounts": slots}, {}

    def _list_tasks(self, job_id: str, r: Recorded) -> tuple[int, Any, dict[str, str]]:
        query = r.query
        token = query.get("$skiptoken")
        if token:
            cursor = self._cursors.pop(token, None)
            if cursor is None:
                raise FilterError(f"unknown $skiptoken {token!r}")
        else:
            if job_id not in self.jobs:
                return _job_not_found()
            clauses = parse_filter(query.get("$filter", ""))
            ids = [t["id"] for t in self.tasks.get(job_id, {}).values() if matches(t, clauses)]
            select = [s.strip() for s in query["$select"].split(",")] if query.get("$select") else None
            size = min(int(query.get("maxresults") or 1000), 1000, self.page_size)
            cursor = _Cursor(job_id, ids, select, 0, size)
        r.selected = bool(cursor.select)
        tasks = self.tasks.get(cursor.job_id, {})
        page_ids = cursor.ids[cursor.offset : cursor.offset + cursor.page_size]
        value = [_select(tasks[i], ",".join(cursor.select) if cursor.select else None) for i in page_ids if i in tasks]
        payload: dict[str, Any] = {"value": value}
        if cursor.offset + cursor.page_size < len(cursor.ids):
            token = uuid.uuid4().hex
            self._cursors[token] = _Cursor(cursor.job_id, cursor.ids, cursor.select,
                                           cursor.offset + cursor.page_size, cursor.page_size)
            payload["odata.nextLink"] = f"{self.url}/jobs/{cursor.job_id}/tasks?api-version={API_VERSION}" \
                f"&$skiptoken={token}"
        return 200, payload, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        self.server.standin.handle(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --------------------------------------------------------------------------------------------------
# Pure helpers


def _node_state_counts(**states: int) -> dict[str, int]:
    names = ("creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
             "startTaskFailed", "leavingPool", "unknown", "unusable", "waitingForStartTask", "deallocated",
             "deallocating", "upgradingOS")
    counts = {name: states.get(name, 0) for name in names}
    counts["total"] = sum(counts.values())
    return counts


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": {"lang": "en-US", "value": f"{message}\nRequestId:{uuid.uuid4()}\n"
                                                               f"Time:{iso(utcnow())}"}}


def _job_not_found() -> tuple[int, Any, dict[str, str]]:
    return 404, _error("JobNotFound", "The specified job does not exist."), {}


def _select(entity: dict[str, Any], select: str | None) -> dict[str, Any]:
    entity = copy.deepcopy(entity)
    if not select:
        return entity
    wanted = [s.strip() for s in select.split(",") if s.strip()]
    return {k: entity[k] for k in wanted if k in entity}


def _transition(
    task: dict[str, Any],
    state: str,
    when: dt.datetime,
    result: str | None,
    exit_code: int | None,
    failure: tuple[str, str] | None,
    retry_count: int | None,
) -> None:
    task["previousState"] = task["state"]
    task["previousStateTransitionTime"] = task["stateTransitionTime"]
    task["state"] = state
    task["stateTransitionTime"] = iso(when)
    task["lastModified"] = iso(when)
    info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
    if retry_count is not None:
        info["retryCount"] = retry_count
    if state in ("running", "completed"):
        info.setdefault("startTime", iso(when - dt.timedelta(seconds=5)))
    if state == "completed":
        if result is None:
            result = "failure" if failure or (exit_code not in (None, 0)) else "success"
        info["endTime"] = iso(when)
        info["result"] = result
        if exit_code is not None:
            info["exitCode"] = exit_code
        if failure is not None:
            info["failureInfo"] = {"category": "usererror", "code": failure[0], "message": failure[1]}
        elif result == "failure":
            info["failureInfo"] = {"category": "usererror", "code": "FailureExitCode",
                                   "message": "The task process exited with an unexpected exit code"}


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
