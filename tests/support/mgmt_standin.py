"""ARM stand-in for the azd hooks: the management endpoints they call, over HTTPS on 127.0.0.1 (trustme CA), with
each request body validated against the azure-mgmt REST model of the API version it names (arm_schema.py)."""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support import arm_schema
from tests.support.batch_standin import FAKE_TOKEN
from tests.support.tls_standin import TlsStandin

_SKUS = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.Batch/locations/[^/]+/virtualMachineSkus$", re.I)
_PATH = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/(?P<rest>.+)$", re.I)


@dataclass
class Call:
    method: str
    path: str
    api_version: str
    body: Any
    status: int = 0
    query: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class MgmtStandin(TlsStandin):
    """Batch pools, a Function App's functions and host keys, Event Grid system-topic subscriptions."""

    functions: list[str] = field(default_factory=lambda: ["monitor", "reconcile", "submit"])
    system_keys: dict[str, str] = field(default_factory=lambda: {"blobs_extension": "Bx_ky/+=="})
    # A new app's unique default host name (<app>-<hash>.<region>-01.azurewebsites.net), served as Azure does.
    host_suffix: str = "-b4c7dxfkg2hsa3e6.westeurope-01.azurewebsites.net"
    # A host not ready yet: per call ("listkeys", "functions"), the statuses answered before a real answer (one
    # each, in order), or one answered every time; and how many listKeys answers lack blobs_extension (not started).
    not_ready: dict[str, list[int]] = field(default_factory=dict)
    never_ready: dict[str, int] = field(default_factory=dict)
    keyless_answers: int = 0
    # The Batch account: its quotas and the VM sizes its region offers (with their family and vCPUs).
    batch_quotas: dict[str, Any] = field(default_factory=lambda: {
        "dedicatedCoreQuota": 20, "lowPriorityCoreQuota": 20, "poolQuota": 20, "activeJobAndJobScheduleQuota": 100,
        "dedicatedCoreQuotaPerVMFamilyEnforced": True,
        "dedicatedCoreQuotaPerVMFamily": [{"name": "standardDSv3Family", "coreQuota": 20},
                                          {"name": "standardDv3Family", "coreQuota": 20}]})
    vm_skus: list[dict[str, Any]] = field(default_factory=lambda: [
        {"name": "Standard_D2s_v3", "familyName": "standardDSv3Family",
         "capabilities": [{"name": "vCPUs", "value": "2"}, {"name": "MemoryGB", "value": "8"}]},
        {"name": "Standard_D4s_v3", "familyName": "standardDSv3Family",
         "capabilities": [{"name": "vCPUs", "value": "4"}, {"name": "MemoryGB", "value": "16"}]},
        {"name": "Standard_D2_v3", "familyName": "standardDv3Family",
         "capabilities": [{"name": "vCPUs", "value": "2"}, {"name": "MemoryGB", "value": "8"}]},
        {"name": "Standard_F2s_v2", "familyName": "standardFSv2Family",
         "capabilities": [{"name": "vCPUs", "value": "2"}, {"name": "MemoryGB", "value": "4"}]},
        {"name": "Standard_NC6s_v3", "familyName": "standardNCSv3Family",
         "capabilities": [{"name": "vCPUs", "value": "6"}, {"name": "MemoryGB", "value": "112"},
                          {"name": "GPUs", "value": "1"}]}])
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    full_urls: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    validation_errors: list[str] = field(default_factory=list)
    # What `mp3pipe --azure doctor` also reads (section "doctor" below); a test fills them in.
    site_identity: dict[str, Any] = field(default_factory=dict)  # the Function App's identity (GET site)
    system_topic: dict[str, Any] = field(default_factory=dict)  # the Event Grid system topic's GET body
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)  # user-assigned identity name -> GET body
    role_assignments: list[dict[str, Any]] = field(default_factory=list)  # {principalId, roleDefinitionId, scope}
    refused: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # path fragment -> status, code, message

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self.handler = _Handler
        self.thread_name = "mgmt-standin"
        self._tls_init("mgmt-standin-")

    def transport(self) -> dict[str, Any]:
        """Client options for the hooks: this endpoint, its CA, fast retries."""
        return {"base_url": self.url, "connection_verify": self.ca_path, "retry_backoff_factor": 0.01}

    def sent(self, method: str, fragment: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and fragment in c.path]

    # -- request handling ----------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        call = Call(h.command, parts.path, (query.get("api-version") or [""])[0], body, query=query)
        with self._lock:
            self.calls.append(call)
            if h.headers.get("Authorization") != f"Bearer {FAKE_TOKEN}":
                status, payload = 401, _error("AuthenticationFailed", "missing or wrong bearer token")
            else:
                status, payload = self._route(call, h.headers)
            call.status = status
            self._check_response(call, status, payload)
        data = json.dumps(payload).encode() if payload is not None else b""
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("x-ms-request-id", "standin")
        h.end_headers()
        h.wfile.write(data)

    def _check(self, call: Call, resource_type: str, *, body: bool) -> tuple[int, Any] | None:
        """API version known for the type, and (for PUT) the body valid against that version's model."""
        cls, why = arm_schema.model_for(resource_type, call.api_version)
        if cls is None:
            self.validation_errors.append(f"{call.method} {call.path}: {why}")
            return 400, _error("InvalidApiVersionParameter", why or "")
        if body:
            report = arm_schema.validate(call.body, arm_schema.model_tree(cls), json_types=True)
            if report.errors:
                self.validation_errors += [f"{call.method} {call.path}: {e}" for e in report.errors]
                return 400, _error("InvalidRequestContent", "; ".join(report.errors))
        return None

    def _check_response(self, call: Call, status: int, payload: Any) -> None:
        """What this stand-in answers follows the same models (so the SDK reads it as it would Azure's)."""
        if status >= 300 or payload is None or self._doctor_response(call, payload):
            return
        from azure.mgmt.batch import models as batch
        from azure.mgmt.eventgrid import models as grid
        from azure.mgmt.web import models as web

        model = None
        if call.path.endswith("/virtualMachineSkus"):
            model = batch.SupportedSku
        elif "/batchAccounts/" in call.path and "/pools/" not in call.path:
            model = batch.BatchAccount
        elif re.search(r"/sites/[^/]+$", call.path):
            model = web.Site
        if "/pools/" in call.path:
            model = batch.Pool
        elif call.path.endswith("/getFullUrl"):
            model = grid.EventSubscriptionFullUrl
        elif "/eventSubscriptions/" in call.path:
            model = grid.EventSubscription
        elif call.path.endswith("/listkeys"):
            model = web.HostKeys
        if call.path.endswith(("/functions", "/virtualMachineSkus")):
            items = payload["value"]
            model = model or web.FunctionEnvelope
        else:
            items = [payload]
        for item in items:
            if model is None:
                self.validation_errors.append(f"response to {call.method} {call.path}: no model")
                continue
            report = arm_schema.validate(item, arm_schema.model_tree(model), json_types=True, response=True)
            self.validation_errors += [f"response to {call.method} {call.path}: {e}" for e in report.errors]

    def _route(self, call: Call, headers: Any) -> tuple[int, Any]:
        for fragment, (status, code, message) in self.refused.items():
            if fragment in call.path:
                return status, _error(code, message.format(path=call.path))
        skus = _SKUS.match(call.path)
        if skus and call.method == "GET":
            bad = self._check(call, "Microsoft.Batch/locations/virtualMachineSkus", body=False)
            return bad or (200, {"value": copy.deepcopy(self.vm_skus)})
        m = _PATH.match(call.path)
        if not m:
            return 404, _error("NotFound", call.path)
        rest = m["rest"].split("/")
        provider = rest[0].lower()
        doctor = self._doctor_route(call, rest)
        if doctor is not None:
            return doctor
        if provider == "microsoft.batch" and len(rest) == 3 and rest[1] == "batchAccounts" and call.method == "GET":
            bad = self._check(call, "Microsoft.Batch/batchAccounts", body=False)
            return bad or (200, self._account(call, rest[2]))
        if provider == "microsoft.batch" and len(rest) == 5 and rest[3] == "pools":
            return self._pool(call, headers, rest[4])
        if provider == "microsoft.web" and len(rest) >= 3 and rest[1] == "sites":
            return self._site(call, rest[2], rest[3:])
        if provider == "microsoft.eventgrid" and len(rest) >= 5 and rest[3] == "eventSubscriptions":
            return self._subscription(call, rest[4], rest[5:])
        return 404, _error("NotFound", f"{call.method} {call.path}")

    def _pool(self, call: Call, headers: Any, name: str) -> tuple[int, Any]:
        bad = self._check(call, "Microsoft.Batch/batchAccounts/pools", body=call.method == "PUT")
        if bad:
            return bad
        if call.method == "GET":
            return (200, self.pools[name]) if name in self.pools else (404, _error("PoolNotFound", name))
        if call.method != "PUT":
            return 405, _error("MethodNotAllowed", call.method)
        if headers.get("If-None-Match") == "*" and name in self.pools:
            return 412, _error("PreconditionFailed", "the pool exists")
        pool = copy.deepcopy(call.body)
        pool.update(id=call.path, name=name, type="Microsoft.Batch/batchAccounts/pools")
        pool["properties"].update(provisioningState="Succeeded", allocationState="Steady")
        identities = pool.get("identity", {}).get("userAssignedIdentities", {})
        pool.setdefault("identity", {})["userAssignedIdentities"] = {
            k: {"principalId": "p", "clientId": "c"} for k in identities}
        self.pools[name] = pool
        return 200, pool

    def _account(self, call: Call, name: str) -> dict[str, Any]:
        return {"id": call.path, "name": name, "type": "Microsoft.Batch/batchAccounts", "location": "westeurope",
                "properties": {"accountEndpoint": f"{name}.westeurope.batch.azure.com",
                               "provisioningState": "Succeeded", "poolAllocationMode": "BatchService",
                               **copy.deepcopy(self.batch_quotas)}}

    def _site(self, call: Call, app: str, tail: list[str]) -> tuple[int, Any]:
        bad = self._check(call, "Microsoft.Web/sites", body=False)
        if bad:
            return bad
        if tail == [] and call.method == "GET":
            return 200, {"id": call.path, "name": app, "type": "Microsoft.Web/sites", "location": "westeurope",
                         "kind": "functionapp,linux", "properties": {"state": "Running",
                                                                     "defaultHostName": app + self.host_suffix},
                         **({"identity": copy.deepcopy(self.site_identity)} if self.site_identity else {})}
        which = {("functions",): "functions", ("host", "default", "listkeys"): "listkeys"}.get(tuple(tail))
        if which and (self.never_ready.get(which) or self.not_ready.get(which)):
            status = self.never_ready.get(which) or self.not_ready[which].pop(0)
            return status, _host_error(status)
        if tail == ["functions"] and call.method == "GET":
            return 200, {"value": [
                {"id": f"{call.path}/{f}", "name": f"{app}/{f}", "type": "Microsoft.Web/sites/functions",
                 "properties": {"language": "python", "isDisabled": False,
                                "config": {"bindings": [{"type": "blobTrigger" if f == "submit" else "timerTrigger"}]}}}
                for f in self.functions]}
        if tail == ["host", "default", "listkeys"] and call.method == "POST":
            keys = dict(self.system_keys)
            if self.keyless_answers > 0:
                self.keyless_answers -= 1
                keys.pop("blobs_extension", None)
            return 200, {"masterKey": "m", "functionKeys": {"default": "f"}, "systemKeys": keys}
        return 404, _error("NotFound", call.path)

    def _subscription(self, call: Call, name: str, tail: list[str]) -> tuple[int, Any]:
        bad = self._check(call, "Microsoft.EventGrid/systemTopics/eventSubscriptions", body=call.method == "PUT")
        if bad:
            return bad
        if tail == ["getFullUrl"] and call.method == "POST":
            if name not in self.subscriptions:
                return 404, _error("NotFound", name)
            return 200, {"endpointUrl": self.full_urls[name]}
        if tail:
            return 404, _error("NotFound", call.path)
        if call.method == "GET":
            return (200, self.subscriptions[name]) if name in self.subscriptions else (404, _error("NotFound", name))
        if call.method != "PUT":
            return 405, _error("MethodNotAllowed", call.method)
        sub = copy.deepcopy(call.body)
        dest = sub["properties"]["destination"]["properties"]
        self.full_urls[name] = dest.pop("endpointUrl")  # Azure never returns the URL with its key
        dest["endpointBaseUrl"] = self.full_urls[name].split("?", 1)[0]
        dest.setdefault("preferredBatchSizeInKilobytes", 64)  # defaults ARM fills in and returns
        sub["properties"].setdefault("labels", [])
        sub.update(id=call.path, name=name, type="Microsoft.EventGrid/systemTopics/eventSubscriptions")
        sub["properties"].update(provisioningState="Succeeded", topic=call.path.rsplit("/eventSubscriptions/", 1)[0])
        self.subscriptions[name] = sub
        return 201, sub

    # -- doctor: the site, the Batch account, the system topic, role assignments, refusals ------------------------
    def _doctor_route(self, call: Call, rest: list[str]) -> tuple[int, Any] | None:
        """GETs only the doctor makes; None: not one of them (the routes above answer)."""
        if call.method != "GET":
            return None
        kind = "/".join([rest[0], *rest[1::2]]).lower()  # provider/type/child type
        found = {
            "microsoft.eventgrid/systemtopics": ("Microsoft.EventGrid/systemTopics", self.system_topic),
        }.get(kind if len(rest) % 2 == 1 else "")
        if kind == "microsoft.managedidentity/userassignedidentities" and len(rest) == 3:
            found = ("Microsoft.ManagedIdentity/userAssignedIdentities", self.identities.get(rest[2], {}))
        if found is not None:
            bad = self._check(call, found[0], body=False)
            if bad:
                return bad
            body = found[1]
            return (200, body) if body.get("name") == rest[-1] else (404, _error("ResourceNotFound", rest[-1]))
        if kind == "microsoft.batch/batchaccounts/pools" and len(rest) == 4:
            bad = self._check(call, "Microsoft.Batch/batchAccounts/pools", body=False)
            return bad or (200, {"value": list(self.pools.values())})
        if kind == "microsoft.authorization/roleassignments" and len(rest) == 2:
            return self._role_assignments(call)
        return None

    def _role_assignments(self, call: Call) -> tuple[int, Any]:
        bad = self._check(call, "Microsoft.Authorization/roleAssignments", body=False)
        if bad:
            return bad
        wanted = re.fullmatch(r"principalId eq '([^']+)'", call.query.get("$filter", [""])[0])
        if not wanted:
            return 400, _error("InvalidFilter", "this stand-in answers $filter=principalId eq '<id>' only")
        found = []
        for i, a in enumerate(self.role_assignments):
            if a["principalId"] == wanted[1]:
                name = f"{i:08d}-0000-0000-0000-000000000000"
                found.append({"id": f"{a['scope']}/providers/Microsoft.Authorization/roleAssignments/{name}",
                              "name": name, "type": "Microsoft.Authorization/roleAssignments",
                              "properties": {"principalType": "ServicePrincipal", **a}})
        return 200, {"value": found}

    def _doctor_response(self, call: Call, payload: Any) -> bool:
        """Validate the doctor's answers against their response models; False: not one of them."""
        import importlib

        from azure.mgmt.batch import models as batch
        from azure.mgmt.eventgrid import models as grid

        path = call.path.lower()
        if path.endswith("/providers/microsoft.authorization/roleassignments"):
            version = "v" + call.api_version.replace("-", "_")
            model = importlib.import_module(f"azure.mgmt.authorization.{version}.models").RoleAssignment
            items = payload["value"]
        elif path.endswith("/pools"):
            model, items = batch.Pool, payload["value"]
        elif re.search(r"/providers/microsoft\.eventgrid/systemtopics/[^/]+$", path):
            model, items = grid.SystemTopic, [payload]
        elif "/providers/microsoft.managedidentity/userassignedidentities/" in path:
            version = "v" + call.api_version.replace("-", "_")
            model, items = importlib.import_module(f"azure.mgmt.msi.{version}.models").Identity, [payload]
        else:
            return False
        for item in items:
            report = arm_schema.validate(item, arm_schema.model_tree(model), json_types=True, response=True)
            self.validation_errors += [f"response to {call.method} {call.path}: {e}" for e in report.errors]
        return True


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# What App Service answers for a host that is not ready (its own error shape, not ARM's {"error": ...}).
_HOST_MESSAGES = {
    400: "Encountered an error (ServiceUnavailable) from host runtime.",
    403: "Encountered an error (Forbidden) from host runtime.",
    404: "Error retrieving the host's data: the host is not running.",
}


def _host_error(status: int) -> dict[str, Any]:
    message = _HOST_MESSAGES.get(status, "host runtime error")
    code = {400: "BadRequest", 403: "Forbidden", 404: "NotFound"}.get(status, "InternalServerError")
    return {"Code": code, "Message": message, "Target": None,
            "Details": [{"Message": message}, {"Code": code}, {"ErrorEntity": {"Code": code, "Message": message}}],
            "Innererror": None}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _any(self) -> None:
        self.server.standin.handle(self)  # type: ignore[attr-defined]

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any
