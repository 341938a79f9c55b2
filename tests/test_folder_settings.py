"""Settings per folder end to end: through the local pipeline (real Azurite, the local host, real ffmpeg) a folder's
`_mp3pipe.json` makes its MP3s with its preset, a nested one wins, a bad one fails its folder's files and converts
nothing there; through the Azure adapter (Batch REST stand-in) the task's command line carries the folder's preset."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import subprocess
from pathlib import Path

from devhost.azurite import Azurite
from devhost.local_pipeline import LocalPipeline
from localbatch.process import find_ffmpeg
from shared.domain import folder_settings, naming
from tests.conftest import isolated
from tests.support.batch_standin import iso
from tests.support.media import held_seconds
from tests.test_batch_behaviours import world  # noqa: F401 - the fixture: pool and job on the stand-in
from tests.test_monitor_requests import World, submit

pytest_plugins = ["tests.support.batch_fixtures"]

SECONDS = 4.0


def stereo_talk(path: Path) -> Path:
    """A 4 s MP4 with stereo AAC audio (two tones, so a mono MP3 is the preset's doing, not the input's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tones = [arg for hz in (440, 660) for arg in ("-f", "lavfi", "-i", f"sine=frequency={hz}:duration={SECONDS}")]
    subprocess.run([find_ffmpeg(), "-nostdin", "-v", "error", "-y", *tones,
                    "-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo", "-c:a", "aac", "-b:a", "128k",
                    str(path)], check=True)
    return path


def audio_line(mp3: Path) -> str:
    """ffmpeg's description of the MP3's audio stream, e.g. `mp3, 44100 Hz, mono, fltp, 64 kb/s`."""
    said = subprocess.run([find_ffmpeg(), "-nostdin", "-hide_banner", "-i", str(mp3)], capture_output=True,
                          text=True).stderr
    found = re.search(r"Audio: (.*)", said)
    assert found, said
    return found.group(1)


def settings_file(body: bytes | dict[str, object]) -> bytes:
    return json.dumps(body).encode() if isinstance(body, dict) else body


def test_folders_convert_with_their_presets_and_a_bad_file_fails_its_folder(azurite: Azurite, tmp_path: Path) -> None:
    talk = stereo_talk(tmp_path / "in" / "talk.mp4")
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=azurite) as pipe:
        # dropped as any upload is (its BlobCreated event posted): the trigger skips it, no task, no report
        pipe.drop("pod/" + folder_settings.FILE_NAME, settings_file({"preset": "podcast"}))
        pipe.drop("pod/2024/" + folder_settings.FILE_NAME, settings_file({"preset": "cbr320"}))
        pipe.drop("broken/" + folder_settings.FILE_NAME, settings_file({"preset": "podcast", "bitrate": "96k"}))
        names = ["pod/ep1.mp4", "pod/2024/ep2.mp4", "broken/ep3.mp4", "broken/deeper/ep4.mp4", "plain/ep5.mp4"]
        outcomes = pipe.wait({name: pipe.drop(name, talk) for name in names}, timeout=240)

        mp3s = {}
        for name in ("pod/ep1.mp4", "pod/2024/ep2.mp4", "plain/ep5.mp4"):
            assert outcomes[name].kind == "converted", (name, outcomes[name].report)
            mp3s[name] = pipe.download(pipe.output_container, outcomes[name].output or "", tmp_path / "out" / name)
            assert abs((held_seconds(mp3s[name]) or 0) - SECONDS) <= 0.5  # whole, as every MP3
        meta = {name: pipe.service.get_blob_client(pipe.output_container, naming.output_name(name))
                .get_blob_properties().metadata["mp3pipe_preset"] for name in mp3s}
        assert meta == {"pod/ep1.mp4": "podcast", "pod/2024/ep2.mp4": "cbr320", "plain/ep5.mp4": "standard"}

        for name in ("broken/ep3.mp4", "broken/deeper/ep4.mp4"):
            outcome = outcomes[name]
            assert outcome.kind == "failed" and outcome.report is not None, (name, outcome)
            assert outcome.report["reason"] == (
                "the folder settings file 'broken/_mp3pipe.json' is not valid: unknown key 'bitrate' (allowed: "
                "preset); fix or delete it, then convert its folder's files again with "
                "`mp3pipe retry --prefix broken/`")
            assert outcome.report["task_id"] is None  # no task: nothing converted with the wrong settings
        outputs = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}
        assert not {o for o in outputs if o.startswith("broken/") and o.endswith(".mp3")}
        assert not {o for o in outputs if "_mp3pipe.json" in o or o.startswith("pod/_mp3pipe")}  # not an input

    assert re.search(r"\bmono\b.* 64 kb/s", audio_line(mp3s["pod/ep1.mp4"])), audio_line(mp3s["pod/ep1.mp4"])
    assert re.search(r"\bstereo\b.* 320 kb/s", audio_line(mp3s["pod/2024/ep2.mp4"]))  # the nested file won
    assert "stereo" in audio_line(mp3s["plain/ep5.mp4"])  # the app setting (standard) elsewhere


# -- through the Azure adapter ----------------------------------------------------------------------------------


def put_settings(w: World, folder: str, body: bytes | dict[str, object]) -> None:
    w.deps.storage.upload_bytes(w.settings.input_container, folder + folder_settings.FILE_NAME, settings_file(body))


def test_the_tasks_command_line_carries_its_folders_preset_and_a_renewal_keeps_it(
        world: World) -> None:  # noqa: F811 - the fixture imported above
    job = world.settings.job_id
    put_settings(world, "pod/", {"preset": "podcast"})
    put_settings(world, "pod/loud/", {"preset": "high"})
    tasks = {name: submit(world, name)[0] for name in ("pod/a.mp4", "pod/loud/b.mp4", "c.mp4")}
    sent = {name: world.standin.tasks[job][task_id] for name, task_id in tasks.items()}
    assert {name: shlex.split(t["commandLine"])[-1] for name, t in sent.items()} == {
        "pod/a.mp4": "podcast", "pod/loud/b.mp4": "high", "c.mp4": "standard"}
    mp3 = next(f for f in sent["pod/a.mp4"]["outputFiles"] if f["filePattern"] == "output.mp3")
    headers = {h["name"]: h["value"] for h in mp3["destination"]["container"]["uploadHeaders"]}
    assert headers["x-ms-meta-mp3pipe_preset"] == "podcast"

    # Queued for 11.5 h (SAS mode): the monitor resubmits it with fresh URLs; meanwhile the folder's file changed,
    # which converts nothing again by itself: the renewed task is the same conversion, with the same preset.
    put_settings(world, "pod/", b"{not json")
    now = dt.datetime.now(dt.UTC)
    sent["pod/a.mp4"]["creationTime"] = iso(now - dt.timedelta(hours=11, minutes=30))
    world.clock.now = now.timestamp()
    _, requests = world.tick()
    assert ("POST", f"/jobs/{job}/tasks", 201) in requests
    renewed = world.standin.tasks[job][tasks["pod/a.mp4"]]
    assert renewed["eTag"] != sent["pod/a.mp4"]["eTag"] and shlex.split(renewed["commandLine"])[-1] == "podcast"
