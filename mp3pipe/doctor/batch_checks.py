"""The doctor's checks of Azure Batch: the pool and its identity, the account's quotas for the VM family."""

from __future__ import annotations

from typing import Any

from mp3pipe.doctor.model import NOT_READ, OK, PROBLEM, UNREAD, Deployment, read, reason, status_of
from shared.domain.batch_quotas import (
    VmSize,
    cores_of,
    dedicated_cores,
    family_quota,
    first_node_on_spot,
    nodes_that_fit,
    offered_size,
)
from shared.usecases.monitor.tick import scaling_settings


def check_pool(d: Deployment, batch: Any) -> None:
    s = d.settings
    again = (f"`az resource delete --ids {d.resource_id('pool')}` (the pool holds no state; the monitor is idle "
             "without it), then `azd hooks run postprovision`")

    def missing(exc: Any) -> bool:
        if status_of(exc) != 404:
            return False
        d.pool_missing = True
        d.add("Batch pool", PROBLEM, f"pool {s.pool_id} does not exist in Batch account {d.batch}: no file converts",
              "`azd hooks run postprovision` (it creates the pool with its identity)")
        return True

    pool = read(d, "Batch pool", f"Batch pool {s.pool_id}", lambda: batch.pool.get(d.group, d.batch, s.pool_id),
                missing)
    if pool is NOT_READ:
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
    account = read(d, "Batch quotas", f"Batch account {d.batch}", lambda: batch.batch_account.get(d.group, d.batch))
    if account is NOT_READ:
        return
    size = _offered_size(d, batch, account.location)
    if size is None:
        return
    p = account.properties
    where = f"the portal: Batch accounts > {d.batch} > Quotas > Request quota increase"
    other_size = (f"or use a VM size that has quota: `azd env set BATCH_VM_SIZE <size>`, `az resource delete --ids "
                  f"{d.resource_id('pool')}`, `azd provision`")
    if d.pool_missing:
        pools = read(d, "Batch quotas", f"the pools of {d.batch}",
                     lambda: list(batch.pool.list_by_batch_account(d.group, d.batch)))
        used = len(pools) if pools is not NOT_READ else 0
        if p.pool_quota is not None and used >= p.pool_quota:
            d.add("Batch quotas", PROBLEM, f"pool quota {p.pool_quota}, {used} pool(s) in use: the pool cannot be "
                  "created", f"delete an unused pool, or {where} (Pools)")
    scaling = scaling_settings(s)
    nodes = nodes_that_fit(cores_of(p, size.family), size.vcpus, scaling)
    if not first_node_on_spot(scaling):
        _dedicated(d, p, size, nodes, f"{where} (Dedicated vCPUs, {size.family}, at least {size.vcpus}); "
                   f"{other_size}")
    if s.spot_share > 0:
        low, cores = p.low_priority_core_quota, size.vcpus
        if low is not None and low < cores:
            d.add("Batch quotas", PROBLEM,
                  f"Spot: {low} core(s) (BATCH_SPOT_SHARE={s.spot_share}); a {s.vm_size} node needs {cores}",
                  f"{where} (Spot/low-priority vCPUs, at least {cores}); or set BATCH_SPOT_SHARE=0")
        elif low is not None:
            d.add("Batch quotas", OK, f"Spot: {low} core(s), room for {low // cores} {s.vm_size} node(s)")


def _offered_size(d: Deployment, batch: Any, location: str) -> VmSize | None:
    """BATCH_VM_SIZE's family and vCPUs as Batch offers it in the account's region; None after saying why not."""
    s, what = d.settings, f"the VM sizes Azure Batch offers in {location}"

    def refused(exc: Any) -> bool:  # the listing is per subscription: a resource group's Reader may not read it
        if status_of(exc) != 403:
            return False
        d.add("Batch quotas", UNREAD, f"cannot read {what}: your sign-in may not read it ({reason(exc)})",
              "ask an Owner for Reader on the subscription: `az role assignment create --assignee <your sign-in> "
              f"--role Reader --scope /subscriptions/{d.subscription}`")
        return True

    skus = read(d, "Batch quotas", what,
                lambda: list(batch.location.list_supported_virtual_machine_skus(location)), refused)
    if skus is NOT_READ:
        return None
    size = offered_size(skus, s.vm_size)
    if size is None:
        d.add("Batch quotas", PROBLEM, f"BATCH_VM_SIZE {s.vm_size} is not a VM size Azure Batch offers in "
              f"{location}: the pool cannot be made", f"choose one from `az batch location list-skus --location "
              f"{location}`, then `azd env set BATCH_VM_SIZE <size>` and `azd provision`")
    return size


def _dedicated(d: Deployment, p: Any, size: VmSize, nodes: int, fix: str) -> None:
    vm_size, cores, family = d.settings.vm_size, size.vcpus, size.family
    room = dedicated_cores(p, family)
    if room is None:
        d.add("Batch quotas", UNREAD, f"Batch account {d.batch} reports no dedicated core quota (user subscription "
              "mode: the subscription's quotas apply)")
        return
    what = f"{room} dedicated core(s) in the account"
    if p.dedicated_core_quota_per_vm_family_enforced:
        own = family_quota(p, family)
        if own is None:
            have = ", ".join(f"{q.name}={q.core_quota}" for q in sorted(
                p.dedicated_core_quota_per_vm_family or [], key=lambda q: q.name or "") if q.core_quota) or "none"
            d.add("Batch quotas", PROBLEM, f"the account lists no dedicated quota for {family} (the family of "
                  f"{vm_size}); families with cores: {have}", fix)
            return
        what = f"{own} dedicated core(s) for {family} ({p.dedicated_core_quota} in the account)"
    if nodes == 0:  # the first node is dedicated (see check_quota), and it does not fit
        d.add("Batch quotas", PROBLEM, f"{what}: a {vm_size} node needs {cores}, so the pool can never start a "
              "node (the monitor's resize fails with a quota error)", fix)
        return
    note = (f"; the pool can grow to {nodes} of BATCH_MAX_NODES={d.settings.max_nodes}"
            if nodes < d.settings.max_nodes else "")
    d.add("Batch quotas", OK, f"{what}: room for {room // cores} {vm_size} node(s){note}")
