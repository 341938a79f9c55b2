"""`mp3pipe --azure doctor`: read a deployed environment through ARM and say, check by check, what is wrong and the fix.

Everything here reads (GET, and two read-like POSTs: the subscription's full URL and the host keys); nothing is
changed. A check the signed-in user may not read (403: no Reader) is reported as such, never as healthy.
The azure-mgmt-* clients are imported inside `run`: the rest of the CLI does not need them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from shared.settings import Settings, vcpus_of

OK, PROBLEM, UNREAD = "ok", "PROBLEM", "cannot check"
ARM = "https://management.azure.com"
ARM_ENDPOINT_SETTING = "MP3PIPE_ARM_ENDPOINT"  # another cloud's Resource Manager (default: Azure's public cloud)

# function_app.py's functions (tests/test_doctor.py holds the two together) and the postdeploy hook's names.
FUNCTIONS = ("monitor", "reconcile", "submit")
SUBMIT_FUNCTION = "submit"
SUBSCRIPTION_NAME = "mp3pipe-submit"
WEBHOOK_PATH = "/runtime/webhooks/blobs"

# Built-in role GUIDs (tests/data/builtin_roles.json lists Microsoft's; a test checks these against it).
ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Azure Batch Data Contributor": "6aaa78f1-f7de-44ca-8722-c64a23943cae",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# A role that grants everything another does (a deployer with Owner on blobs can drop files too).
COVERS = {
    "Storage Blob Data Contributor": ("Storage Blob Data Owner",),
    "Storage Blob Data Reader": ("Storage Blob Data Contributor", "Storage Blob Data Owner"),
    "Storage Queue Data Message Sender": ("Storage Queue Data Contributor",),
}


@dataclass(frozen=True)
class Grant:
    """One role assignment infra/modules/roles.bicep makes (tests/test_doctor.py compares the two)."""

    who: str  # app | pool | topic | user
    role: str
    scope: str  # storage | batch | insights | input | output | deadLetter | notifyQueue


GRANTS = (
    Grant("app", "Storage Blob Data Owner", "storage"),
    Grant("app", "Storage Queue Data Contributor", "storage"),
    Grant("app", "Azure Batch Data Contributor", "batch"),
    Grant("app", "Monitoring Metrics Publisher", "insights"),
    Grant("pool", "Storage Blob Data Reader", "input"),
    Grant("pool", "Storage Blob Data Contributor", "output"),
    Grant("topic", "Storage Blob Data Contributor", "deadLetter"),
    Grant("topic", "Storage Queue Data Message Sender", "notifyQueue"),  # only with MP3PIPE_NOTIFY_QUEUE
    Grant("user", "Storage Blob Data Contributor", "storage"),  # only with AZURE_PRINCIPAL_ID
    Grant("user", "Azure Batch Data Contributor", "batch"),
)
WHO = {"app": "the Function App's identity", "pool": "the pool's identity", "topic": "the Event Grid topic's identity",
       "user": "you (AZURE_PRINCIPAL_ID)"}

# VM size -> the family its dedicated cores are counted in (Batch account > Quotas). Most names follow one rule
# (standard_d2s_v3 -> standardDSv3Family); the exceptions Microsoft names otherwise are listed. If the account does
# not list the family, the check says so and shows what it does list.
_VM_NAME = re.compile(r"^standard_(?P<series>[a-z]+?)\d+(?:-\d+)?(?P<features>[a-z]*)(?:_(?P<version>v\d+))?$", re.I)
_FAMILY_EXCEPTIONS = {"standard_a1_v2": "standardAv2Family", "standard_a2_v2": "standardAv2Family",
                      "standard_a2m_v2": "standardAv2Family", "standard_a4m_v2": "standardAv2Family",
                      "standard_a8m_v2": "standardAv2Family"}


def vm_family(vm_size: str) -> str | None:
    """The quota family of a VM size (standard_d2s_v3 -> standardDSv3Family, standard_f4s_v2 -> standardFSv2Family)."""
    size = vm_size.strip().lower()
    if size in _FAMILY_EXCEPTIONS:
        return _FAMILY_EXCEPTIONS[size]
    m = _VM_NAME.match(size)
    if m is None:
        return None
    return f"standard{(m['series'] + m['features']).upper()}{m['version'] or ''}Family"


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


class DoctorError(RuntimeError):
    """Nothing can be checked (no azd environment values, no sign-in); the message says what to do."""


@dataclass
class Deployment:
    """The names azd's environment gives, and what the checks learn on the way (site, pool) for later checks."""

    env: Mapping[str, str]
    settings: Settings
    subscription: str
    group: str
    app: str
    storage: str
    batch: str
    topic: str
    site: Any = None
    functions: list[str] | None = None
    pool: Any = None
    pool_missing: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def rg_id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.group}"

    def resource_id(self, kind: str) -> str:
        storage = f"{self.rg_id}/providers/Microsoft.Storage/storageAccounts/{self.storage}"
        s = self.settings
        return {
            "storage": storage,
            "batch": f"{self.rg_id}/providers/Microsoft.Batch/batchAccounts/{self.batch}",
            "pool": f"{self.rg_id}/providers/Microsoft.Batch/batchAccounts/{self.batch}/pools/{s.pool_id}",
            "input": f"{storage}/blobServices/default/containers/{s.input_container}",
            "output": f"{storage}/blobServices/default/containers/{s.output_container}",
            "deadLetter": f"{storage}/blobServices/default/containers/"
                          f"{self.env.get('EVENTGRID_DEADLETTER_CONTAINER', 'eventgrid-deadletter')}",
            "notifyQueue": f"{storage}/queueServices/default/queues/{self.env.get('MP3PIPE_NOTIFY_QUEUE', '')}",
            "insights": f"{self.rg_id}/providers/Microsoft.Insights/components/<the app's Application Insights>",
        }[kind]

    def add(self, check: str, status: str, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, status, detail, fix))


