"""The Batch account's quotas against what the pool needs: one node's cores in its VM family, Spot cores, a pool."""

from __future__ import annotations

from typing import Any

from infra.hooks.common import HookError
from shared.domain.scaling import split
from shared.settings import Settings
from shared.usecases.monitor.tick import scaling_settings

RAISE = ("Raise it in the Azure portal: Batch account {account} > Quotas > Request quota increase (or Help + "
         "support > Create a support request > Service and subscription limits (quotas) > Batch), then run "
         "`azd provision` again.")


def vm_family(client: Any, location: str, vm_size: str) -> tuple[str, int]:
    """(quota family, vCPUs) of a VM size, as Batch lists it for the region (Standard_D2s_v3 -> standardDSv3Family)."""
    for sku in client.location.list_supported_virtual_machine_skus(location):
        if (sku.name or "").lower() == vm_size.lower():
            caps = {c.name: c.value for c in sku.capabilities or []}
            return sku.family_name or "", int(caps.get("vCPUs") or 0)
    raise HookError(f"BATCH_VM_SIZE {vm_size} is not a VM size Azure Batch offers in {location}: choose one from "
                    f"`az batch location list-skus --location {location}`")


def check(client: Any, group: str, account: str, settings: Settings, *, pool_exists: bool) -> list[str]:
    """Warnings about quotas that limit the pool; a HookError when they let no node start (or no pool exist)."""
    acct = client.batch_account.get(group, account)
    family, vcpus = vm_family(client, acct.location, settings.vm_size)
    if acct.dedicated_core_quota_per_vm_family_enforced:
        dedicated = next((q.core_quota or 0 for q in acct.dedicated_core_quota_per_vm_family or []
                          if (q.name or "").lower() == family.lower()), 0)
        where = f"dedicated cores for {family}"
    else:
        dedicated, where = acct.dedicated_core_quota or 0, "dedicated cores"
    spot = settings.spot_share > 0
    low = (acct.low_priority_core_quota or 0) if spot else 0
    need = (f"the family of BATCH_VM_SIZE {settings.vm_size}: {vcpus} vCPUs per node; BATCH_MAX_NODES="
            f"{settings.max_nodes} needs {vcpus * settings.max_nodes}")
    spot_text = (f"{low} Spot (low-priority) cores" if spot
                 else f"Spot is off (BATCH_SPOT_SHARE={settings.spot_share:g})")
    raise_it = RAISE.format(account=account)
    if not pool_exists and (acct.pool_quota or 0) < 1:
        raise HookError(f"Batch account {account} has a pool quota of {acct.pool_quota or 0}: the pool cannot be "
                        f"created. {raise_it}")
    # The first node is the one that matters: the scaling policy's own split says whether it is dedicated or Spot.
    first_dedicated, first_spot = split(1, scaling_settings(settings))
    if (first_dedicated and dedicated < vcpus) or (first_spot and low < vcpus):
        first = ("" if not spot or first_spot else
                 f" (with BATCH_SPOT_SHARE={settings.spot_share:g} the first node is dedicated; only a share of 1 "
                 f"starts on Spot alone)")
        raise HookError(f"Batch account {account} has {dedicated} {where} ({need}) and {spot_text}: no node can "
                        f"start{first} and every file would wait in the queue. {raise_it}")
    nodes = dedicated // vcpus + low // vcpus
    if nodes < settings.max_nodes:
        return [f"Batch account {account} has {dedicated} {where} and {spot_text}: at most {nodes} of "
                f"BATCH_MAX_NODES={settings.max_nodes} nodes ({need}). {raise_it}"]
    return []
