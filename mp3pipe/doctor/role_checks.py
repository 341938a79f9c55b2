"""The doctor's check of role assignments: each Grant infra/modules/roles.bicep makes, held or covered."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mp3pipe.doctor.model import NOT_READ, OK, PROBLEM, UNREAD, Deployment, read

# Built-in role GUIDs (tests/data/builtin_roles.json lists Microsoft's; a test checks these against it).
ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Azure Batch Data Contributor": "6aaa78f1-f7de-44ca-8722-c64a23943cae",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# The template's custom role (infra/modules/roles.bicep batchAppRole): what the app's Batch adapter sends, no more.
# Its GUID is made per resource group; main.bicep outputs it as BATCH_APP_ROLE_ID into the azd environment.
BATCH_APP_ROLE = "mp3pipe Batch app"
# A role that grants everything another does (a deployer with Owner on blobs can drop files too).
COVERS = {
    BATCH_APP_ROLE: ("Azure Batch Data Contributor",),
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
    Grant("app", "Storage Table Data Contributor", "storage"),
    Grant("app", BATCH_APP_ROLE, "batch"),
    Grant("app", "Monitoring Metrics Publisher", "insights"),
    Grant("pool", "Storage Blob Data Reader", "input"),
    Grant("pool", "Storage Blob Data Contributor", "output"),
    Grant("topic", "Storage Blob Data Contributor", "deadLetter"),
    Grant("topic", "Storage Queue Data Message Sender", "notifyQueue"),  # only with MP3PIPE_NOTIFY_QUEUE
    Grant("user", "Storage Blob Data Contributor", "storage"),  # only with AZURE_PRINCIPAL_ID
    Grant("user", BATCH_APP_ROLE, "batch"),
)
WHO = {"app": "the Function App's identity", "pool": "the pool's identity", "topic": "the Event Grid topic's identity",
       "user": "you (AZURE_PRINCIPAL_ID)"}


def check_roles(d: Deployment, grid: Any, msi: Any, auth: Any) -> None:
    principals: dict[str, set[str]] = {}
    if d.site is not None and d.site.identity is not None:
        principals["app"] = {u.principal_id for u in (d.site.identity.user_assigned_identities or {}).values()
                             if u.principal_id}
    pool_id = re.match(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/Microsoft.ManagedIdentity/"
                       r"userAssignedIdentities/([^/]+)$", d.settings.pool_identity_id or "", re.I)
    if pool_id:
        identity = read(d, "roles", f"the pool's identity {pool_id[2]}",
                        lambda: msi.user_assigned_identities.get(pool_id[1], pool_id[2]))
        if identity is not NOT_READ and identity.principal_id:
            principals["pool"] = {identity.principal_id}
    topic = read(d, "roles", f"Event Grid system topic {d.topic}", lambda: grid.system_topics.get(d.group, d.topic))
    if topic is not NOT_READ and topic.identity is not None and topic.identity.principal_id:
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
            found = read(d, "roles", "role assignments", lambda pid=pid: list(
                auth.role_assignments.list_for_resource_group(d.group, filter=f"principalId eq '{pid}'")))
            if found is NOT_READ:
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
        role = f'"{g.role}"' if g.role in ROLES else (role_guid(g.role, d) or "<BATCH_APP_ROLE_ID>")
        d.add("roles", PROBLEM, f"{WHO[g.who]} lacks {g.role} on {d.resource_id(g.scope)}",
              f"`azd provision` (the template makes it), or `az role assignment create --assignee-object-id {pid} "
              f"--assignee-principal-type {kind} --role {role} --scope {scope}`; new roles take a few "
              "minutes to apply")
    mine = ("" if d.env.get("AZURE_PRINCIPAL_ID")
            else " (yours not checked: no AZURE_PRINCIPAL_ID in the azd environment)")
    if good:
        d.add("roles", OK, f"{good} role assignment(s) in place{mine}")


def role_guid(role: str, d: Deployment) -> str:
    """A built-in role's GUID, or the custom role's from the azd environment ("" when it has none yet)."""
    return (d.env.get("BATCH_APP_ROLE_ID") or "").lower() if role == BATCH_APP_ROLE else ROLES[role]


def _grants(assignment: Any, g: Grant, d: Deployment) -> bool:
    """Does this assignment give `g`: the role (or one that covers it) at the scope or above it?"""
    role = (assignment.role_definition_id or "").rsplit("/", 1)[-1].lower()
    if not role or role not in {role_guid(r, d) for r in (g.role, *COVERS.get(g.role, ()))}:
        return False
    scope = (assignment.scope or "").rstrip("/").lower()
    if g.scope == "insights":
        under = f"{d.rg_id}/providers/microsoft.insights/components/".lower()
        return scope.startswith(under) or _above(scope, d.rg_id.lower())
    return _above(scope, d.resource_id(g.scope).lower())


def _above(scope: str, target: str) -> bool:
    return scope == target or target.startswith(scope + "/")