T = TypeVar("T")
_NOT_READ = object()


def _read(d: Deployment, check: str, what: str, call: Callable[[], T],
          on_error: Callable[[Any], bool] | None = None) -> T | Any:
    """`call()`, or _NOT_READ after recording why it could not be read (`on_error` may record its own finding)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    try:
        return call()
    except ServiceRequestError as exc:
        raise DoctorError(f"cannot reach Azure Resource Manager ({exc.message or exc}): check the network, or "
                          f"{ARM_ENDPOINT_SETTING} for another cloud") from None
    except ClientAuthenticationError as exc:
        if getattr(exc, "status_code", None) is None:
            raise DoctorError(f"no Azure sign-in ({exc.message.splitlines()[0] if exc.message else exc}): "
                              "run `az login` or `azd auth login`, then `mp3pipe --azure doctor` again") from None
        if on_error is None or not on_error(exc):
            d.add(check, UNREAD, f"cannot read {what}: {_reason(exc)}", "sign in again (`az login`)")
    except HttpResponseError as exc:
        if on_error is not None and on_error(exc):
            return _NOT_READ
        if exc.status_code == 403:
            d.add(check, UNREAD, f"cannot read {what}: your sign-in may not read it ({_reason(exc)})",
                  f"ask an Owner for Reader on the resource group: `az role assignment create --assignee "
                  f"<your sign-in> --role Reader --scope {d.rg_id}`")
        else:
            d.add(check, UNREAD, f"cannot read {what}: {_reason(exc)}", "run `mp3pipe --azure doctor` again")
    return _NOT_READ


def _reason(exc: Any) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = (getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)).splitlines()[0]
    return f"{exc.status_code} {code}: {message}" if code else f"{exc.status_code}: {message}"


def _status(exc: Any) -> int | None:
    return getattr(exc, "status_code", None)


# -- the checks ----------------------------------------------------------------------------------------------------
def check_app(d: Deployment, web: Any) -> None:
    def missing(exc: Any) -> bool:
        if _status(exc) != 404:
            return False
        d.add("Function App", PROBLEM, f"Function App {d.app} is not in resource group {d.group}",
              "`azd provision` (then `azd deploy`)")
        return True

    site = _read(d, "Function App", f"Function App {d.app}", lambda: web.web_apps.get(d.group, d.app), missing)
    if site is _NOT_READ:
        return
    d.site = site
    if (site.state or "").lower() != "running":
        d.add("Function App", PROBLEM, f"{d.app} is {site.state}: no trigger or timer runs",
              f"`az functionapp start -g {d.group} -n {d.app}`")
    else:
        d.add("Function App", OK, f"{d.app} is running at {site.default_host_name}")


def check_functions(d: Deployment, web: Any) -> None:
    submit = d.env.get("SUBMIT_FUNCTION_NAME") or SUBMIT_FUNCTION

    def host_down(exc: Any) -> bool:
        if _status(exc) not in (400, 404, 500, 502, 503):
            return False
        d.add("functions indexed", PROBLEM,
              f"the Functions host of {d.app} did not answer ({_reason(exc)}): it is starting after a deploy, or "
              "it failed to start",
              "wait a minute and run `mp3pipe --azure doctor` again; if it stays, open the portal: Function App "
              f"{d.app} > Diagnose and solve problems, and Monitoring > Log stream")
        return True

    listed = _read(d, "functions indexed", f"the functions of {d.app}",
                   lambda: list(web.web_apps.list_functions(d.group, d.app)), host_down)
    if listed is _NOT_READ:
        return
    names = sorted({(f.name or "").rsplit("/", 1)[-1] for f in listed})
    d.functions = names
    wanted = sorted({*FUNCTIONS, submit})
    missing = [f for f in wanted if f not in names]
    if missing:
        d.add("functions indexed", PROBLEM,
              f"{d.app} has not indexed {', '.join(missing)} (indexed: {', '.join(names) or 'none'}); an import "
              "error in function_app.py or a package missing from requirements.txt leaves functions unindexed",
              "`azd deploy`, then the portal: Function App > Monitoring > Log stream for the indexing error")
    else:
        d.add("functions indexed", OK, ", ".join(names))


def check_subscription(d: Deployment, web: Any, grid: Any) -> None:

    fix = "`azd hooks run postdeploy` (it writes the subscription from the deployed app's host name, function and key)"
    subs = grid.system_topic_event_subscriptions

    def missing(exc: Any) -> bool:
        if _status(exc) != 404:
            return False
        d.add("Event Grid subscription", PROBLEM,
              f"no subscription {SUBSCRIPTION_NAME} on topic {d.topic}: dropped files are never submitted "
              "(the reconcile timer still finds them, minutes later)", fix)
        return True

    sub = _read(d, "Event Grid subscription", f"Event Grid subscription {SUBSCRIPTION_NAME}",
                lambda: subs.get(d.group, d.topic, SUBSCRIPTION_NAME), missing)
    if sub is _NOT_READ:
        return
    prefix = f"/blobServices/default/containers/{d.settings.input_container}/"
    f = sub.filter
    wrong = []
    if (sub.provisioning_state or "") != "Succeeded":
        wrong.append(f"provisioning state {sub.provisioning_state}")
    if f is None or "Microsoft.Storage.BlobCreated" not in (f.included_event_types or []):
        wrong.append("it does not take BlobCreated events")
    if f is None or (f.subject_begins_with or "") != prefix:
        wrong.append(f"it filters on {getattr(f, 'subject_begins_with', None)!r}, not {prefix!r}")
    if wrong:
        d.add("Event Grid subscription", PROBLEM, f"{SUBSCRIPTION_NAME}: {'; '.join(wrong)}", fix)
    else:
        d.add("Event Grid subscription", OK, f"{SUBSCRIPTION_NAME}: BlobCreated under {prefix}")

    forbidden: list[Any] = []

    def no_action(exc: Any) -> bool:
        if _status(exc) == 403:
            forbidden.append(exc)
            return True
        return False

    full = _read(d, "webhook function", f"the full URL of {SUBSCRIPTION_NAME}",
                 lambda: subs.get_full_url(d.group, d.topic, SUBSCRIPTION_NAME).endpoint_url, no_action)
    full = None if full is _NOT_READ else full
    base = getattr(sub.destination, "endpoint_base_url", None)
    url = urlsplit(full or base or "")
    host = d.site.default_host_name if d.site is not None else None
    where = f"{url.scheme}://{url.hostname}{url.path}"
    if host is None:
        d.add("webhook host", UNREAD, f"events go to {where}; the app's host name was not read (above)")
    elif (url.hostname or "").lower() != host.lower() or url.path != WEBHOOK_PATH or url.scheme != "https":
        d.add("webhook host", PROBLEM,
              f"events go to {where}, but the app answers at https://{host}{WEBHOOK_PATH}: every event is lost "
              "or dead-lettered", fix)
    else:
        d.add("webhook host", OK, where)
    if full is None:
        if forbidden:
            d.add("webhook function", UNREAD,
                  f"cannot read the subscription's full URL ({_reason(forbidden[0])}; getFullUrl needs more than "
                  "Reader): the function name and key were not checked",
                  f"sign in as someone with Contributor on {d.rg_id}, or look in the portal: Event Grid system "
                  f"topic {d.topic} > Event Subscriptions > {SUBSCRIPTION_NAME} > Endpoint")
        return
    query = parse_qs(url.query)
    function = (query.get("functionName") or [""])[0]
    submit = d.env.get("SUBMIT_FUNCTION_NAME") or SUBMIT_FUNCTION
    if function != f"Host.Functions.{submit}":
        d.add("webhook function", PROBLEM,
              f"the webhook names functionName={function or '(none)'}, not Host.Functions.{submit}: the host "
              "answers 202 to every event and never runs the trigger (Azure/azure-functions-host #8802)", fix)
    elif d.functions is not None and submit not in d.functions:
        d.add("webhook function", PROBLEM, f"the webhook names {submit}, which {d.app} has not indexed (above)",
              "fix the indexing first (above)")
    else:
        d.add("webhook function", OK, function)
    _check_key(d, web, unquote((query.get("code") or [""])[0]), fix)


def _check_key(d: Deployment, web: Any, code: str, fix: str) -> None:
    keys = _read(d, "webhook key", f"the host keys of {d.app} (listKeys needs Contributor)",
                 lambda: web.web_apps.list_host_keys(d.group, d.app))
    if keys is _NOT_READ:
        return
    key = (keys.system_keys or {}).get("blobs_extension")
    if not key:
        d.add("webhook key", PROBLEM,
              f"{d.app} has no blobs_extension system key: the host has not started the Event Grid blob trigger",
              "`azd deploy`, then the portal: Function App > Monitoring > Log stream")
    elif key != code:
        d.add("webhook key", PROBLEM, "the webhook's code is not the app's blobs_extension key (rotated?): every "
              "event is answered 401 and dead-lettered", fix)
    else:
        d.add("webhook key", OK, "the webhook carries the app's blobs_extension key")


def check_pool(d: Deployment, batch: Any) -> None:
    s = d.settings
    again = (f"`az resource delete --ids {d.resource_id('pool')}` (the pool holds no state; the monitor is idle "
             "without it), then `azd hooks run postprovision`")

    def missing(exc: Any) -> bool:
        if _status(exc) != 404:
            return False
        d.pool_missing = True
        d.add("Batch pool", PROBLEM, f"pool {s.pool_id} does not exist in Batch account {d.batch}: no file converts",
              "`azd hooks run postprovision` (it creates the pool with its identity)")
        return True

    pool = _read(d, "Batch pool", f"Batch pool {s.pool_id}", lambda: batch.pool.get(d.group, d.batch, s.pool_id),
                 missing)
    if pool is _NOT_READ:
        return
    d.pool = pool
    identities = {k.lower() for k in ((pool.identity.user_assigned_identities or {}) if pool.identity else {})}
    props = pool.properties
    if not s.pool_identity_id:
        d.add("Batch pool", PROBLEM, "BATCH_POOL_IDENTITY_ID is not in the azd environment", "`azd provision`")
    elif s.pool_identity_id.lower() not in identities:
        d.add("Batch pool", PROBLEM,
              f"pool {s.pool_id} exists without the identity {s.pool_identity_id.rsplit('/', 1)[-1]}: its nodes "
              "cannot read inputs or write MP3s", again)
    elif (props.vm_size or "").lower() != s.vm_size.lower():
        d.add("Batch pool", PROBLEM,
              f"pool {s.pool_id} is {props.vm_size} but BATCH_VM_SIZE is {s.vm_size}: the app plans slots for "
              "the wrong size", f"{again}; or `azd env set BATCH_VM_SIZE {props.vm_size}` and `azd provision`")
    else:
        d.add("Batch pool", OK, f"{s.pool_id}: {props.vm_size} with identity {s.pool_identity_id.rsplit('/', 1)[-1]}")
    errors = (props.resize_operation_status.errors or []) if props.resize_operation_status else []
    for error in errors:
        d.add("pool resize", PROBLEM, f"the last resize failed: {error.code}: {error.message}",
              "see the quota check below; the portal: Batch account > Pools > "
              f"{s.pool_id} shows the resize errors")


def check_quota(d: Deployment, batch: Any) -> None:
    s = d.settings
    account = _read(d, "Batch quotas", f"Batch account {d.batch}", lambda: batch.batch_account.get(d.group, d.batch))
    if account is _NOT_READ:
        return
    p = account.properties
    where = f"the portal: Batch accounts > {d.batch} > Quotas > Request quota increase"
    other_size = (f"or use a VM size that has quota: `azd env set BATCH_VM_SIZE <size>`, `az resource delete --ids "
                  f"{d.resource_id('pool')}`, `azd provision`")
    cores = vcpus_of(s.vm_size)
    if cores is None:
        d.add("Batch quotas", UNREAD, f"the vCPUs of BATCH_VM_SIZE={s.vm_size} are not known from its name")
        return
    if d.pool_missing:
        pools = _read(d, "Batch quotas", f"the pools of {d.batch}",
                      lambda: list(batch.pool.list_by_batch_account(d.group, d.batch)))
        used = len(pools) if pools is not _NOT_READ else 0
        if p.pool_quota is not None and used >= p.pool_quota:
            d.add("Batch quotas", PROBLEM, f"pool quota {p.pool_quota}, {used} pool(s) in use: the pool cannot be "
                  "created", f"delete an unused pool, or {where} (Pools)")
    spot = min(max(s.spot_share, 0.0), 1.0)
    if spot < 1.0:  # the first node is dedicated unless every node may be Spot (shared/scaling.py split)
        family = vm_family(s.vm_size) or f"the family of {s.vm_size}"
        _dedicated(d, p, s.vm_size, cores, f"{where} (Dedicated vCPUs, {family}, at least {cores}); {other_size}")
    if spot > 0.0:
        low = p.low_priority_core_quota
        if low is not None and low < cores:
            d.add("Batch quotas", PROBLEM,
                  f"Spot: {low} core(s) (BATCH_SPOT_SHARE={s.spot_share}); a {s.vm_size} node needs {cores}",
                  f"{where} (Spot/low-priority vCPUs, at least {cores}); or set BATCH_SPOT_SHARE=0")
        elif low is not None:
            d.add("Batch quotas", OK, f"Spot: {low} core(s), room for {low // cores} {s.vm_size} node(s)")


def _dedicated(d: Deployment, p: Any, vm_size: str, cores: int, fix: str) -> None:
    total = p.dedicated_core_quota
    if total is None:
        d.add("Batch quotas", UNREAD, f"Batch account {d.batch} reports no dedicated core quota (user subscription "
              "mode: the subscription's quotas apply)")
        return
    room, what = total, f"{total} dedicated core(s) in the account"
    if p.dedicated_core_quota_per_vm_family_enforced:
        family = vm_family(vm_size)
        listed = {q.name or "": q.core_quota or 0 for q in p.dedicated_core_quota_per_vm_family or []}
        quotas = {n.lower(): c for n, c in listed.items()}  # Azure's case differs at times: standardHBrsv3Family
        if family is None or family.lower() not in quotas:
            have = ", ".join(f"{n}={c}" for n, c in sorted(listed.items()) if c) or "none"
            what = f"{family} (the family of {vm_size})" if family else f"the family of {vm_size} (not known)"
            d.add("Batch quotas", PROBLEM, f"the account lists no dedicated quota for {what}; families with cores: "
                  f"{have}", fix)
            return
        room = min(total, quotas[family.lower()])
        what = f"{quotas[family.lower()]} dedicated core(s) for {family} ({total} in the account)"
    if room < cores:
        d.add("Batch quotas", PROBLEM, f"{what}: a {vm_size} node needs {cores}, so the pool can never start a "
              "node (the monitor's resize fails with a quota error)", fix)
        return
    nodes = room // cores
    note = (f"; the pool can grow to {nodes} of BATCH_MAX_NODES={d.settings.max_nodes}"
            if nodes < d.settings.max_nodes else "")
    d.add("Batch quotas", OK, f"{what}: room for {nodes} {vm_size} node(s){note}")


def check_roles(d: Deployment, grid: Any, msi: Any, auth: Any) -> None:
    principals: dict[str, set[str]] = {}
    if d.site is not None and d.site.identity is not None:
        principals["app"] = {u.principal_id for u in (d.site.identity.user_assigned_identities or {}).values()
                             if u.principal_id}
    pool_id = re.match(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/Microsoft.ManagedIdentity/"
                       r"userAssignedIdentities/([^/]+)$", d.settings.pool_identity_id or "", re.I)
    if pool_id:
        identity = _read(d, "roles", f"the pool's identity {pool_id[2]}",
                         lambda: msi.user_assigned_identities.get(pool_id[1], pool_id[2]))
        if identity is not _NOT_READ and identity.principal_id:
            principals["pool"] = {identity.principal_id}
    topic = _read(d, "roles", f"Event Grid system topic {d.topic}", lambda: grid.system_topics.get(d.group, d.topic))
    if topic is not _NOT_READ and topic.identity is not None and topic.identity.principal_id:
        principals["topic"] = {topic.identity.principal_id}
    if d.env.get("AZURE_PRINCIPAL_ID"):
        principals["user"] = {d.env["AZURE_PRINCIPAL_ID"]}
    wanted = [g for g in GRANTS if (g.scope != "notifyQueue" or d.env.get("MP3PIPE_NOTIFY_QUEUE"))
              and (g.who != "user" or d.env.get("AZURE_PRINCIPAL_ID"))]
    held: dict[str, list[Any]] = {}
    for who in sorted({g.who for g in wanted}):
        if not principals.get(who):
            d.add("roles", UNREAD, f"{WHO[who]}: its principal was not read (see above), its roles were not checked")
            continue
        held[who] = []
        for pid in sorted(principals[who]):
            found = _read(d, "roles", "role assignments", lambda pid=pid: list(
                auth.role_assignments.list_for_resource_group(d.group, filter=f"principalId eq '{pid}'")))
            if found is _NOT_READ:
                return  # one finding says why; the next principal would be refused alike
            held[who] += found
    good = 0
    for g in wanted:
        if g.who not in held:
            continue
        if any(_grants(a, g, d) for a in held[g.who]):
            good += 1
            continue
        pid = sorted(principals[g.who])[0]
        kind = (d.env.get("AZURE_PRINCIPAL_TYPE") or "User") if g.who == "user" else "ServicePrincipal"
        scope = d.resource_id(g.scope)
        if g.scope == "insights":
            scope = (f"$(az resource list -g {d.group} --resource-type Microsoft.Insights/components --query [0].id "
                     "-o tsv)")
        d.add("roles", PROBLEM, f"{WHO[g.who]} lacks {g.role} on {d.resource_id(g.scope)}",
              f"`azd provision` (the template makes it), or `az role assignment create --assignee-object-id {pid} "
              f"--assignee-principal-type {kind} --role \"{g.role}\" --scope {scope}`; new roles take a few "
              "minutes to apply")
    mine = ("" if d.env.get("AZURE_PRINCIPAL_ID")
            else " (yours not checked: no AZURE_PRINCIPAL_ID in the azd environment)")
    if good:
        d.add("roles", OK, f"{good} role assignment(s) in place{mine}")


def _grants(assignment: Any, g: Grant, d: Deployment) -> bool:
    """Does this assignment give `g`: the role (or one that covers it) at the scope or above it?"""
    role = (assignment.role_definition_id or "").rsplit("/", 1)[-1].lower()
    if role not in {ROLES[r] for r in (g.role, *COVERS.get(g.role, ()))}:
        return False
    scope = (assignment.scope or "").rstrip("/").lower()
    if g.scope == "insights":
        under = f"{d.rg_id}/providers/microsoft.insights/components/".lower()
        return scope.startswith(under) or _above(scope, d.rg_id.lower())
    return _above(scope, d.resource_id(g.scope).lower())


def _above(scope: str, target: str) -> bool:
    return scope == target or target.startswith(scope + "/")


# -- running it ------------------------------------------------------------------------------------------------
NEEDED = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_STORAGE_ACCOUNT_NAME",
          "AZURE_BATCH_ACCOUNT_NAME", "EVENTGRID_SYSTEM_TOPIC_NAME")


def run(env: Mapping[str, str], credential: Any, *, base_url: str | None = None, **transport: Any) -> list[Finding]:
    """Every check, in the order a file travels (app, trigger, pool, quota, roles)."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.batch import BatchManagementClient
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.web import WebSiteManagementClient

    from shared.settings import SettingsError

    missing = [n for n in NEEDED if not env.get(n)]
    if missing:
        raise DoctorError(f"missing from the azd environment: {', '.join(missing)} (run `mp3pipe --azure doctor` in "
                          "the project after `azd up`, or pass --azure-env NAME)")
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        raise DoctorError(str(exc)) from None
    d = Deployment(env, settings, *(env[n] for n in NEEDED))
    options = {"base_url": base_url or env.get(ARM_ENDPOINT_SETTING) or ARM, "retry_total": 2, **transport}
    clients = [WebSiteManagementClient(credential, d.subscription, **options),
               EventGridManagementClient(credential, d.subscription, **options),
               BatchManagementClient(credential, d.subscription, **options),
               ManagedServiceIdentityClient(credential, d.subscription, **options),
               AuthorizationManagementClient(credential, d.subscription, **options)]
    web, grid, batch, msi, auth = clients
    try:
        check_app(d, web)
        check_functions(d, web)
        check_subscription(d, web, grid)
        check_pool(d, batch)
        check_quota(d, batch)
        check_roles(d, grid, msi, auth)
    finally:
        for client in clients:
            client.close()
    return d.findings


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when something is wrong, 2 when nothing is wrong but some check could not be read, else 0."""
    statuses = {f.status for f in findings}
    return 1 if PROBLEM in statuses else 2 if UNREAD in statuses else 0


def render(findings: list[Finding]) -> list[str]:
    """One line per finding (status, check, what), the fix indented under it, and a count."""
    width = max(len(s) for s in (OK, PROBLEM, UNREAD))
    lines = []
    for f in findings:
        lines.append(f"{f.status:<{width}}  {f.check}: {f.detail}")
        if f.fix and f.status != OK:
            lines.append(f"{'':<{width}}  fix: {f.fix}")
    counts = {s: sum(f.status == s for f in findings) for s in (OK, PROBLEM, UNREAD)}
    lines.append(f"{counts[OK]} ok, {counts[PROBLEM]} problem(s), {counts[UNREAD]} not checked")
    return lines


def main(env: Mapping[str, str] | None = None, credential: Any = None) -> int:
    """Run the checks with the operator's sign-in (DefaultAzureCredential), print them, return the exit code."""
    import os
    import sys

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        findings = run(os.environ if env is None else env, credential)
    except DoctorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(render(findings)))
    return exit_code(findings)
