"""An in-memory OutcomeQueue: events in order; `reachable = False` makes every call fail as a down endpoint does."""

from __future__ import annotations

import copy
import json
from typing import Any

from shared.ports.outcome_queue import PEEK_MAX, OutcomeQueueUnreachable


class MemoryQueue:
    """The OutcomeQueue port in a list (events kept as the JSON they would travel as)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise OutcomeQueueUnreachable("memory queue: unreachable")

    def send(self, event: dict[str, Any]) -> None:
        self._check()
        self.messages.append(json.dumps(copy.deepcopy(event), ensure_ascii=False, sort_keys=True))

    def peek(self, limit: int = PEEK_MAX) -> list[dict[str, Any]]:
        self._check()
        return [json.loads(m) for m in self.messages[:min(limit, PEEK_MAX)]]

    def take(self, limit: int = PEEK_MAX) -> list[dict[str, Any]]:
        self._check()
        taken, self.messages = self.messages[:min(limit, PEEK_MAX)], self.messages[min(limit, PEEK_MAX):]
        return [json.loads(m) for m in taken]
