"""One outcome event per input version, end to end on real Azurite (blob + queue), the local host and real ffmpeg:
converted, failed, rejected and superseded versions each get exactly one CloudEvent, also across a queue outage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from azure.core.messaging import CloudEvent

from devhost.azurite import REPO, Azurite, connection_string, free_port
from devhost.local_pipeline import LocalPipeline
from shared.adapters.outcome_queue import StorageQueue
from shared.domain import naming
from shared.settings import Settings
from tests.conftest import isolated, wait_until

UNMAPPABLE = "_mp3pipe-mine/clip.mp4"  # a reserved folder: its name cannot be mapped to an output


class QueueMoved:
    """The session's Azurite as the host sees it, with the queue endpoint on `queue_port` (a closed port makes
    the queue unreachable while blobs work)."""

    def __init__(self, azurite: Azurite, queue_port: int) -> None:
        self.azurite, self.queue_port, self.proc = azurite, queue_port, azurite.proc

    @property
    def connection_string(self) -> str:
        return connection_string(self.azurite.port, self.queue_port)


def mp3pipe(pipe: LocalPipeline, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "mp3pipe", *args], cwd=REPO, env={**pipe.env(), "COLUMNS": "300"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def events_of(pipe: LocalPipeline, azurite: Azurite) -> list[dict[str, Any]]:
    settings = Settings.from_env({"AzureWebJobsStorage": azurite.connection_string, **pipe.settings})
    return StorageQueue.from_settings(settings).peek()


def by_version(events: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        out[(e["data"]["input"]["name"], e["data"]["input"]["etag"])].append(e)
    return out


def drop_folder(pipe: LocalPipeline, media: dict[str, Path]) -> dict[tuple[str, str], str]:
    """One good file, one broken, one unmappable name, one overwritten: (name, ETag) -> the outcomes it may have."""
    first = pipe.drop("again.mp4", media["tone"])
    versions = {
        ("good.mp4", naming.clean_etag(pipe.drop("good.mp4", media["tone"]))): {"converted"},
        ("broken.mp4", naming.clean_etag(pipe.drop("broken.mp4", media["silent_video"]))): {"failed"},
        (UNMAPPABLE, naming.clean_etag(pipe.drop(UNMAPPABLE, media["tone"]))): {"rejected"},
        ("again.mp4", naming.clean_etag(first)): {"converted", "superseded"},  # the overwrite may come first
        ("again.mp4", naming.clean_etag(pipe.drop("again.mp4", media["tone_long"]))): {"converted"},
    }
    return versions


def check_one_each(events: list[dict[str, Any]], versions: dict[tuple[str, str], set[str]]) -> None:
    got = by_version(events)
    assert set(got) == set(versions), events
    for (name, etag), sent in got.items():
        assert len({e["id"] for e in sent}) == 1, sent  # delivered more than once only with the same id
        assert all(e == sent[0] for e in sent), sent
        e = sent[0]
        CloudEvent.from_dict(e)  # a valid CloudEvent to Azure's own model
        assert e["specversion"] == "1.0" and e["subject"] == name and e["datacontenttype"] == "application/json"
        outcome = e["data"]["outcome"]
        assert outcome in versions[(name, etag)], e
        assert e["type"] == f"io.mp3pipe.file.{outcome}"
        if outcome != "rejected":
            assert e["id"] == naming.task_id(name, etag) == e["data"]["task_id"]
        if outcome == "converted":
            assert e["data"]["output"]["url"].endswith("/" + name[:-1] + "3")
            assert e["data"]["output"]["bytes"] > 1000
        elif outcome == "failed":
            assert e["data"]["reason"] == "the input has no audio stream"
            assert e["data"]["report"].endswith(naming.report_name(name))
        elif outcome == "rejected":
            assert e["data"]["task_id"] is None and "reserved" in e["data"]["reason"]
            assert e["id"].startswith("rejected-")
    ids = [sent[0]["id"] for sent in got.values()]
    assert len(set(ids)) == len(ids)


@pytest.fixture
def pipe(azurite: Azurite, tmp_path: Path):
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=azurite) as p:
        yield p


def test_a_folder_gives_exactly_one_event_per_version_with_its_outcome(pipe, azurite, media):
    versions = drop_folder(pipe, media)
    assert wait_until(lambda: len(by_version(events_of(pipe, azurite))) >= len(versions), 180), \
        events_of(pipe, azurite)
    time.sleep(3)  # a few monitor runs more: still one event per version
    check_one_each(events_of(pipe, azurite), versions)

    lines = mp3pipe(pipe, "events").stdout.splitlines()  # one line each: time, outcome, input, output or reason
    assert len(lines) == len(events_of(pipe, azurite)), lines
    assert any(" converted " in ln and "good.mp4" in ln and ln.endswith("bytes)") for ln in lines), lines
    assert any(" failed " in ln and "broken.mp4  the input has no audio stream" in ln for ln in lines), lines
    as_json = [json.loads(ln) for ln in mp3pipe(pipe, "events", "-o", "json").stdout.splitlines()]
    assert as_json == events_of(pipe, azurite)  # the CloudEvents as queued; peeking left them there
    assert mp3pipe(pipe, "events", "--take", "-o", "json").stdout.count("\n") == len(as_json)
    assert events_of(pipe, azurite) == []  # --take consumed them


def test_a_queue_down_for_a_run_loses_no_event_and_doubles_none(azurite, media, tmp_path):
    moved = QueueMoved(azurite, free_port())  # nothing listens there
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=moved) as pipe:  # type: ignore[arg-type]
        versions = drop_folder(pipe, media)
        state = pipe.service.get_container_client(pipe.settings["STATE_CONTAINER"])
        assert wait_until(lambda: len(list(state.list_blobs("outbox/"))) >= len(versions), 120)
        assert events_of(pipe, azurite) == []  # every outcome decided and held, none sent: the queue was down
        pipe.stop_host()
        moved.queue_port = azurite.queue_port  # the queue is back for the next run
        pipe.start_host()
        pipe.wait_host_ready()
        assert wait_until(lambda: len(by_version(events_of(pipe, azurite))) >= len(versions), 120), \
            events_of(pipe, azurite)
        time.sleep(3)
        check_one_each(events_of(pipe, azurite), versions)
