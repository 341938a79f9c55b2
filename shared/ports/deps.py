"""What every use-case receives: the settings, the Storage, Batch and outcome-queue ports, and the one clock."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.ports.batch import BatchGateway
from shared.ports.outcome_queue import OutcomeQueue
from shared.ports.storage import Storage
from shared.settings import Settings


@dataclass
class Deps:
    settings: Settings
    storage: Storage
    gateway: BatchGateway
    clock: Callable[[], float] = field(default=time.time)  # epoch seconds; tests move it
    outcomes: OutcomeQueue | None = None  # where outcome events go; None: none are sent (nor held)

    def now(self) -> dt.datetime:
        """The clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)
