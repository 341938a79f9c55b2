"""The Batch quota rules the provision hook and doctor share: a VM size's family and vCPUs, its cores, what fits.

Pure: the SKUs and the account are the objects azure-mgmt-batch returns (read by attribute, no SDK import), so the
rules ship with the app's `shared` package that both the hooks (run from the repo) and `mp3pipe` (installed) import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.domain.scaling import ScalingSettings, split


@dataclass(frozen=True)
class VmSize:
    """A VM size as Batch offers it in a region: the quota family its cores count in, and its vCPUs."""

    name: str
    family: str
    vcpus: int


@dataclass(frozen=True)
class Cores:
    """The cores a pool of one VM family may use; None where the account reports no quota (user subscription
    mode: the subscription's own quotas apply, which the account does not show)."""

    dedicated: int | None
    spot: int | None


def offered_size(skus: Iterable[Any], vm_size: str) -> VmSize | None:
    """The family and vCPUs of `vm_size` from Batch's supported-SKU listing for the region (Standard_D2s_v3 ->
    standardDSv3Family, 2); None when Batch does not offer it there."""
    for sku in skus:
        if (sku.name or "").lower() == vm_size.lower():
            caps = {c.name: c.value for c in sku.capabilities or []}
            return VmSize(sku.name, sku.family_name or "", int(caps.get("vCPUs") or 0))
    return None


def family_quota(account: Any, family: str) -> int | None:
    """The account's own dedicated-core quota for a VM family (names compared without case: Azure's varies, e.g.
    standardHBrsv3Family); None when the account lists none for it."""
    for quota in account.dedicated_core_quota_per_vm_family or []:
        if (quota.name or "").lower() == family.lower():
            return quota.core_quota or 0
    return None


def dedicated_cores(account: Any, family: str) -> int | None:
    """The dedicated cores a VM family may use: with per-family quotas enforced, the lower of the family's quota (0
    when unlisted) and the account's total (both limits apply), else the total; None when there is no total."""
    total = account.dedicated_core_quota
    if total is None:
        return None
    if account.dedicated_core_quota_per_vm_family_enforced:
        return min(total, family_quota(account, family) or 0)
    return total


def cores_of(account: Any, family: str) -> Cores:
    return Cores(dedicated_cores(account, family), account.low_priority_core_quota)


def fits(nodes: int, cores: Cores, vcpus: int, scaling: ScalingSettings) -> bool:
    """Whether the quotas hold `nodes` nodes split into dedicated and Spot as the scaling policy splits them (a
    quota the account does not report is not counted against)."""
    dedicated, spot = split(nodes, scaling)
    return all(have is None or count * vcpus <= have
               for count, have in ((dedicated, cores.dedicated), (spot, cores.spot)))


def first_node_on_spot(scaling: ScalingSettings) -> bool:
    """Whether the pool's first node is a Spot one (only when every node may be Spot and no dedicated floor)."""
    return split(1, scaling)[1] == 1


def nodes_that_fit(cores: Cores, vcpus: int, scaling: ScalingSettings) -> int:
    """The most nodes, up to max_nodes, the quotas hold; 0: no node can start and every file would wait."""
    for nodes in range(1, scaling.max_nodes + 1):
        if not fits(nodes, cores, vcpus, scaling):
            return nodes - 1
    return max(scaling.max_nodes, 0)
