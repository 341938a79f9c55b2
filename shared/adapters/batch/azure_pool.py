"""The pool this app creates on Azure Batch: image, start task (apt with retries)."""

from __future__ import annotations

from azure.batch import models as bm

from shared.ports.batch import PoolSpec

APP_NAME = "mp3pipe"

# Ubuntu 18.04/20.04 images are retired for Batch; 24.04 LTS with its node agent.
IMAGE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
NODE_AGENT_SKU = "batch.node.ubuntu 24.04"
APT_ATTEMPTS = 5

# Runs once per node as root. Each apt step waits up to 300 s for the dpkg lock (unattended-upgrades at boot)
# and is tried APT_ATTEMPTS times, 15, 30, 45, 60 s apart: a mirror hiccup or the package lists lock
# (which DPkg::Lock::Timeout does not cover) must not leave a node with a failed start task.
_APT = "apt-get -o DPkg::Lock::Timeout=300"
_RETRY = (f"for i in $(seq 1 {APT_ATTEMPTS}); do {{step}} && break; "
          f"[ $i -lt {APT_ATTEMPTS} ] || exit 1; sleep $((i * 15)); done")
# Tasks run the node-side runner (shared/node) with python3: Ubuntu images ship it, apt makes sure of it, and a
# node without it fails its start task visibly instead of failing every task.
START_TASK_COMMAND = (
    '/bin/bash -c "set -uo pipefail; export DEBIAN_FRONTEND=noninteractive; '
    + _RETRY.format(step=f"{_APT} update -y") + "; "
    + _RETRY.format(step=f"{_APT} install -y --no-install-recommends ffmpeg python3") + "; "
    + 'ffmpeg -hide_banner -version && python3 --version"'
)

def pool_definition(spec: PoolSpec, *, vm_size: str, app_name: str = APP_NAME) -> bm.BatchPoolCreateOptions:
    """The one definition of the pool (the monitor creates it when missing; deployment hooks reuse it)."""
    metadata = dict(spec.metadata)
    metadata.setdefault("app", app_name)
    return bm.BatchPoolCreateOptions(
        id=spec.id,
        vm_size=vm_size,
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=bm.BatchVmImageReference(**IMAGE),
            node_agent_sku_id=NODE_AGENT_SKU,
        ),
        target_dedicated_nodes=spec.initial_dedicated_nodes,
        target_low_priority_nodes=0,
        enable_auto_scale=False,
        task_slots_per_node=spec.slots_per_node,
        # Pack tasks onto the fewest nodes so shrinking (taskcompletion) finds idle nodes sooner.
        task_scheduling_policy=bm.BatchTaskSchedulingPolicy(node_fill_type=bm.BatchNodeFillType.PACK),
        start_task=bm.BatchStartTask(
            command_line=START_TASK_COMMAND,
            user_identity=bm.UserIdentity(
                auto_user=bm.AutoUserSpecification(scope=bm.AutoUserScope.POOL, elevation_level=bm.ElevationLevel.ADMIN)
            ),
            max_task_retry_count=2,
            wait_for_success=True,
        ),
        metadata=[bm.BatchMetadataItem(name=k, value=v) for k, v in metadata.items()],
    )
