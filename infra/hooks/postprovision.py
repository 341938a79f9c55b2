"""azd postprovision hook: create the Batch pool with the pool's user-assigned identity, once (only if absent).

An ARM pool resource in Bicep fails on redeploy when its unchanged properties include a user-assigned identity
(Azure/Batch #153), and Batch's data plane cannot give a pool an identity; so the pool is made here, from the same
definition the app uses (AzureBatchGateway.pool_create_options), and an existing pool is left as it is.
First the account's quotas are read: a VM family with no cores (new accounts can have 0) stops the hook with the
numbers and where to raise them, rather than leaving every file waiting for a node that never comes.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from infra.hooks import quotas
from infra.hooks.common import HookError, client_options, need, run_main
from infra.hooks.pool import app_pool, arm_pool
from shared.settings import Settings, SettingsError


def ensure_pool(env: Mapping[str, str], credential: Any, *, base_url: str | None = None, **transport: Any) -> str:
    from azure.mgmt.batch import BatchManagementClient

    subscription, group, account = need(env, "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP",
                                        "AZURE_BATCH_ACCOUNT_NAME")
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        raise HookError(str(exc)) from None
    if not settings.pool_identity_id:
        raise HookError("BATCH_POOL_IDENTITY_ID is not set: the pool's nodes need the identity to reach storage")
    client = BatchManagementClient(credential, subscription, **client_options(base_url, **transport))
    try:
        try:
            existing = client.pool.get(group, account, settings.pool_id)
        except ResourceNotFoundError:
            existing = None
        warnings = quotas.check(client, group, account, settings, pool_exists=existing is not None)
        for warning in warnings:
            print(f"warning: {warning}", flush=True)
        if existing is not None:
            identities = (existing.identity.user_assigned_identities or {}) if existing.identity else {}
            if settings.pool_identity_id.lower() not in {k.lower() for k in identities}:
                raise HookError(
                    f"Batch pool {settings.pool_id} exists without the identity {settings.pool_identity_id}; its "
                    "nodes cannot reach storage. Delete the pool (it has no state) and run `azd provision` again")
            return f"Batch pool {settings.pool_id} exists with its identity; left as it is"
        body = arm_pool(app_pool(settings), settings.pool_identity_id)
        try:
            # If-None-Match: * -- never overwrites a pool that appeared since the GET.
            client.pool.create(group, account, settings.pool_id, body, match_condition=MatchConditions.IfMissing)
        except HttpResponseError as exc:
            raise HookError(f"creating Batch pool {settings.pool_id} failed: {exc.message}") from None
        return (f"created Batch pool {settings.pool_id} ({settings.vm_size}, {settings.slots_per_node} slot(s) per "
                f"node, 0 nodes) with identity {settings.pool_identity_id.rsplit('/', 1)[-1]}")
    finally:
        client.close()


NO_ALERT_EMAIL = (
    "warning: MP3PIPE_ALERT_EMAIL is not set: the alert rules (files failing or stopped, and the monitor silent for "
    "15 minutes, which leaves the Batch pool at its last size) fire, but reach nobody. To be emailed: "
    "`azd env set MP3PIPE_ALERT_EMAIL you@example.com`, then `azd provision`.")


def alert_note(env: Mapping[str, str]) -> str | None:
    """What provisioning says when no alert e-mail is configured (main.parameters.json maps it to alertEmail)."""
    return None if (env.get("MP3PIPE_ALERT_EMAIL") or "").strip() else NO_ALERT_EMAIL


def main(credential: Any = None, env: Mapping[str, str] | None = None, **transport: Any) -> int:
    code = run_main(functools.partial(ensure_pool, **transport), credential, env)
    note = alert_note(env if env is not None else os.environ)
    if note:
        print(note, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
