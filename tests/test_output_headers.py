"""Output blobs on Azure Batch: the task asks for upload headers (the real SDK against the REST stand-in), and the
stand-in's node, after running the task's real command, uploads with them to real Azurite, where they are read back."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import Azurite
from shared.domain import naming, planning
from tests.support.batch_standin import BatchStandin
from tests.support.hostile import HOSTILE_NAMES
from tests.test_monitor_requests import World, make_world, submit

pytest_plugins = ["tests.support.batch_fixtures"]

NAME = "Été 2024/100% live – 東京 take 1.mp4"  # spaces, non-ASCII, a percent sign


@pytest.fixture
def world(azurite: Azurite, batch_standin: BatchStandin) -> Iterator[World]:
    """Settings with a preset other than the default, so the metadata shows the one used; the first submit creates
    the job."""
    w = make_world(azurite, batch_standin, FFMPEG_PRESET="small")
    try:
        yield w
    finally:
        w.deps.gateway.close()  # type: ignore[attr-defined]


def task_body(w: World, task_id: str) -> dict[str, Any]:
    posts = w.standin.sent("POST", f"/jobs/{w.settings.job_id}/tasks")
    (post,) = [r for r in posts if r.body["id"] == task_id and r.status == 201]  # the one Batch accepted
    return post.body


def run_on_node(body: dict[str, Any], input_file: Path, task_dir: Path) -> tuple[int, dict[str, bytes]]:
    """What a node does with the task: its input as input.mp4 in the working directory, its command line split
    into arguments (no shell), stdout/stderr beside the working directory; returns (exit code, files it left)."""
    wd = task_dir / "wd"
    wd.mkdir(parents=True)
    shutil.copyfile(input_file, wd / body["resourceFiles"][0]["filePath"])
    with open(task_dir / "stdout.txt", "wb") as out, open(task_dir / "stderr.txt", "wb") as err:
        code = subprocess.run(shlex.split(body["commandLine"]), cwd=wd, stdout=out, stderr=err, timeout=120).returncode
    files = {p.name: p.read_bytes() for p in wd.iterdir()}
    files |= {f"../{p.name}": p.read_bytes() for p in task_dir.glob("std*.txt")}
    return code, files


def properties(w: World, name: str) -> Any:
    return w.deps.storage.service.get_blob_client(w.settings.output_container, name).get_blob_properties()


def test_batch_uploads_the_mp3_as_audio_mpeg_with_metadata_naming_its_source(world: World, media: dict[str, Path],
                                                                             tmp_path: Path) -> None:
    task_id, etag = submit(world, NAME, media["tone"].read_bytes())
    body = task_body(world, task_id)
    code, files = run_on_node(body, media["tone"], tmp_path / task_id)
    assert code == 0, files.get("../stderr.txt")
    assert world.standin.finish_task(world.settings.job_id, task_id, files) == [naming.output_name(NAME)]

    props = properties(world, naming.output_name(NAME))
    assert props.content_settings.content_type == "audio/mpeg"
    source = {k: planning.decode(v) for k, v in props.metadata.items()}
    assert source == {"mp3pipe_input": NAME, "mp3pipe_input_etag": etag, "mp3pipe_preset": "small"}
    # What Batch was asked for: Put Blob headers, plain ASCII whatever the name.
    rules = {o["filePattern"]: o["destination"]["container"] for o in body["outputFiles"]}
    sent = {h["name"]: h["value"] for h in rules["output.mp3"].get("uploadHeaders", [])}
    assert sent == {"x-ms-blob-content-type": "audio/mpeg", **{f"x-ms-meta-{k}": v for k, v in props.metadata.items()}}
    assert all(v.isascii() and v.isprintable() for v in sent.values()), sent


def test_a_failed_tasks_logs_are_text_and_its_report_is_json(world: World, media: dict[str, Path],
                                                             tmp_path: Path) -> None:
    name = "broken clip – no sound.mp4"
    task_id, _ = submit(world, name, media["silent_video"].read_bytes())
    body = task_body(world, task_id)
    code, files = run_on_node(body, media["silent_video"], tmp_path / task_id)
    assert code != 0
    uploaded = world.standin.finish_task(world.settings.job_id, task_id, files, exit_code=code, retry_count=1)
    logs = naming.logs_folder(task_id)
    assert sorted(uploaded) == [f"{logs}/stderr.txt", f"{logs}/stdout.txt"]  # no MP3 on failure
    for log in uploaded:
        assert properties(world, log).content_settings.content_type == "text/plain; charset=utf-8"

    world.tick()  # the monitor reports the failure
    report = naming.report_name(name)
    assert world.reports() == [report]
    assert properties(world, report).content_settings.content_type.startswith("application/json")


@pytest.mark.parametrize("name", [NAME, *HOSTILE_NAMES, "100%25 literally.mp4", "emoji 🎧 ünï.mp4"])
def test_every_name_travels_as_ascii_and_decodes_to_itself(name: str) -> None:
    meta = planning.source_metadata(name, '"0x8DC0FFEE"', "standard")
    assert all(v.isascii() and v.isprintable() for v in meta.values()), meta
    assert {k: planning.decode(v) for k, v in meta.items()} == {
        "mp3pipe_input": name, "mp3pipe_input_etag": "0x8DC0FFEE", "mp3pipe_preset": "standard"}


def test_a_name_too_long_for_azures_metadata_cap_is_left_out_not_failed() -> None:
    name = "東京/" + "音" * 1000 + ".mp4"  # storage takes 1,024 characters; encoded, 9 bytes each
    headers = dict(planning.mp3_headers(name, "0x8DC0FFEE", "standard"))
    meta = {k.removeprefix("x-ms-meta-"): v for k, v in headers.items() if k.startswith("x-ms-meta-")}
    assert sum(len(k) + len(v) for k, v in meta.items()) <= 8 * 1024  # else Storage refuses the MP3's upload
    assert meta == {"mp3pipe_input_etag": "0x8DC0FFEE", "mp3pipe_preset": "standard"}
    assert headers["x-ms-blob-content-type"] == "audio/mpeg"
