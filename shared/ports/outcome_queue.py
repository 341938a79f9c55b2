"""The OutcomeQueue port: where outcome events go (send) and where `mp3pipe events` reads them (peek, take)."""

from __future__ import annotations

from typing import Any, Protocol

PEEK_MAX = 32  # Azure Queue Storage returns at most 32 messages per peek or receive


class OutcomeQueueUnreachable(Exception):
    """The queue could not take or give messages now (endpoint down, refused, auth failed); the caller retries."""


class OutcomeQueue(Protocol):
    """A FIFO-ish queue of outcome events (CloudEvents as dicts). Adapter: shared.adapters.outcome_queue."""

    def send(self, event: dict[str, Any]) -> None:
        """Add one event (the queue is created on first use); raises OutcomeQueueUnreachable."""

    def peek(self, limit: int = PEEK_MAX) -> list[dict[str, Any]]:
        """The oldest `limit` (at most PEEK_MAX) events, left in the queue; [] when there is no queue yet."""

    def take(self, limit: int = PEEK_MAX) -> list[dict[str, Any]]:
        """Receive and delete the oldest `limit` (at most PEEK_MAX) events: the reader is then their receiver."""
