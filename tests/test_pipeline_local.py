"""End to end on the embedded default: real Azurite, the local host process, the local gateway, real ffmpeg."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from devhost.local_pipeline import LocalPipeline
from devhost.media import duration
from shared.domain import naming, planning
from tests.conftest import isolated
from tests.support.media import held_seconds


@pytest.fixture(scope="module")
def pipe(azurite, tmp_path_factory):
    settings = isolated()
    with LocalPipeline(tmp_path_factory.mktemp("state"), settings=settings, azurite=azurite) as p:
        yield p


def content_type(container: ContainerClient, name: str) -> str:
    return container.get_blob_client(name).get_blob_properties().content_settings.content_type


def _fetch_held(pipe: LocalPipeline, name: str, tmp: Path) -> float | None:
    local = pipe.download(pipe.output_container, name, tmp / uuid.uuid4().hex / Path(name).name)
    return held_seconds(local)  # what the MP3 holds, not what its header declares


def test_mp4s_come_back_as_mp3s_with_their_audio_duration(pipe, media, tmp_path):
    drops = {"tone.mp4": media["tone"], "deep/er/nested.take.2.mp4": media["tone_long"]}
    if "tutorial" in media:
        drops["LowPriVMs-4.mp4"] = media["tutorial"]
    etags = {name: pipe.drop(name, path) for name, path in drops.items()}
    outcomes = pipe.wait(etags, timeout=120)
    assert {n: o.kind for n, o in outcomes.items()} == {n: "converted" for n in drops}
    assert outcomes["deep/er/nested.take.2.mp4"].output == "deep/er/nested.take.2.mp3"
    for name, src in drops.items():
        got = _fetch_held(pipe, outcomes[name].output, tmp_path)
        want = duration(src)
        assert got is not None and want is not None
        assert abs(got - want) <= 0.2, (name, got, want)


def test_a_file_without_audio_fails_with_a_report_and_blocks_nothing(pipe, media):
    etags = {"broken/noaudio.mp4": pipe.drop("broken/noaudio.mp4", media["silent_video"]),
             "fine.mp4": pipe.drop("fine.mp4", media["tone"])}
    outcomes = pipe.wait(etags, timeout=120)
    assert outcomes["fine.mp4"].kind == "converted"
    failed = outcomes["broken/noaudio.mp4"]
    assert failed.kind == "failed"
    report = failed.report
    assert report["reason"] == "the input has no audio stream"
    assert report["input"] == "broken/noaudio.mp4" and report["etag"] == etags["broken/noaudio.mp4"]
    assert report["exit_code"] not in (0, None)
    assert "mp3pipe: the input has no audio stream" in report["stderr_tail"]
    assert report["attempts"] >= 1 and report["task_id"] and report["finished_at"]
    # Each opens where users open them: the report as JSON, the task's logs as text.
    out = pipe.service.get_container_client(pipe.output_container)
    assert content_type(out, naming.report_name("broken/noaudio.mp4")).startswith("application/json")
    assert content_type(out, f"{report['logs']}/stderr.txt") == planning.LOG_CONTENT_TYPE


def test_an_mp3_is_audio_mpeg_and_names_its_source_whatever_the_name(pipe, media):
    name = "Été 2024/100% live – 東京 take 1.mp4"  # spaces, non-ASCII, a percent sign
    etags = {name: pipe.drop(name, media["tone"])}
    outcome = pipe.wait(etags, timeout=120)[name]
    assert outcome.kind == "converted" and outcome.output
    props = pipe.service.get_blob_client(pipe.output_container, outcome.output).get_blob_properties()
    assert props.content_settings.content_type == "audio/mpeg"
    assert all(v.isascii() and v.isprintable() for v in props.metadata.values()), props.metadata
    source = {k: planning.decode(v) for k, v in props.metadata.items()}
    assert source == {"mp3pipe_input": name, "mp3pipe_input_etag": etags[name],
                      "mp3pipe_preset": pipe.value("FFMPEG_PRESET")}


def test_overwriting_a_blob_converts_it_again(pipe, media, tmp_path):
    first = pipe.drop("again.mp4", media["tone"])
    assert pipe.wait({"again.mp4": first}, timeout=120)["again.mp4"].kind == "converted"
    assert abs(_fetch_held(pipe, "again.mp3", tmp_path) - 4.0) < 0.2
    second = pipe.drop("again.mp4", media["tone_long"])
    assert second != first
    # "converted" is per version: the MP3 there must be the new version's own upload
    assert pipe.wait({"again.mp4": second}, timeout=120)["again.mp4"].kind == "converted"
    assert abs(_fetch_held(pipe, "again.mp3", tmp_path) - 7.0) < 0.2


def test_a_fixed_report_is_removed_when_a_new_version_converts(pipe, media):
    bad = pipe.drop("fixme.mp4", media["silent_video"])
    assert pipe.wait({"fixme.mp4": bad}, timeout=120)["fixme.mp4"].kind == "failed"
    good = pipe.drop("fixme.mp4", media["tone"])
    assert pipe.wait({"fixme.mp4": good}, timeout=120)["fixme.mp4"].kind == "converted"
    names = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    assert "fixme.error.json" not in names and "fixme.mp3" in names


def test_non_mp4_files_are_left_alone(pipe, media):
    pipe.drop("notes.txt", b"hello")
    etag = pipe.drop("after-notes.mp4", media["tone"])
    assert pipe.wait({"after-notes.mp4": etag}, timeout=120)["after-notes.mp4"].kind == "converted"
    names = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
    assert not any(n.startswith("notes") for n in names)
