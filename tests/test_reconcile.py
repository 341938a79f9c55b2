"""Lost events: reconcile (bounded per run) and backfill submit input blobs that never got a task."""

from __future__ import annotations

import collections
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.adapters.storage import BlobStorage, service_client
from shared.domain import naming
from shared.run_deadline import Deadline, function_timeout_seconds, run_seconds
from shared.usecases import reconcile as reconcile_module
from shared.usecases.reconcile import backfill, last_pass, reconcile
from tests.support.local_tasks import task_ids
from tests.support.slow_storage import SlowStorage, slow_storage


def _put(deps, name: str, data: bytes = b"\x00\x00\x00\x18ftypmp42") -> None:
    deps.storage.service.get_blob_client(deps.settings.input_container, name).upload_blob(data, overwrite=True)


# Reconcile's logic on its own (slices, backfill, lost tasks, tallies) is tested on the fakes: tests/fast/.


# -- at many files: listings side by side, a GET only for inputs with no MP3, sized to cover the container ------

class Counter(SansIOHTTPPolicy):
    """Counts the storage requests a client sends, by kind: ("list", container) or (method, container)."""

    def __init__(self) -> None:
        self.seen: collections.Counter[tuple[str, str]] = collections.Counter()

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[override]
        url = urlsplit(request.http_request.url)
        container = url.path.strip("/").split("/")[1] if url.path.count("/") >= 2 else ""
        kind = "list" if "comp=list" in url.query else request.http_request.method
        self.seen[(kind, container)] += 1


def counted(deps, start: float = 1_000_000.0):
    """The same pipeline with a storage client that counts its requests and a clock the test moves."""
    counter = Counter()
    service = service_client(deps.settings, _additional_pipeline_policies=[counter])
    clock = [start]
    return dataclasses.replace(deps, storage=BlobStorage(service), clock=lambda: clock[0]), counter, clock


def _fill(deps, names: list[str], *, mp3: bool) -> None:
    def one(name: str) -> None:
        _put(deps, name)
        if mp3:
            deps.storage.service.get_blob_client(deps.settings.output_container, name[:-1] + "3").upload_blob(b"mp3")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))


def test_converted_inputs_cost_no_request_of_their_own(deps, monkeypatch):
    monkeypatch.setattr(reconcile_module, "PAGE_SIZE", 100)  # pages of 100 so 1,000 files span many pages
    done = [f"memos/{i:04d}.mp4" for i in range(1000)]
    missed = ["memos/0100x.mp4", "memos/0500x.mp4", "memos/zz.mp4"]  # no MP3 and no record: events lost
    _fill(deps, done, mp3=True)
    _fill(deps, missed, mp3=False)
    _put(deps, "memos/0200.mp4", b"dropped again after its MP3")  # a newer version: its MP3 is the old one's
    deps.storage.service.get_blob_client(deps.settings.output_container, "memos/0300.error.json").upload_blob(b"{}")
    d, counter, _ = counted(deps)
    result = reconcile(d, budget=5000)
    assert result.wrapped and result.checked == 1003
    assert result.submitted == 4 and result.record_reads == 4  # the three missed, the re-drop; no one else
    assert sorted(task_ids(deps.gateway)) == sorted(naming.task_id(n, e) for n, e in _etags(deps, missed +
                                                                                                ["memos/0200.mp4"]))
    inputs, outputs, state = (deps.settings.input_container, deps.settings.output_container,
                              deps.settings.state_container)
    # Pages of 100, and each of the four submits lists its name's stem (its own properties and its rivals'),
    # which is what a submit reads instead of a HEAD of the input.
    assert counter.seen[("list", inputs)] == 11 + 4 and counter.seen[("list", outputs)] <= 12
    assert counter.seen[("HEAD", inputs)] == 0
    # The state and the four records reconcile reads (none exists); each submit then creates its record without a
    # read of its own (If-None-Match: *).
    assert counter.seen[("GET", state)] == 1 + 4
    assert counter.seen[("HEAD", outputs)] == 0  # no MP3 looked up one by one
    tally = last_pass(d)
    assert (tally["inputs"], tally["converted"], tally["unconverted"]) == (1003, 999, 4)


