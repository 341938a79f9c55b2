"""The Batch account's quotas against what the pool needs: one node's cores in its VM family, Spot cores, a pool."""

from __future__ import annotations

from typing import Any

from infra.hooks.common import HookError
from shared.domain.batch_quotas import cores_of, family_quota, first_node_on_spot, nodes_that_fit, offered_size
from shared.settings import Settings
from shared.usecases.monitor.tick import scaling_settings

RAISE = ("Raise it in the Azure portal: Batch account {account} > Quotas > Request quota increase (or Help + "
         "support > Create a support request > Service and subscription limits (quotas) > Batch), then run "
         "`azd provision` again.")


def check(client: Any, group: str, account: str, settings: Settings, *, pool_exists: bool) -> list[str]:
    """Warnings about quotas that limit the pool; a HookError when they let no node start (or no pool exist)."""
    acct = client.batch_account.get(group, account)
    size = offered_size(client.location.list_supported_virtual_machine_skus(acct.location), settings.vm_size)
    if size is None:
        raise HookError(f"BATCH_VM_SIZE {settings.vm_size} is not a VM size Azure Batch offers in {acct.location}: "
                        f"choose one from `az batch location list-skus --location {acct.location}`")
    vcpus, spot = size.vcpus, settings.spot_share > 0
    cores = cores_of(acct, size.family)  # Spot cores count only if the share lets a node be Spot (split)
    need = (f"the family of BATCH_VM_SIZE {settings.vm_size}: {vcpus} vCPUs per node; BATCH_MAX_NODES="
            f"{settings.max_nodes} needs {vcpus * settings.max_nodes}")
    spot_text = (f"{_count(cores.spot)} Spot (low-priority) cores" if spot
                 else f"Spot is off (BATCH_SPOT_SHARE={settings.spot_share:g})")
    dedicated = _dedicated_text(acct, size.family, cores.dedicated)
    raise_it = RAISE.format(account=account)
    if not pool_exists and acct.pool_quota is not None and acct.pool_quota < 1:
        raise HookError(f"Batch account {account} has a pool quota of {acct.pool_quota}: the pool cannot be "
                        f"created. {raise_it}")
    scaling = scaling_settings(settings)
    nodes = nodes_that_fit(cores, vcpus, scaling)
    if nodes == 0:
        first = ("" if not spot or first_node_on_spot(scaling) else
                 f" (with BATCH_SPOT_SHARE={settings.spot_share:g} the first node is dedicated; only a share of 1 "
                 f"starts on Spot alone)")
        raise HookError(f"Batch account {account} has {dedicated} ({need}) and {spot_text}: no node can start"
                        f"{first} and every file would wait in the queue. {raise_it}")
    if nodes < settings.max_nodes:
        return [f"Batch account {account} has {dedicated} and {spot_text}: at most {nodes} of "
                f"BATCH_MAX_NODES={settings.max_nodes} nodes ({need}). {raise_it}"]
    return []


def _count(cores: int | None) -> str:
    return "an unreported number of" if cores is None else str(cores)


def _dedicated_text(acct: Any, family: str, dedicated: int | None) -> str:
    """The dedicated cores the family may use, and which limit sets them."""
    if dedicated is None:
        return "no dedicated core quota of its own (user subscription mode: the subscription's quotas apply)"
    if not acct.dedicated_core_quota_per_vm_family_enforced:
        return f"{dedicated} dedicated cores"
    own = family_quota(acct, family) or 0
    limit = "" if own <= dedicated else f" (the account's total, below the family's own {own})"
    return f"{dedicated} dedicated cores for {family}{limit}"
