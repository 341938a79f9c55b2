"""The doctor's checks of Azure Batch: the pool and its identity, the account's quotas for the VM family."""

from __future__ import annotations

import re
from typing import Any

from mp3pipe.doctor.model import NOT_READ, OK, PROBLEM, UNREAD, Deployment, read, status_of
from shared.settings import vcpus_of

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
    p = account.properties
    where = f"the portal: Batch accounts > {d.batch} > Quotas > Request quota increase"
    other_size = (f"or use a VM size that has quota: `azd env set BATCH_VM_SIZE <size>`, `az resource delete --ids "
                  f"{d.resource_id('pool')}`, `azd provision`")
    cores = vcpus_of(s.vm_size)
    if cores is None:
        d.add("Batch quotas", UNREAD, f"the vCPUs of BATCH_VM_SIZE={s.vm_size} are not known from its name")
        return
    if d.pool_missing:
        pools = read(d, "Batch quotas", f"the pools of {d.batch}",
                     lambda: list(batch.pool.list_by_batch_account(d.group, d.batch)))
        used = len(pools) if pools is not NOT_READ else 0
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
