"""The app's pool definition (AzureBatchGateway.pool_create_options) as an ARM Batch pool with the pool identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.mgmt.batch import models as arm

from infra.hooks.common import HookError
from shared.adapters.batch.azure import AzureBatchGateway
from shared.settings import Settings
from shared.usecases.job import pool_spec


def _enum(enum: type, value: str) -> str:
    for member in enum:  # type: ignore[attr-defined]
        if member.value.lower() == str(value).lower():
            return member.value
    raise HookError(f"{value!r} is not a {enum.__name__} of the Batch management API")


def _start_task(task: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in task.items():
        if key in ("commandLine", "maxTaskRetryCount", "waitForSuccess"):
            out[key] = value
        elif key == "userIdentity" and set(value) == {"autoUser"}:
            auto = value["autoUser"]
            out[key] = {"autoUser": {"scope": _enum(arm.AutoUserScope, auto["scope"]),
                                     "elevationLevel": _enum(arm.ElevationLevel, auto["elevationLevel"])}}
        else:
            raise HookError(f"the app's start task sets {key!r}, which this hook does not map to ARM yet")
    return out


def arm_pool(data_plane: Mapping[str, Any], identity_id: str) -> dict[str, Any]:
    """Data-plane pool JSON (what the app would POST /pools) -> the ARM PUT body, field for field.

    Any field without a mapping stops the hook: the pool is never made with part of the app's definition missing.
    """
    props: dict[str, Any] = {}
    scale: dict[str, Any] = {}
    for key, value in data_plane.items():
        if key == "id":
            continue
        if key == "vmSize" or key == "taskSlotsPerNode":
            props[key] = value
        elif key == "virtualMachineConfiguration":
            vm = dict(value)
            config = {"imageReference": vm.pop("imageReference"), "nodeAgentSkuId": vm.pop("nodeAgentSKUId")}
            if vm:
                raise HookError(f"the app's VM configuration sets {sorted(vm)}, which this hook does not map")
            props["deploymentConfiguration"] = {"virtualMachineConfiguration": config}
        elif key in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            scale[key] = value
        elif key == "enableAutoScale":
            if value:
                raise HookError("the app's pool uses autoscale; the hook only makes fixed-scale pools")
        elif key == "taskSchedulingPolicy":
            props[key] = {"nodeFillType": _enum(arm.ComputeNodeFillType, value["nodeFillType"])}
        elif key == "startTask":
            props[key] = _start_task(value)
        elif key == "metadata":
            props[key] = [{"name": m["name"], "value": m["value"]} for m in value]
        else:
            raise HookError(f"the app's pool sets {key!r}, which this hook does not map to ARM yet")
    props["scaleSettings"] = {"fixedScale": scale}
    return {
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity_id: {}}},
        "properties": props,
    }


def app_pool(settings: Settings) -> dict[str, Any]:
    """The data-plane pool the app itself would create, built by the app's own adapter (no request is sent)."""
    adapter = AzureBatchGateway.from_settings(settings)
    try:
        return adapter.pool_create_options(pool_spec(settings)).as_dict()
    finally:
        adapter.close()
