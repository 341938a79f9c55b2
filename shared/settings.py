"""Typed app settings read from the environment, parsed from their declaration; one error naming each bad one."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.settings_spec import (
    BATCH_ID_RE,
    BY_NAME,
    CONTAINER_RE,
    MAX_SLOTS,
    MAX_WALL_CLOCK_WITH_SAS,
    SETTINGS,
    SLOTS_PER_VCPU,
    URL_GRACE_SECONDS,
    Kind,
    Setting,
)

__all__ = ["DEFAULTS", "MAX_SLOTS", "URL_GRACE_SECONDS", "Settings", "SettingsError", "check",
           "default_local_task_slots", "vcpus_of"]

# Every app setting the code reads, with its local default (shared/settings_spec.py declares them).
DEFAULTS: dict[str, str] = {s.name: s.default for s in SETTINGS}

_VM_VCPUS = re.compile(r"^standard_[a-z]+?(\d+)(?:-(\d+))?", re.IGNORECASE)


def vcpus_of(vm_size: str) -> int | None:
    """vCPUs of an Azure VM size from its name (standard_d2s_v3 -> 2, standard_e8-4s_v5 -> 4); None if unknown."""
    m = _VM_VCPUS.match(vm_size.strip())
    if m is None:
        return None
    return int(m.group(2) or m.group(1)) or None


class SettingsError(ValueError):
    """One or more app settings are missing or malformed; the message names each of them."""


Parsed = tuple[Any, list[str]]  # the value (a stand-in when malformed) and what is wrong with it


def default_local_task_slots() -> int:
    """LOCAL_TASK_SLOTS when unset: four per core, as a pool node has per vCPU, so a file asks for the same share
    of a core here as on Azure (shared/domain/task_slots.py). Short files spend much of a slot's time on storage
    and the host, not ffmpeg: with one slot per core the cores sat idle 44% of a 1,000-file run; two per core cut
    its wall time 20% (bench/many_files.py --slots); a long file holds a core's worth of slots."""
    return min(SLOTS_PER_VCPU * (os.cpu_count() or 1), MAX_SLOTS)


def _bounds(s: Setting, value: float) -> list[str]:
    if (s.low is None or value >= s.low) and (s.high is None or value <= s.high):
        return []
    if s.low is not None and s.high is not None:
        bound = f"between {s.low} and {s.high}"
    else:
        bound = f">= {s.low}" if s.low is not None else f"<= {s.high}"
    return [f"{s.name}={value} must be {bound}"]


def _numeric(s: Setting, text: str, cast: type[int] | type[float], what: str) -> Parsed:
    try:
        value = cast(text)
    except ValueError:
        return cast(s.low or 0), [f"{s.name}={text!r} is not {what}"]
    return value, _bounds(s, value)


def _whole(s: Setting, text: str) -> Parsed:
    return _numeric(s, text, int, "a whole number")


def _number(s: Setting, text: str) -> Parsed:
    return _numeric(s, text, float, "a number")


def _pattern(regex: re.Pattern[str], rule: str) -> Callable[[Setting, str], Parsed]:
    def parse(s: Setting, text: str) -> Parsed:
        return text, [] if regex.match(text) else [f"{s.name}={text!r} {rule}"]

    return parse


def _choice(s: Setting, text: str) -> Parsed:
    value = text.lower() if s.fold_case else text
    return value, [] if value in s.choices else [f"{s.name}={value!r} is unknown; choose one of {', '.join(s.choices)}"]


PARSERS: dict[Kind, Callable[[Setting, str], Parsed]] = {
    "text": lambda s, text: (text, []),
    "connection": lambda s, text: (text, []),  # its shape depends on the identity settings: see _rules
    "path": lambda s, text: (Path(text), []),
    "container": _pattern(CONTAINER_RE,
                          "is not a valid container name (3-63 of lower-case letters, digits and single hyphens)"),
    "batch_id": _pattern(BATCH_ID_RE, "must be 1-64 of letters, digits, '-' and '_'"),
    "ncrontab": _pattern(re.compile(r"^\S+(\s+\S+){5}$"),
                         "is not an NCRONTAB expression with 6 fields (second minute hour day month weekday)"),
    "choice": _choice,
    "whole": _whole,
    "number": _number,
}


def _raw(env: Mapping[str, str], s: Setting) -> str:
    value = env.get(s.name)
    return (s.default if value is None or value.strip() == "" else value).strip()


def check(name: str, value: str) -> list[str]:
    """What is wrong with one setting's value on its own (rules across settings aside)."""
    s = BY_NAME[name]
    text = s.default if value.strip() == "" else value.strip()
    return [] if s.computed and text == "" else PARSERS[s.kind](s, text)[1]


def _is_connection_string(text: str) -> bool:
    return text.startswith("UseDevelopmentStorage=true") or ("AccountName=" in text and (
        "BlobEndpoint=" in text or "EndpointSuffix" in text or "DefaultEndpointsProtocol=" in text))


def _pool_mix(v: dict[str, Any]) -> list[str]:
    """The dedicated floor and the Spot share against the pool's largest size (shared/domain/scaling.py split)."""
    most, floor, share = v["max_nodes"], v["dedicated_floor"], v["spot_share"]
    if floor > most:
        return [f"BATCH_DEDICATED_FLOOR={floor} is above BATCH_MAX_NODES={most}: that many dedicated nodes are never "
                f"kept"]
    if share > 0 and math.floor(most * share + 1e-9) == 0:
        return [f"BATCH_SPOT_SHARE={share:g} of BATCH_MAX_NODES={most} rounds down to 0: no node is ever Spot "
                f"(use at least {1 / most:g}, or 0)"]
    if share > 0 and floor == most:
        return [f"BATCH_SPOT_SHARE={share:g} is never used: BATCH_DEDICATED_FLOOR={floor} keeps all "
                f"BATCH_MAX_NODES={most} nodes dedicated"]
    return []


