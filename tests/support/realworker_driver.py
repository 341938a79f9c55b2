"""Runs under .venv-worker (Python 3.12): the realhost harness driving the real Functions worker, a command a line.

Started by tests/support/realworker.py as `python realworker_driver.py REALWORKER_DIR WORKER_SOURCE APP_DIR`.
Commands (JSON) on stdin, one JSON answer each on the original stdout (what the harness and worker print: stderr):
  {"op": "load"}                                  -> {"functions": [names], "worker_pid": pid}
  {"op": "invoke", "calls": [{"fn": "submit", "blob": name} | {"fn": "monitor"}, ...]}
                                                  -> {"results": [{"status": "Success"|"Failure", "exception": str}]}
     all calls are sent at once, as the host sends invocations that arrive together; the answer waits for all.
  {"op": "logs"}                                  -> {"logs": [{"category", "level", "message", "invocation_id"}]}
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

_answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the harness's and the worker's own prints must not mix with the answers

REALWORKER_DIR, WORKER_SOURCE, APP_DIR = sys.argv[1:4]
sys.path.insert(0, REALWORKER_DIR)

import realhost  # noqa: E402 - found through REALWORKER_DIR
from azure.storage.blob import BlobServiceClient  # noqa: E402
from azure_functions_worker.protos import FunctionRpc_pb2 as pb  # noqa: E402

WORKER_PY = os.path.join(WORKER_SOURCE, "python", "prodV4", "worker.py")
host, server, proc = realhost.start(APP_DIR, {}, WORKER_PY)
functions: dict[str, pb.RpcFunctionMetadata] = {}


def load() -> dict[str, Any]:
    init = host.call("worker_init_response", worker_init_request=pb.WorkerInitRequest(
        host_version="4.1040.0", function_app_directory=APP_DIR))
    if init.result.status != pb.StatusResult.Success:
        raise RuntimeError(f"worker init failed: {init.result.exception.message}")
    meta = host.call("function_metadata_response",
                     functions_metadata_request=pb.FunctionsMetadataRequest(function_app_directory=APP_DIR))
    if meta.result.status != pb.StatusResult.Success:
        raise RuntimeError(f"indexing function_app.py failed: {meta.result.exception.message}")
    for fm in meta.function_metadata_results:
        loaded = host.call("function_load_response", function_load_request=pb.FunctionLoadRequest(
            function_id=fm.function_id, metadata=fm))
        if loaded.result.status != pb.StatusResult.Success:
            raise RuntimeError(f"loading {fm.name} failed: {loaded.result.exception.message}")
        functions[fm.name] = fm
    return {"functions": sorted(functions), "worker_pid": proc.pid}


def _trigger(fm: pb.RpcFunctionMetadata) -> dict[str, Any]:
    """The function's trigger binding, as the worker's indexing reported it (raw JSON)."""
    for raw in map(json.loads, fm.raw_bindings):
        if raw["type"].endswith("Trigger"):
            return raw
    raise RuntimeError(f"{fm.name} has no trigger")


def _request(call: dict[str, str]) -> pb.InvocationRequest:
    fm = functions[call["fn"]]
    raw = _trigger(fm)
    arg = raw["name"]
    if raw["type"] == "blobTrigger":
        connection = raw["connection"]
        container = os.environ["INPUT_CONTAINER"]
        service = BlobServiceClient.from_connection_string(os.environ[connection])
        blob = service.get_blob_client(container, call["blob"])
        return realhost.blob_invocation(fm.function_id, arg, connection, container, call["blob"], blob.url, {})
    return realhost.timer_invocation(fm.function_id, arg, fm.name)


def invoke(calls: list[dict[str, str]], timeout: float = 300.0) -> dict[str, Any]:
    requests = [_request(c) for c in calls]
    for r in requests:
        host.outbox.put(realhost.protos.StreamingMessage(request_id=host.request_id, invocation_request=r))
    pending = {r.invocation_id: i for i, r in enumerate(requests)}
    results: list[dict[str, str]] = [{}] * len(requests)
    deadline = time.monotonic() + timeout
    while pending:
        msg = host.inbox.get(timeout=max(0.1, deadline - time.monotonic()))
        if msg.WhichOneof("content") != "invocation_response":
            continue
        response = msg.invocation_response
        index = pending.pop(response.invocation_id, None)
        if index is not None:
            results[index] = {"status": pb.StatusResult.Status.Name(response.result.status),
                              "exception": response.result.exception.message}
    return {"results": results}


def logs() -> dict[str, Any]:
    return {"logs": [{"category": r.category, "level": pb.RpcLog.Level.Name(r.level), "message": r.message,
                      "invocation_id": r.invocation_id} for r in list(host.logs)]}


for line in sys.stdin:
    command = json.loads(line)
    try:
        if command["op"] == "load":
            answer = load()
        elif command["op"] == "invoke":
            answer = invoke(command["calls"])
        elif command["op"] == "logs":
            answer = logs()
        else:
            answer = {"error": f"unknown op {command['op']!r}"}
    except Exception as exc:  # noqa: BLE001 - the test reads the error
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    _answers.write(json.dumps(answer) + "\n")
    _answers.flush()

proc.kill()  # stdin closed: the test is done with this worker (4.34 ignores WorkerTerminate)
proc.wait()
host.outbox.put(None)
server.stop(0)
