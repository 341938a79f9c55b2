"""One contract for the OutcomeQueue port, run against StorageQueue on real Azurite's queue service and the
in-memory fake (tests/support/fakes/outcome_queue.py): what the outbox and `mp3pipe events` rely on is here."""

from __future__ import annotations

import uuid

import pytest

from devhost.azurite import connection_string, free_port
from shared.adapters.outcome_queue import StorageQueue
from shared.ports.outcome_queue import PEEK_MAX, OutcomeQueue, OutcomeQueueUnreachable
from shared.settings import Settings
from tests.support.fakes.outcome_queue import MemoryQueue


def event(n: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"task-{n}", "subject": "vidéos/ä b.mp4", "data": {"n": n, "ok": True}}


def queue_on(connection: str) -> StorageQueue:
    name = f"contract-{uuid.uuid4().hex[:8]}"  # a queue of its own on the shared Azurite
    return StorageQueue.from_settings(Settings.from_env({"AzureWebJobsStorage": connection, "OUTCOME_QUEUE": name}))


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.fast), "azurite"])
def queue(request: pytest.FixtureRequest) -> OutcomeQueue:
    if request.param == "memory":
        return MemoryQueue()
    return queue_on(request.getfixturevalue("azurite").connection_string)


def test_a_queue_never_written_reads_empty(queue: OutcomeQueue) -> None:
    assert queue.peek() == [] and queue.take() == []


def test_events_come_back_as_sent_in_order_and_peeking_leaves_them(queue: OutcomeQueue) -> None:
    for n in range(3):
        queue.send(event(n))
    assert queue.peek() == [event(0), event(1), event(2)]
    assert queue.peek(2) == [event(0), event(1)]
    assert queue.peek() == [event(0), event(1), event(2)]  # still there


def test_taking_removes_what_it_returns(queue: OutcomeQueue) -> None:
    for n in range(3):
        queue.send(event(n))
    assert queue.take(2) == [event(0), event(1)]
    assert queue.peek() == [event(2)]
    assert queue.take() == [event(2)] and queue.peek() == []


def test_a_peek_shows_at_most_what_the_service_returns(queue: OutcomeQueue) -> None:
    for n in range(PEEK_MAX + 2):
        queue.send(event(n))
    assert [e["id"] for e in queue.peek(100)] == [f"task-{n}" for n in range(PEEK_MAX)]


def test_a_closed_port_is_unreachable_not_an_sdk_error() -> None:
    queue = queue_on(connection_string(free_port(), free_port()))  # nothing listens there
    with pytest.raises(OutcomeQueueUnreachable):
        queue.send(event(1))
    with pytest.raises(OutcomeQueueUnreachable):
        queue.peek()


def test_the_fake_refuses_as_a_closed_port_does() -> None:
    queue = MemoryQueue()
    queue.reachable = False
    with pytest.raises(OutcomeQueueUnreachable):
        queue.send(event(1))
