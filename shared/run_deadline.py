"""How long a timer run may work: half the host's functionTimeout (host.json), so it ends and saves well inside it."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"  # deployed beside shared/, as in the repository
DEFAULT_TIMEOUT_SECONDS = 300.0  # the Consumption plan's default when host.json names none
RUN_SHARE = 0.5  # the other half is the margin: the blob or request under way, the state written, SDK retries
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d{2}):(\d{2})(?:\.\d+)?$")


def function_timeout_seconds(host_json: Path = HOST_JSON) -> float:
    """host.json's functionTimeout ("hh:mm:ss" or "d.hh:mm:ss"), in seconds."""
    value = json.loads(host_json.read_text()).get("functionTimeout")
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    match = _TIMESPAN.match(str(value).strip())
    if match is None:
        raise ValueError(f"{host_json}: functionTimeout {value!r} is not a [d.]hh:mm:ss timespan")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


@functools.cache
def run_seconds() -> float:
    """How long a timer run (monitor, reconcile) works before it saves its progress and returns."""
    return function_timeout_seconds() * RUN_SHARE


@dataclass(frozen=True)
class Deadline:
    """The moment a run stops taking on work, on the use-cases' clock (which tests move)."""

    clock: Callable[[], float]
    ends_at: float

    @classmethod
    def start(cls, clock: Callable[[], float], seconds: float | None = None) -> Deadline:
        return cls(clock, clock() + (run_seconds() if seconds is None else seconds))

    def passed(self) -> bool:
        return self.clock() >= self.ends_at
