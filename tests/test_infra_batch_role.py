"""The app's custom Batch role grants exactly what the Azure adapter sends: every call of the BatchGateway port is
run against the Batch stand-in, each request it sends is mapped to the permission Batch checks for it, and the set
is compared with the role in infra/modules/roles.bicep (a missing one: the app fails in Azure with 403; an extra
one: more than it needs, as Azure Batch Data Contributor gave, e.g. deleting pools and uploading applications)."""

from __future__ import annotations

import datetime as dt
import inspect
import re

from shared.ports.batch import BatchGateway, PoolSpec, TaskSpec
from tests.support.batch_standin import BatchStandin
from tests.support.bicep_reader import all_resources

POOL, JOB = "mp3pipe-pool", "mp3pipe-job"
IDENTITY = "/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-pool"
ACCOUNT = "Microsoft.Batch/batchAccounts"
pytest_plugins = ["tests.support.batch_fixtures"]
# Microsoft's "Azure permissions for Compute" (Microsoft.Batch): the only Batch DataActions are jobs/* and
# jobSchedules/*; pool calls on the data plane are authorized by the pools/* Actions. Microsoft's Batch Entra ID page
# adds batchAccounts/read "for any read operation".
RULES = (  # (request path pattern, kind, resource) -> permission <resource>/<read|write|delete>
    (r"^/(pools|nodecounts)(/|$)", "actions", "pools"),
    (r"^/jobs(/|$)", "dataActions", "jobs"),
    (r"^/jobschedules(/|$)", "dataActions", "jobSchedules"),
)
VERBS = {"GET": "read", "HEAD": "read", "POST": "write", "PUT": "write", "PATCH": "write", "DELETE": "delete"}


def permission(method: str, path: str) -> tuple[str, str]:
    """The permission Batch checks for one data-plane request: (actions | dataActions, name)."""
    for pattern, kind, resource in RULES:
        if re.search(pattern, path):
            return kind, f"{ACCOUNT}/{resource}/{VERBS[method]}"
    raise AssertionError(f"{method} {path}: no permission mapped for this request; add a rule from Microsoft's docs")


def exercise(standin: BatchStandin) -> set[str]:
    """Every BatchGateway call, as the app makes them in Azure (a pool made by the hook, with its identity)."""
    standin.add_pool(POOL, targetDedicatedNodes=2)
    standin.finish_resize(POOL)
    gateway = standin.gateway(pool_id=POOL, job_id=JOB, slots_per_node=1, pool_identity_id=IDENTITY)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    task = TaskSpec(id="a.mp4", display_name="a.mp4", command_line="true", resource_files=(), output_files=())
    calls = {
        "ensure_pool": lambda: gateway.ensure_pool(PoolSpec(id=POOL, slots_per_node=1)),
        "ensure_job": lambda: gateway.ensure_job(POOL),
        "add_task": lambda: gateway.add_task(task),
        "task_status": lambda: gateway.task_status(task.id),
        "task_counts": gateway.task_counts,
        "open_tasks": gateway.open_tasks,
        "pool_state": gateway.pool_state,
        "resize": lambda: gateway.resize(3, 0),
        "stop_resize": gateway.stop_resize,
        "broken_nodes": lambda: (standin.finish_resize(POOL), standin.break_node(POOL, "tvm_1", stderr="E: x"),
                                 gateway.broken_nodes()),
        "remove_nodes": lambda: gateway.remove_nodes(["tvm_1"]),
        "finished_tasks_since": lambda: gateway.finished_tasks_since(None),
        "completed_tasks": lambda: gateway.completed_tasks(later, 10),
        "queued_tasks": lambda: gateway.queued_tasks(later, 10),
        "terminate_task": lambda: gateway.terminate_task(task.id),
        "delete_task": lambda: gateway.delete_task(task.id),
    }
    try:
        for call in calls.values():
            call()
    finally:
        gateway.close()
    port = {name for name, _ in inspect.getmembers(BatchGateway, inspect.isfunction) if not name.startswith("_")}
    assert set(calls) == port, "a BatchGateway call is not exercised here: add it, its requests need a permission"
    return {f"{r.method} {r.path}" for r in standin.requests}


def template_role() -> dict[str, set[str]]:
    (role,) = [r for r in all_resources() if r.type == "Microsoft.Authorization/roleDefinitions"]
    (permissions,) = role.body["properties"]["permissions"]
    return {kind: set(permissions[kind]) for kind in ("actions", "dataActions", "notActions", "notDataActions")}


def test_the_apps_batch_role_grants_exactly_what_the_adapter_sends(batch_standin: BatchStandin):
    sent = exercise(batch_standin)
    assert all(r.status < 400 for r in batch_standin.requests), [(r.path, r.status) for r in batch_standin.requests]
    needed: dict[str, set[str]] = {"actions": {f"{ACCOUNT}/read"}, "dataActions": set()}
    for request in sent:
        kind, name = permission(*request.split(" ", 1))
        needed[kind].add(name)
    role = template_role()
    assert role["actions"] == needed["actions"], sorted(sent)
    assert role["dataActions"] == needed["dataActions"], sorted(sent)
    assert role["notActions"] == set() and role["notDataActions"] == set()  # no wildcards to carve out
    assert not any("*" in p for p in role["actions"] | role["dataActions"])


def test_the_role_is_scoped_to_its_resource_group_and_held_by_the_app_and_the_deployer():
    (role,) = [r for r in all_resources() if r.type == "Microsoft.Authorization/roleDefinitions"]
    props = role.body["properties"]
    assert props["type"] == "CustomRole"
    this_group = {"function": {"type": "resource_group", "property_name": "id",
                               "parameters": {"resource_group_name": None, "subscription_id": None}}}
    assert props["assignableScopes"] == [this_group]  # resourceGroup().id: nowhere else in the subscription
    holders = {r.symbol: r.body for r in all_resources() if r.type == "Microsoft.Authorization/roleAssignments"
               and "operator" in r.body["properties"]["roleDefinitionId"]}
    assert {b["properties"]["principalId"] for b in holders.values()} == {"appPrincipalId", "userPrincipalId"}
    assert {b["scope"] for b in holders.values()} == {"batchAccount"}
    on_batch = {r.symbol for r in all_resources()
                if r.type == "Microsoft.Authorization/roleAssignments" and r.body["scope"] == "batchAccount"}
    assert on_batch == set(holders), "a built-in role is still assigned on the Batch account"


def test_a_request_without_a_rule_is_not_silently_allowed():
    try:
        permission("GET", "/applications")
    except AssertionError as exc:
        assert "no permission mapped" in str(exc)
    else:
        raise AssertionError("GET /applications was mapped")
    assert permission("DELETE", "/jobs/j/tasks/t") == ("dataActions", f"{ACCOUNT}/jobs/delete")
    assert permission("POST", "/pools/p/resize") == ("actions", f"{ACCOUNT}/pools/write")
