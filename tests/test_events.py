"""Events as in Azure: the local host takes Event Grid BlobCreated events at the blob extension's webhook, and a
background listing (backing off) finds blobs no event announced."""

from __future__ import annotations

import json

import pytest

from devhost.local_pipeline import LocalPipeline
from mp3pipe import eventgrid
from tests.conftest import isolated, wait_until
from tests.support.task_audit import tasks_of

NO_LISTING = ("--poll-interval", "600", "--max-poll-interval", "600")  # one listing at start, then none for 10 min


@pytest.fixture(scope="module")
def pipe(azurite, tmp_path_factory):
    with LocalPipeline(tmp_path_factory.mktemp("state"), settings=isolated(), azurite=azurite,
                       host_args=NO_LISTING) as p:
        assert wait_until(lambda: p.notifier.host_info() is not None, 60), "the host wrote no host.json"
        assert wait_until(lambda: "watching container" in p.log_path.read_text(), 60)
        yield p


def _url(pipe: LocalPipeline, function: str = "submit") -> str:
    return eventgrid.webhook_url(f"http://127.0.0.1:{pipe.events_port}", function)


def test_the_subscription_validation_handshake_is_answered(pipe):
    event = {"id": "1", "topic": "/subscriptions/x", "subject": "", "eventType": eventgrid.VALIDATION,
             "eventTime": "2026-01-01T00:00:00Z", "data": {"validationCode": "512d38b6-c7b8-40c8"},
             "dataVersion": "1", "metadataVersion": "1"}
    status, body = eventgrid.post(_url(pipe), [event], event_type="SubscriptionValidation")
    assert status == 200 and json.loads(body) == {"validationResponse": "512d38b6-c7b8-40c8"}


def test_requests_the_extension_would_refuse_are_refused(pipe):
    assert eventgrid.post(_url(pipe), [], event_type="Bogus")[0] == 400
    assert eventgrid.post(_url(pipe), [], event_type="Unsubscribe")[0] == 202
    status, _ = eventgrid.post(_url(pipe).replace("/blobs", "/nothing"), [])
    assert status == 404


def test_an_event_converts_a_blob_the_listing_will_not_see_for_minutes(pipe, media):
    """Uploaded without an event, then announced by one (the name in the event's URL is data)."""
    name = "events/it's $(touch PWNED) ünï 空白 a&b?.mp4"
    blob = pipe.service.get_blob_client(pipe.input_container, name)
    etag = blob.upload_blob(media["tone"].read_bytes(), overwrite=True)["etag"]
    event = eventgrid.blob_created(blob.url, etag, size=media["tone"].stat().st_size)
    status, _ = eventgrid.post(_url(pipe), [event])
    assert status == 202
    outcome = pipe.wait({name: etag.strip('"')}, timeout=120)[name]
    assert outcome.kind == "converted" and outcome.output == "events/it's $(touch PWNED) ünï 空白 a&b?.mp3"


def test_a_wrong_function_name_is_accepted_as_azure_does_but_logged_loudly(pipe, media):
    name = "events/wrong-function.mp4"
    blob = pipe.service.get_blob_client(pipe.input_container, name)
    etag = blob.upload_blob(media["tone"].read_bytes(), overwrite=True)["etag"]
    offset = pipe.log_path.stat().st_size
    status, _ = eventgrid.post(_url(pipe, "sbumit"), [eventgrid.blob_created(blob.url, etag, size=1)])
    assert status == 202
    assert wait_until(lambda: "Host.Functions.sbumit" in pipe.log_path.read_text()[offset:], 10)
    said = pipe.log_path.read_text()[offset:]
    assert "ERROR" in said and "no blob-trigger function 'Host.Functions.sbumit'" in said
    # An event posted after it, to the right function, converts a blob end to end; by then the misrouted one has had
    # as long to be submitted, and got no task and no outcome.
    later = pipe.drop("events/after-the-wrong-one.mp4", media["tone"])
    assert pipe.wait({"events/after-the-wrong-one.mp4": later}, timeout=120)["events/after-the-wrong-one.mp4"].kind \
        == "converted"
    assert name not in {t.name for t in tasks_of(pipe)}
    assert pipe.outcome(name, etag.strip('"')).kind == "pending"


