"""Typed app settings read from the environment; one clear error naming each bad setting."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.node.presets import PRESETS

CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Every app setting the code reads, with its local default (mirrored in local.settings.sample.json).
DEFAULTS: dict[str, str] = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "INPUT_CONTAINER": "mp4-in",
    "OUTPUT_CONTAINER": "mp3-out",
    "STATE_CONTAINER": "mp3pipe-state",
    "FFMPEG_PRESET": "standard",
    "MONITOR_SCHEDULE": "0 * * * * *",
    "RECONCILE_SCHEDULE": "30 */10 * * * *",
    "RECONCILE_BATCH": "500",
    "BATCH_GATEWAY": "local",
    "BATCH_ACCOUNT_URL": "",
    "BATCH_ACCOUNT_KEY": "",
    "BATCH_POOL_ID": "mp3pipe-pool",
    "BATCH_JOB_ID": "mp3pipe-job",
    "BATCH_VM_SIZE": "standard_d2s_v3",
    "BATCH_SLOTS_PER_NODE": "",
    "BATCH_MIN_NODES": "",
    "BATCH_MAX_NODES": "10",
    "BATCH_POOL_IDENTITY_ID": "",
    "BATCH_FFMPEG_PACKAGE": "",
    "BATCH_SPOT_SHARE": "0",
    "BATCH_DEDICATED_FLOOR": "0",
    "SCALE_IDLE_GRACE_SECONDS": "300",
    "TASK_MAX_RETRIES": "1",
    "TASK_MAX_WALL_CLOCK_SECONDS": "3600",
    "TASK_RETENTION_SECONDS": "900",
    "LOCAL_STATE_DIR": ".state",
    "FFMPEG_PATH": "",
}


# Node URLs (SAS mode) are signed for TASK_MAX_WALL_CLOCK_SECONDS + 12 h with a user-delegation key that lives
# 1 h 5 min longer (shared/adapters/storage.py); Azure caps a user-delegation key at 7 days.
URL_GRACE_SECONDS = 12 * 3600
DELEGATION_KEY_MAX_SECONDS = 7 * 24 * 3600
DELEGATION_KEY_MARGIN_SECONDS = 65 * 60
MAX_WALL_CLOCK_WITH_SAS = DELEGATION_KEY_MAX_SECONDS - URL_GRACE_SECONDS - DELEGATION_KEY_MARGIN_SECONDS
MAX_SLOTS = 256  # Batch: taskSlotsPerNode at most 4 x the node's vCPUs, and 256
_VM_VCPUS = re.compile(r"^standard_[a-z]+?(\d+)(?:-(\d+))?", re.IGNORECASE)


def vcpus_of(vm_size: str) -> int | None:
    """vCPUs of an Azure VM size from its name (standard_d2s_v3 -> 2, standard_e8-4s_v5 -> 4); None if unknown."""
    m = _VM_VCPUS.match(vm_size.strip())
    if m is None:
        return None
    return int(m.group(2) or m.group(1)) or None


class SettingsError(ValueError):
    """One or more app settings are missing or malformed; the message names each of them."""


@dataclass(frozen=True)
class Settings:
    """The validated app settings."""

    storage_connection: str
    input_container: str
    output_container: str
    state_container: str
    ffmpeg_preset: str
    monitor_schedule: str
    reconcile_schedule: str
    reconcile_batch: int
    batch_gateway: str
    batch_account_url: str
    batch_account_key: str = field(repr=False)
    pool_id: str
    job_id: str
    vm_size: str
    slots_per_node: int
    min_nodes: int
    max_nodes: int
    pool_identity_id: str
    ffmpeg_package: str
    spot_share: float
    dedicated_floor: int
    idle_grace_seconds: int
    task_max_retries: int
    task_max_wall_clock_seconds: int
    task_retention_seconds: int
    local_state_dir: Path
    ffmpeg_path: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        errors: list[str] = []

        def get(name: str) -> str:
            value = env.get(name)
            if value is None or value.strip() == "":
                value = DEFAULTS[name]
            return value.strip()

        def integer(name: str, low: int, high: int | None = None) -> int:
            raw = get(name)
            try:
                value = int(raw)
            except ValueError:
                errors.append(f"{name}={raw!r} is not a whole number")
                return low
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f">= {low}"
                errors.append(f"{name}={value} must be {bound}")
            return value

        def fraction(name: str) -> float:
            raw = get(name)
            try:
                value = float(raw)
            except ValueError:
                errors.append(f"{name}={raw!r} is not a number")
                return 0.0
            if not 0.0 <= value <= 1.0:
                errors.append(f"{name}={value} must be between 0 and 1")
            return value

        def container(name: str) -> str:
            value = get(name)
            if not CONTAINER_RE.match(value):
                errors.append(
                    f"{name}={value!r} is not a valid container name "
                    "(3-63 of lower-case letters, digits and single hyphens)"
                )
            return value

        def batch_id(name: str) -> str:
            value = get(name)
            if not BATCH_ID_RE.match(value):
                errors.append(f"{name}={value!r} must be 1-64 of letters, digits, '-' and '_'")
            return value

        storage = get("AzureWebJobsStorage")
        has_identity = bool(
            env.get("AzureWebJobsStorage__accountName")
            or env.get("AzureWebJobsStorage__blobServiceUri")
        )
        if not has_identity and not (
            storage.startswith("UseDevelopmentStorage=true")
            or ("AccountName=" in storage and ("BlobEndpoint=" in storage or "EndpointSuffix" in storage
                                               or "DefaultEndpointsProtocol=" in storage))
        ):
            errors.append(
                "AzureWebJobsStorage is not a storage connection string "
                "(expected UseDevelopmentStorage=true or DefaultEndpointsProtocol=...;AccountName=...)"
            )
        if has_identity and "AzureWebJobsStorage" not in env:
            storage = ""

        preset = get("FFMPEG_PRESET")
        if preset not in PRESETS:
            errors.append(f"FFMPEG_PRESET={preset!r} is unknown; choose one of {', '.join(sorted(PRESETS))}")

        def ncrontab(name: str) -> str:
            value = get(name)
            if len(value.split()) != 6:
                errors.append(
                    f"{name}={value!r} is not an NCRONTAB expression with 6 fields "
                    "(second minute hour day month weekday)"
                )
            return value

        schedule = ncrontab("MONITOR_SCHEDULE")
        reconcile_schedule = ncrontab("RECONCILE_SCHEDULE")

        gateway = get("BATCH_GATEWAY").lower()
        if gateway not in ("local", "azure"):
            errors.append(f"BATCH_GATEWAY={gateway!r} must be 'local' or 'azure'")
        account_url = get("BATCH_ACCOUNT_URL")
        if gateway == "azure" and not account_url.startswith(("https://", "http://")):
            errors.append(
                "BATCH_ACCOUNT_URL must be set to the Batch account URL (https://...) when BATCH_GATEWAY=azure"
            )

        vm_size = get("BATCH_VM_SIZE")
        vcpus = vcpus_of(vm_size)
        if get("BATCH_SLOTS_PER_NODE") == "":
            # libmp3lame encodes on one thread: one conversion per vCPU keeps every core busy.
            slots = min(vcpus or 1, MAX_SLOTS)
        else:
            slots = integer("BATCH_SLOTS_PER_NODE", 1, MAX_SLOTS)
            if vcpus is not None and slots > 4 * vcpus:
                errors.append(f"BATCH_SLOTS_PER_NODE={slots} is more than Batch allows on {vm_size} "
                              f"({vcpus} vCPUs: at most 4 x vCPUs = {min(4 * vcpus, MAX_SLOTS)} slots per node)")
        max_nodes = integer("BATCH_MAX_NODES", 1)
        if get("BATCH_MIN_NODES") == "":
            # Idle local slots cost nothing, so locally the floor is the machine's cores.
            min_nodes = min(os.cpu_count() or 1, max_nodes) if gateway == "local" else 0
        else:
            min_nodes = integer("BATCH_MIN_NODES", 0)
        if min_nodes > max_nodes:
            errors.append(f"BATCH_MIN_NODES={min_nodes} is above BATCH_MAX_NODES={max_nodes}")

        settings = cls(
            storage_connection=storage,
            input_container=container("INPUT_CONTAINER"),
            output_container=container("OUTPUT_CONTAINER"),
            state_container=container("STATE_CONTAINER"),
            ffmpeg_preset=preset,
            monitor_schedule=schedule,
            reconcile_schedule=reconcile_schedule,
            reconcile_batch=integer("RECONCILE_BATCH", 1, 5000),
            batch_gateway=gateway,
            batch_account_url=account_url,
            batch_account_key=get("BATCH_ACCOUNT_KEY"),
            pool_id=batch_id("BATCH_POOL_ID"),
            job_id=batch_id("BATCH_JOB_ID"),
            vm_size=vm_size,
            slots_per_node=slots,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            pool_identity_id=get("BATCH_POOL_IDENTITY_ID"),
            ffmpeg_package=get("BATCH_FFMPEG_PACKAGE"),
            spot_share=fraction("BATCH_SPOT_SHARE"),
            dedicated_floor=integer("BATCH_DEDICATED_FLOOR", 0),
            idle_grace_seconds=integer("SCALE_IDLE_GRACE_SECONDS", 0),
            task_max_retries=integer("TASK_MAX_RETRIES", 0, 100),
            task_max_wall_clock_seconds=integer("TASK_MAX_WALL_CLOCK_SECONDS", 10),
            task_retention_seconds=integer("TASK_RETENTION_SECONDS", 60),
            local_state_dir=Path(get("LOCAL_STATE_DIR")),
            ffmpeg_path=get("FFMPEG_PATH"),
        )
        if not settings.pool_identity_id and settings.task_max_wall_clock_seconds > MAX_WALL_CLOCK_WITH_SAS:
            errors.append(
                f"TASK_MAX_WALL_CLOCK_SECONDS={settings.task_max_wall_clock_seconds} is too long for SAS node URLs: "
                f"they are signed for it + 12 h with a user-delegation key, which Azure caps at 7 days; use at most "
                f"{MAX_WALL_CLOCK_WITH_SAS}, or give the pool an identity (BATCH_POOL_IDENTITY_ID)"
            )
        package = settings.ffmpeg_package
        if package:
            from shared.package_ref import parse_package

            try:
                parse_package(package)
            except ValueError as exc:
                errors.append(str(exc))
        if len({settings.input_container, settings.output_container, settings.state_container}) < 3:
            errors.append("INPUT_CONTAINER, OUTPUT_CONTAINER and STATE_CONTAINER must be three different containers")
        if errors:
            raise SettingsError("Invalid app settings:\n  - " + "\n  - ".join(errors))
        return settings