def test_runs_are_sized_so_a_pass_covers_the_container_in_two_hours(deps, monkeypatch):
    monkeypatch.setattr(reconcile_module, "PAGE_SIZE", 100)
    names = [f"big/{i:04d}.mp4" for i in range(1200)]
    _fill(deps, names, mp3=True)
    d, _, clock = counted(deps)
    first = [reconcile(d, budget=50) for _ in range(5)]  # no pass counted yet: 50, 100, 200, 400, 800 (wraps)
    assert [r.checked for r in first] == [50, 100, 200, 400, 450] and first[-1].wrapped
    period = 600  # RECONCILE_SCHEDULE: every 10 minutes
    runs = []
    while not (runs and runs[-1].wrapped):
        clock[0] += period
        runs.append(reconcile(d, budget=50))
    assert len(runs) == reconcile_module.PASS_SECONDS / period  # the whole container in 12 runs: 2 hours
    assert [r.checked for r in runs[:-1]] == [100] * 11  # 1,200 x 600 / 7,200 each
    assert sum(r.checked for r in runs) == 1200 and sum(r.submitted for r in runs) == 0


def test_a_backlog_is_worked_through_across_runs_that_hit_their_deadline(deps, monkeypatch):
    """Files there before the subscription, on a slow account: each run stops at its deadline (half host.json's
    functionTimeout, per blob), saves where it stopped, and the next goes on; each file submitted exactly once."""
    monkeypatch.setattr(reconcile_module, "PAGE_SIZE", 60)  # a page takes longer than a run may: ~200 s
    names = [f"backlog/{i:04d}.mp4" for i in range(240)]
    _fill(deps, names, mp3=False)
    d, _, clock = counted(deps)

    def move(seconds: float) -> None:
        clock[0] += seconds

    slow = SlowStorage(move, list_s=20.0, other_s=1.5)  # each submit: a record GET and PUT, ~3 s
    d = dataclasses.replace(d, storage=slow_storage(d.settings, slow))
    assert run_seconds() == function_timeout_seconds() / 2 == 150.0  # host.json: "functionTimeout": "00:05:00"
    runs = []
    while not (runs and runs[-1].wrapped):
        started = clock[0]
        runs.append(reconcile(d, budget=len(names)))
        assert clock[0] - started < function_timeout_seconds(), "a run outlived the function timeout"
        assert len(runs) < 20, "no progress across runs"
        clock[0] += 600  # RECONCILE_SCHEDULE: every 10 minutes
    stopped = [r for r in runs if r.stopped]
    assert len(stopped) >= 3 and all(0 < r.submitted < len(names) for r in stopped)
    assert sum(r.checked for r in runs) == len(names)  # no blob looked at twice: each run went on where one stopped
    tasks = collections.Counter(task_ids(deps.gateway))
    assert sorted(tasks) == sorted(naming.task_id(n, e) for n, e in _etags(deps, names))
    assert set(tasks.values()) == {1}
    assert sum(r.submitted for r in runs) == len(names)


def test_a_run_past_its_deadline_lists_nothing_and_the_next_goes_on(deps, monkeypatch):
    monkeypatch.setattr(reconcile_module, "PAGE_SIZE", 10)
    _fill(deps, [f"slow/{i:03d}.mp4" for i in range(60)], mp3=False)
    stopped = reconcile(deps, budget=1000, deadline=Deadline.start(deps.clock, 0.0))
    assert (stopped.checked, stopped.wrapped, stopped.stopped) == (0, False, True)  # nothing listed past it
    assert backfill(deps, budget=1000).submitted == 60


def _etags(deps, names: list[str]) -> list[tuple[str, str]]:
    return [(n, naming.clean_etag(deps.storage.etag_of(deps.settings.input_container, n))) for n in names]