def _rules(v: dict[str, Any], raw: dict[str, str], env: Mapping[str, str], bad: set[str]) -> list[str]:
    """Defaults worked out from other settings, and the rules that span settings (skipped when one of the
    settings they compare is itself malformed, which has its own message: one message per problem)."""
    errors: list[str] = []
    identity = raw["AzureWebJobsStorage__accountName"] or raw["AzureWebJobsStorage__blobServiceUri"]
    connection_given = env.get("AzureWebJobsStorage", "").strip() != ""  # it wins over identity, as in the host
    if (connection_given or not identity) and not _is_connection_string(v["storage_connection"]):
        errors.append("AzureWebJobsStorage is not a storage connection string "
                      "(expected UseDevelopmentStorage=true or DefaultEndpointsProtocol=...;AccountName=...)")
    if identity and not connection_given:
        v["storage_connection"] = ""
    if v["batch_gateway"] == "azure" and not v["batch_account_url"].startswith(("https://", "http://")):
        errors.append("BATCH_ACCOUNT_URL must be set to the Batch account URL (https://...) when BATCH_GATEWAY=azure")

    vm_size, vcpus = v["vm_size"], vcpus_of(v["vm_size"])
    if v["slots_per_node"] is None:
        # Batch's most slots: a short file takes one and overlaps Batch's per-task gap with three others on a core;
        # a long one asks for a core's worth (libmp3lame encodes on one thread). shared/domain/task_slots.py
        v["slots_per_node"] = min(SLOTS_PER_VCPU * vcpus, MAX_SLOTS) if vcpus else 1
    elif vcpus is not None and v["slots_per_node"] > SLOTS_PER_VCPU * vcpus and "BATCH_SLOTS_PER_NODE" not in bad:
        errors.append(f"BATCH_SLOTS_PER_NODE={v['slots_per_node']} is more than Batch allows on "
                      f"BATCH_VM_SIZE={vm_size} ({vcpus} vCPUs: at most 4 x vCPUs = "
                      f"{min(SLOTS_PER_VCPU * vcpus, MAX_SLOTS)} slots per node)")
    if v["min_nodes"] is None:
        # Idle local slots cost nothing, so locally the floor is the machine's cores.
        v["min_nodes"] = min(os.cpu_count() or 1, v["max_nodes"]) if v["batch_gateway"] == "local" else 0
    if v["local_task_slots"] is None:
        v["local_task_slots"] = default_local_task_slots()
    pool_bad = bad & {"BATCH_MIN_NODES", "BATCH_MAX_NODES", "BATCH_DEDICATED_FLOOR", "BATCH_SPOT_SHARE"}
    if v["min_nodes"] > v["max_nodes"] and not pool_bad:
        errors.append(f"BATCH_MIN_NODES={v['min_nodes']} is above BATCH_MAX_NODES={v['max_nodes']}")
    errors += [] if pool_bad else _pool_mix(v)

    if not v["pool_identity_id"] and v["task_max_wall_clock_seconds"] > MAX_WALL_CLOCK_WITH_SAS:
        errors.append(
            f"TASK_MAX_WALL_CLOCK_SECONDS={v['task_max_wall_clock_seconds']} is too long for SAS node URLs: "
            f"they are signed for it + 12 h with a user-delegation key, which Azure caps at 7 days; use at most "
            f"{MAX_WALL_CLOCK_WITH_SAS}, or give the pool an identity (BATCH_POOL_IDENTITY_ID)"
        )
    if raw["AzureWebJobsStorage__clientId"] and not identity:
        errors.append("AzureWebJobsStorage__clientId is set but neither AzureWebJobsStorage__accountName nor "
                      "AzureWebJobsStorage__blobServiceUri is: storage would not use that identity")
    if len({v["input_container"], v["output_container"], v["state_container"]}) < 3:
        errors.append("INPUT_CONTAINER, OUTPUT_CONTAINER and STATE_CONTAINER must be three different containers")
    return errors


@dataclass(frozen=True)
class Settings:
    """The validated app settings (one attribute per declared setting with an `attr`)."""

    storage_connection: str
    input_container: str
    output_container: str
    state_container: str
    outcome_queue: str
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
    spot_share: float
    dedicated_floor: int
    idle_grace_seconds: int
    task_max_retries: int
    task_max_wall_clock_seconds: int
    task_retention_seconds: int
    local_state_dir: Path
    ffmpeg_path: str
    local_task_slots: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw = {s.name: _raw(env, s) for s in SETTINGS}
        values: dict[str, Any] = {}
        errors: list[str] = []
        bad: set[str] = set()
        for s in SETTINGS:
            if s.attr is None:
                continue
            if s.computed and raw[s.name] == "":
                values[s.attr] = None  # worked out in _rules
                continue
            values[s.attr], problems = PARSERS[s.kind](s, raw[s.name])
            errors += problems
            bad |= {s.name} if problems else set()
        errors += _rules(values, raw, env, bad)
        if errors:
            raise SettingsError("Invalid app settings:\n  - " + "\n  - ".join(errors))
        return cls(**values)
