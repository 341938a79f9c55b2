"""Batch REST stand-in for tests: in-memory pools/jobs/tasks over HTTPS, checked against the 2025-06-01 spec."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.credentials import AccessToken

from shared.adapters.batch.azure import AzureBatchGateway
from tests.support.standin_nodes import NodeFilterError, PoolNodes, parse_node_filter
from tests.support.standin_spec import (  # noqa: F401 - re-exported for the tests
    API_VERSION,
    SPEC_DIR,
    SPEC_FILE,
    FilterError,
    SpecValidator,
    matches,
    parse_filter,
    parse_time,
)
from tests.support.standin_uploads import upload_outputs
from tests.support.tls_standin import TlsStandin

FAKE_TOKEN = "fake-batch-token"

def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeCredential:
    """A TokenCredential that hands out a fixed bearer token and records the scopes asked for."""

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


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
class BatchStandin(TlsStandin):
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
    nodes: dict[str, PoolNodes] = field(default_factory=dict)  # pool id -> its broken nodes and node files
    # Batch's TaskScheduleFailEvent bodies: a task that asks for more slots than the pool's nodes have stays queued
    schedule_failures: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.validate is None:
            self.validate = SPEC_FILE.is_file()
        self.validator = SpecValidator() if self.validate else None
        self._lock = threading.RLock()
        self._cursors: dict[str, _Cursor] = {}
        self._etags = itertools.count(0x8D4125FD1A825A4)
        self.handler = _Handler
        self.thread_name = "batch-standin"
        self._tls_init("batch-standin-")

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

    def break_node(self, pool_id: str, node_id: str, state: str = "starttaskfailed", *, exit_code: int | None = 100,
                   stderr: str = "", failure: tuple[str, str] | None = None,
                   errors: list[tuple[str, str]] | None = None) -> None:
        """One of the pool's current dedicated nodes goes bad: its start task failed, or it is unusable/unknown."""
        with self._lock:
            self.nodes.setdefault(pool_id, PoolNodes()).break_node(
                node_id, state, exit_code=exit_code, stderr=stderr, failure=failure, errors=errors, when=utcnow())

    def set_resize_error(self, pool_id: str, code: str, message: str, *, reached: int | None = None) -> None:
        """A resize ends short of its target (quota, allocation failure, timeout): steady, with resizeErrors."""
        with self._lock:
            pool = self.pools[pool_id]
            pool.update(allocationState="steady", allocationStateTransitionTime=iso(utcnow()),
                        resizeErrors=[{"code": code, "message": message}])
            if reached is not None:
                pool["currentDedicatedNodes"] = reached

    def settle(self, pool_id: str) -> None:
        """A stopped resize (or removal) is done: the pool is steady with the nodes it has."""
        self.set_pool(pool_id, allocationState="steady", allocationStateTransitionTime=iso(utcnow()))

    def start_deleting_pool(self, pool_id: str) -> None:
        """Someone deleted the pool: it stays (state deleting) until finish_deleting_pool."""
        self.set_pool(pool_id, state="deleting", stateTransitionTime=iso(utcnow()))

    def finish_deleting_pool(self, pool_id: str) -> None:
        with self._lock:
            self.pools.pop(pool_id, None)
            self.nodes.pop(pool_id, None)

    def start_task(self, job_id: str, task_id: str, at: dt.datetime) -> str:
        """A node picks the task up at `at` and downloads its resource files. A SAS URL expired by then fails
        the download (storage answers 403), and Batch completes the task as failed without a retry; returns the
        task's state afterwards ("running" or "completed"). A task asking for more slots than the pool's
        `taskSlotsPerNode` stays "active": Batch accepts it and never runs it ("Be sure you don't specify a task's
        requiredSlots to be greater than the pool's taskSlotsPerNode, or the task never runs. The Batch Service
        doesn't currently validate this conflict when you submit tasks": "Run tasks concurrently to maximize usage
        of Batch compute nodes"); it records a TaskScheduleFailEvent body (its published fields; no error code is
        published for this case), as Batch emits one each time it tries."""
        with self._lock:
            task = self.tasks[job_id][task_id]
            pool_id = self.jobs[job_id].get("poolInfo", {}).get("poolId", "")
            node_slots = self.pools.get(pool_id, {}).get("taskSlotsPerNode", 1)
            if task.get("requiredSlots", 1) > node_slots:
                self.schedule_failures.append({
                    "jobId": job_id, "id": task_id, "taskType": "User", "requiredSlots": task["requiredSlots"],
                    "nodeInfo": {"poolId": pool_id, "nodeId": " "}})  # Batch publishes no error code for it
                return task["state"]
            for rf in task.get("resourceFiles", []):
                expiry = parse_qs(urlsplit(rf.get("httpUrl", "")).query).get("se")
                if expiry and parse_time(expiry[0].replace("Z", "+00:00")) < at:
                    _transition(task, "completed", at, "failure", None,
                                ("BlobAccessDenied", "Access denied while downloading one of the specified "
                                 "Azure Blob(s)"), 0)
                    task["executionInfo"]["failureInfo"]["category"] = "usererror"
                    break
            else:
                _transition(task, "running", at, None, None, None, None)
            task["eTag"] = self._etag()
            return task["state"]

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

    def finish_task(self, job_id: str, task_id: str, files: dict[str, bytes], *, exit_code: int = 0,
                    retry_count: int | None = None, at: dt.datetime | None = None) -> list[str]:
        """The node finishes the task: the files it left (path relative to its working directory -> content) that
        match the task's output rules for this outcome are uploaded to storage with the rules' `uploadHeaders`,
        then the task completes (success on exit code 0); returns the blob names uploaded."""
        with self._lock:
            task = copy.deepcopy(self.tasks[job_id][task_id])
        written = upload_outputs(task, files, success=exit_code == 0)
        self.set_task(job_id, task_id, exit_code=exit_code, retry_count=retry_count, at=at)
        return written

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
        raw_file = isinstance(payload, bytes)
        data = b"" if payload is None else payload if raw_file else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("request-id", str(uuid.uuid4()))
        for name, value in headers.items():
            handler.send_header(name, value)
        if payload is not None:
            handler.send_header("Content-Type", "application/octet-stream" if raw_file
                                else "application/json;odata=minimalmetadata")
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
        except (FilterError, NodeFilterError) as exc:
            self.validation_errors.append(f"{r.method} {r.path}: {exc}")
            return 400, _error("InvalidQueryParameterValue", str(exc)), {}
        if op is not None and self.validator is not None and r.method != "HEAD" and not isinstance(payload, bytes):
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
        if len(seg) == 3 and seg[0] == "pools" and seg[2] == "stopresize" and m == "POST":
            return self._stop_resize(seg[1])
        if len(seg) == 3 and seg[0] == "pools" and seg[2] == "removenodes" and m == "POST":
            return self._remove_nodes(seg[1], r.body)
        if len(seg) == 3 and seg[0] == "pools" and seg[2] == "nodes" and m == "GET":
            return self._list_nodes(seg[1], r)
        if len(seg) >= 6 and seg[0] == "pools" and seg[2] == "nodes" and seg[4] == "files" and m == "GET":
            return self._node_file(seg[1], seg[3], unquote("/".join(seg[5:])))
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
        if len(seg) == 4 and seg[0] == "jobs" and seg[2] == "tasks" and m == "DELETE":
            return self._delete_task(seg[1], seg[3])
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
            value.append(self.nodes.get(pool_id, PoolNodes()).counts(pool, self.preempted.get(pool_id, 0)))
        return 200, {"value": value}, {}

    def _list_nodes(self, pool_id: str, r: Recorded) -> tuple[int, Any, dict[str, str]]:
        pool = self.pools.get(pool_id)
        if pool is None:
            return 404, _error("PoolNotFound", "The specified pool does not exist."), {}
        wanted = parse_node_filter(r.query.get("$filter"))
        select = r.query.get("$select")
        r.selected = bool(select)
        nodes = self.nodes.get(pool_id, PoolNodes()).listing(pool, wanted)
        return 200, {"value": [_select(n, select) for n in nodes]}, {}

    def _node_file(self, pool_id: str, node_id: str, path: str) -> tuple[int, Any, dict[str, str]]:
        data = self.nodes.get(pool_id, PoolNodes()).files.get((node_id, path))
        if data is None:
            return 404, _error("FileNotFound", "The specified file does not exist."), {}
        return 200, data, {"ocp-batch-file-isdirectory": "False"}

    def _remove_nodes(self, pool_id: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        pool = self.pools.get(pool_id)
        if pool is None:
            return 404, _error("PoolNotFound", "The specified pool does not exist."), {}
        if pool.get("allocationState") != "steady":
            return 409, _error("PoolNotSteady", "The specified pool is not in steady allocation state."), {}
        ids = body.get("nodeList", [])
        if len(ids) > 100:
            return 400, _error("InvalidPropertyValue", "At most 100 nodes may be removed per request."), {}
        unknown = self.nodes.setdefault(pool_id, PoolNodes()).remove(pool, ids)
        if unknown:
            return 400, _error("InvalidPropertyValue", f"Nodes not in the pool: {unknown}"), {}
        pool.update(allocationState="resizing", allocationStateTransitionTime=iso(utcnow()), eTag=self._etag())
        pool.pop("resizeErrors", None)
        return 202, None, {"ETag": pool["eTag"], "DataServiceId": pool["url"]}

    def _stop_resize(self, pool_id: str) -> tuple[int, Any, dict[str, str]]:
        pool = self.pools.get(pool_id)
        if pool is None:
            return 404, _error("PoolNotFound", "The specified pool does not exist."), {}
        if pool.get("allocationState") != "resizing":
            return 409, _error("PoolNotResizing", "The specified pool is not resizing."), {}
        pool.update(allocationState="stopping", allocationStateTransitionTime=iso(utcnow()), eTag=self._etag())
        return 202, None, {"ETag": pool["eTag"], "DataServiceId": pool["url"]}

    def _delete_task(self, job_id: str, task_id: str) -> tuple[int, Any, dict[str, str]]:
        if job_id not in self.jobs:
            return _job_not_found()
        if self.tasks[job_id].pop(task_id, None) is None:
            return 404, _error("TaskNotFound", "The specified task does not exist."), {}
        return 200, None, {}

    def _post_pool(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if self.pools.get(body["id"], {}).get("state") == "deleting":
            return 409, _error("PoolBeingDeleted", "The specified pool has been marked for deletion."), {}
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
        pool.pop("resizeErrors", None)  # a new resize starts without the previous one's errors
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
