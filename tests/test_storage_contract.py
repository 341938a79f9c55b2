"""One contract for the Storage port, run against BlobStorage on real Azurite and the in-memory fake the fast
use-case tests run on (tests/support/fakes/storage.py): whatever a use-case relies on is here."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.adapters.storage import BlobStorage, connection_client
from shared.domain.naming import clean_etag
from shared.ports.storage import Storage
from tests.support.fakes.storage import MemoryStorage

CONTAINER = "contract"
RECORD = {"name": "vidéos/a b.mp4", "n": 1, "nested": {"ok": True}}


@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.fast), "azurite"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "memory":
        store: Storage = MemoryStorage()
        name = CONTAINER
    else:
        store = BlobStorage(connection_client(request.getfixturevalue("azurite").connection_string))
        name = f"{CONTAINER}-{uuid.uuid4().hex[:8]}"  # containers of its own on the shared Azurite
    store.ensure_containers(name, name)  # twice: creating an existing container is no error
    store.container = name  # type: ignore[attr-defined]
    return store


def c(storage: Storage) -> str:
    return storage.container  # type: ignore[attr-defined,no-any-return]


def test_a_missing_blob_reads_as_none_everywhere(storage: Storage) -> None:
    box = c(storage)
    assert storage.get_json(box, "nope.json") is None
    assert storage.get_json_versioned(box, "nope.json") == (None, None)
    assert storage.etag_of(box, "nope.json") is None
    assert storage.last_modified_of(box, "nope.json") is None
    assert storage.read_tail(box, "nope.txt") is None
    assert storage.read_head(box, "nope.json", 10) is None
    assert storage.properties(storage.blob(box, "nope.mp4")) is None
    assert storage.delete_if_exists(box, "nope.json") is False
    assert list(storage.list_blobs(box)) == []
    assert storage.list_page(box, 10, None) == ([], None)


def test_json_round_trips_and_every_write_is_a_new_etag(storage: Storage) -> None:
    box = c(storage)
    storage.put_json(box, "r/one.json", RECORD)
    data, etag = storage.get_json_versioned(box, "r/one.json")
    assert data == RECORD and storage.get_json(box, "r/one.json") == RECORD
    assert etag is not None and etag == storage.etag_of(box, "r/one.json")
    storage.put_json(box, "r/one.json", {**RECORD, "n": 2})
    assert storage.get_json(box, "r/one.json") == {**RECORD, "n": 2}
    assert storage.etag_of(box, "r/one.json") != etag
    assert storage.delete_if_exists(box, "r/one.json") is True
    assert storage.get_json(box, "r/one.json") is None


def test_conditional_writes_let_one_writer_win(storage: Storage) -> None:
    box = c(storage)
    assert storage.put_json_if(box, "rec.json", RECORD, None, metadata={"state": "submitted"}) is True
    assert storage.put_json_if(box, "rec.json", {"other": 1}, None) is False  # create-only: it exists now
    _, etag = storage.get_json_versioned(box, "rec.json")
    assert storage.put_json_if(box, "rec.json", {**RECORD, "n": 2}, etag, metadata={"state": "failed"}) is True
    assert storage.put_json_if(box, "rec.json", {"stale": 1}, etag) is False  # someone wrote since that read
    assert storage.get_json(box, "rec.json") == {**RECORD, "n": 2}
    (listed,) = storage.list_blobs(box, metadata=True)
    assert listed.metadata == {"state": "failed"}
    storage.delete_if_exists(box, "rec.json")
    assert storage.put_json_if(box, "rec.json", RECORD, etag) is False  # deleted since that read
    assert storage.get_json(box, "rec.json") is None


def test_listings_are_in_name_order_under_a_prefix_with_metadata_when_asked(storage: Storage) -> None:
    box = c(storage)
    for name in ("b/2.mp4", "a/Z.mp4", "b/10.mp4", "a/é.mp4", "a/a.mp4", "ab.mp4"):
        storage.upload_bytes(box, name, name.encode())  # type: ignore[attr-defined]
    storage.set_metadata(box, "a/a.mp4", {"mp3pipe_retry": "now"})
    names = [b.name for b in storage.list_blobs(box)]
    assert names == ["a/Z.mp4", "a/a.mp4", "a/é.mp4", "ab.mp4", "b/10.mp4", "b/2.mp4"]
    assert [b.name for b in storage.list_blobs(box, "a/")] == ["a/Z.mp4", "a/a.mp4", "a/é.mp4"]
    assert [b.metadata for b in storage.list_blobs(box, "a/a")] == [{}]
    assert [b.metadata for b in storage.list_blobs(box, "a/a", metadata=True)] == [{"mp3pipe_retry": "now"}]
    for blob in storage.list_blobs(box):
        assert same_version(blob.etag, storage.etag_of(box, blob.name))
        assert blob.last_modified == storage.last_modified_of(box, blob.name)


def same_version(listed: str, read: str | None) -> bool:
    """A listing's ETag is bare (0x8D...), a read's is quoted ("0x8D..."), as Azure Storage sends them: code that
    compares them must clean them (naming.clean_etag) first."""
    return read is not None and read.startswith('"') and not listed.startswith('"') and clean_etag(read) == listed


def test_pages_walk_the_container_once_in_name_order(storage: Storage) -> None:
    box = c(storage)
    names = [f"in/{i:02d}.mp4" for i in range(5)]
    for name in reversed(names):
        storage.upload_bytes(box, name, b"x")  # type: ignore[attr-defined]
    seen: list[str] = []
    marker: str | None = None
    for _ in range(3):
        page, marker = storage.list_page(box, 2, marker)
        seen += [b.name for b in page]
        assert all(same_version(b.etag, storage.etag_of(box, b.name)) for b in page)
    assert seen == names and marker is None
    first, marker = storage.list_page(box, 2, None)
    storage.upload_bytes(box, "in/00a.mp4", b"x")  # lands in the page already read: not seen again
    rest, end = storage.list_page(box, 10, marker)
    assert [b.name for b in first + rest] == names and end is None


def test_metadata_is_a_new_version_of_the_same_bytes(storage: Storage, tmp_path: Path) -> None:
    box = c(storage)
    src = tmp_path / "in.mp4"
    src.write_bytes(b"0123456789" * 100)
    etag = storage.upload_file(box, "videos/in.mp4", src)
    blob = storage.blob(box, "videos/in.mp4")
    assert (blob.container_name, blob.blob_name) == (box, "videos/in.mp4")
    before = storage.properties(blob)
    assert before is not None and before.etag == etag and before.name == "videos/in.mp4"
    storage.set_metadata(box, "videos/in.mp4", {"mp3pipe_retry": "1"})
    after = storage.properties(blob)
    assert after is not None and after.etag != etag and after.metadata == {"mp3pipe_retry": "1"}
    assert after.last_modified >= before.last_modified
    assert storage.read_tail(box, "videos/in.mp4", 15) == "567890123456789"


def test_last_modified_is_utc_to_the_second(storage: Storage) -> None:
    box = c(storage)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    storage.put_json(box, "t.json", {})
    stamp = storage.last_modified_of(box, "t.json")
    assert stamp is not None and stamp.utcoffset() == dt.timedelta(0) and stamp.microsecond == 0
    assert before - dt.timedelta(seconds=5) <= stamp <= before + dt.timedelta(seconds=5)


def test_tails_are_the_last_bytes_of_a_text_blob(storage: Storage) -> None:
    box = c(storage)
    storage.upload_bytes(box, "logs/stderr.txt", "line one\nlast: ünïcode\n".encode())  # type: ignore[attr-defined]
    assert storage.read_tail(box, "logs/stderr.txt") == "line one\nlast: ünïcode\n"
    assert storage.read_tail(box, "logs/stderr.txt", 6) == "\ufffdcode\n"  # a character cut in two is replaced
    storage.upload_bytes(box, "logs/empty.txt", b"")  # type: ignore[attr-defined]
    assert storage.read_tail(box, "logs/empty.txt") == ""


def test_heads_are_the_first_bytes_of_a_blob_however_short(storage: Storage) -> None:
    box = c(storage)
    storage.upload_bytes(box, "f/_mp3pipe.json", b'{"preset": "podcast"}')  # type: ignore[attr-defined]
    assert storage.read_head(box, "f/_mp3pipe.json", 1024) == b'{"preset": "podcast"}'
    assert storage.read_head(box, "f/_mp3pipe.json", 10) == b'{"preset":'
    storage.upload_bytes(box, "f/empty.json", b"")  # type: ignore[attr-defined]
    assert storage.read_head(box, "f/empty.json", 10) == b""


def test_node_urls_name_the_blob_and_sign_for_the_ttl_only_what_a_task_needs(storage: Storage) -> None:
    box = c(storage)
    ttl = dt.timedelta(hours=13)
    plain = storage.plain_blob_url(box, "videos/a b.mp4")
    assert plain.endswith(f"/{box}/videos/a%20b.mp4")
    assert plain.startswith(storage.plain_container_url(box) + "/")
    read = storage.node_read_url(box, "videos/a b.mp4", ttl)
    write = storage.node_write_container_url(box, ttl)
    assert read.startswith(plain + "?") and write.startswith(storage.plain_container_url(box) + "?")
    for url, permissions in ((read, "r"), (write, "cw")):
        query = parse_qs(urlsplit(url).query)
        assert sorted(query["sp"][0]) == sorted(permissions)
        expiry = dt.datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
        assert abs(expiry - (dt.datetime.now(dt.UTC) + ttl)) < dt.timedelta(minutes=1)