def test_drop_posts_the_event_itself(pipe, media):
    etag = pipe.drop("events/dropped.mp4", media["tone"])  # LocalPipeline.drop: upload + BlobCreated event
    assert pipe.wait({"events/dropped.mp4": etag}, timeout=120)["events/dropped.mp4"].kind == "converted"


def test_a_blob_uploaded_by_another_tool_is_found_by_the_background_listing(azurite, media, tmp_path):
    # The reconcile timer would find the blob too (at second 30 of every tenth minute): keep it out of this test.
    settings = isolated(RECONCILE_SCHEDULE="0 0 0 1 1 *")
    with LocalPipeline(tmp_path / "state", settings=settings, azurite=azurite) as pipe:
        # Listings at 0, 2, 6 s...: the blob lands after the second, so a later, backed-off listing must find it.
        wait_until(lambda: "found nothing new: the next in 4 s" in pipe.log_path.read_text(), 60,
                   what="the background listing backed off twice")
        blob = pipe.service.get_blob_client(pipe.input_container, "other-tool.mp4")
        etag = blob.upload_blob(media["tone"].read_bytes(), overwrite=True)["etag"]  # no event
        assert pipe.wait({"other-tool.mp4": etag.strip('"')}, timeout=120)["other-tool.mp4"].kind == "converted"
        wait_until(lambda: "found 1 blob(s) no event announced" in pipe.log_path.read_text(), 30,
                   what="the background listing found the blob")


def test_mp3pipe_drop_posts_an_event_per_blob(pipe, media, tmp_path):
    import subprocess
    import sys

    from devhost.azurite import REPO

    folder = tmp_path / "cli"
    folder.mkdir()
    for i in range(2):
        (folder / f"cli-{i}.mp4").write_bytes(media["tone"].read_bytes())
    result = subprocess.run([sys.executable, "-m", "mp3pipe", "drop", str(folder), "--prefix", "cli"], cwd=REPO,
                            env={**pipe.env(), "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = [f"cli/cli-{i}.mp4" for i in range(2)]
    etags = {n: pipe.service.get_blob_client(pipe.input_container, n).get_blob_properties().etag.strip('"')
             for n in names}
    outcomes = pipe.wait(etags, timeout=120)  # the listing is 10 minutes away: only the events can do it
    assert {n: o.kind for n, o in outcomes.items()} == {n: "converted" for n in names}


def test_a_burst_of_uploads_loses_no_event(pipe):
    """150 uploads announced at the same moment (a folder dropped at once): every event is taken and every blob
    is invoked, with the listing 10 minutes away. socketserver's default backlog of 5 reset ~1 in 5 of these."""
    from concurrent.futures import ThreadPoolExecutor

    container = pipe.service.get_container_client(pipe.input_container)
    names = [f"burst/{i:03d}.txt" for i in range(150)]  # not .mp4: the function is invoked and skips them
    with ThreadPoolExecutor(16) as pool:
        etags = list(pool.map(lambda n: container.get_blob_client(n).upload_blob(b"x", overwrite=True)["etag"], names))
    offset = pipe.log_path.stat().st_size
    with ThreadPoolExecutor(len(names)) as pool:
        delivered = list(pool.map(lambda ne: pipe.notifier.blob_created(container.get_blob_client(ne[0]).url, ne[1],
                                                                        1), zip(names, etags, strict=True)))
    assert delivered == [True] * len(names)

    def invoked() -> set[str]:
        lines = pipe.log_path.read_text()[offset:].splitlines()
        return {json.loads(line[line.index("{"):])["name"] for line in lines if '"event": "skipped"' in line}

    wait_until(lambda: invoked() >= set(names), 60, what="the function invoked for every announced blob")
