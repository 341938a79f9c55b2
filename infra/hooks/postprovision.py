"""azd postprovision hook: create the Batch pool with the pool's user-assigned identity, once (only if absent).

An ARM pool resource in Bicep fails on redeploy when its unchanged properties include a user-assigned identity
(Azure/Batch #153), and Batch's data plane cannot give a pool an identity; so the pool is made here, from the same
definition the app uses (AzureBatchGateway.pool_create_options), and an existing pool is left as it is.
First the account's quotas are read: a VM family with no cores (new accounts can have 0) stops the hook with the
numbers and where to raise them, rather than leaving every file waiting for a node that never comes.
"""

from __future__ import annotations

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


def main(credential: Any = None, env: Mapping[str, str] | None = None) -> int:
    return run_main(ensure_pool, credential, env)


if __name__ == "__main__":
    sys.exit(main())
