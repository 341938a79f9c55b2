"""The ISO media family on real files made by ffmpeg: a QuickTime .mov with PCM audio, an audio-only .m4a and .3gp
files with AMR and AAC audio convert whole through the runner and the local pipeline; a cut-short copy of each fails
(never a short MP3); and a.mp4 beside a.mov in one folder leaves the MP3 to the .mp4 and a report for the .mov."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devhost.local_pipeline import LocalPipeline
from localbatch.process import find_ffmpeg
from shared.domain import naming
from shared.node import mp4
from tests.conftest import isolated
from tests.support.media import held_seconds, run_task, truncated_copy

SECONDS = 6.0
_VIDEO = ("-f", "lavfi", "-i", f"testsrc2=size=176x144:rate=15:duration={SECONDS}")
_H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def _tone(rate: int) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={SECONDS}")


# name -> (ffmpeg arguments, the sample entry the runner must read); the wheel's ffmpeg has the AMR encoder
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "iphone.MOV": ((*_VIDEO, *_tone(48000), "-map", "0:v", "-map", "1:a", *_H264, "-c:a", "pcm_s16le", "-ac", "2"),
                   "sowt"),
    "camera.mov": ((*_VIDEO, *_tone(44100), "-map", "0:v", "-map", "1:a", *_H264, "-c:a", "pcm_s16be"), "twos"),
    "studio.mov": ((*_tone(96000), "-c:a", "pcm_s16le", "-ac", "2"), "lpcm"),  # over 65535 Hz: lpcm, version 2
    "memo.m4a": ((*_tone(44100), "-c:a", "aac", "-b:a", "64k", "-ac", "1"), "mp4a"),
    "old-phone.3gp": ((*_VIDEO, *_tone(8000), "-map", "0:v", "-map", "1:a", "-c:v", "h263", "-c:a",
                       "libopencore_amrnb", "-ac", "1", "-b:a", "12.2k"), "samr"),
    "newer-phone.3GP": ((*_VIDEO, *_tone(44100), "-map", "0:v", "-map", "1:a", *_H264, "-c:a", "aac", "-ac", "1"),
                        "mp4a"),
}


def _make(folder: Path, name: str, *extra: str) -> Path:
    args, _ = KINDS[name]
    path = folder / name
    subprocess.run([find_ffmpeg(), "-nostdin", "-v", "error", "-y", *args, *extra, "-t", str(SECONDS), str(path)],
                   check=True)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("iso")
    made = {name: _make(folder, name) for name in KINDS}
    for name in KINDS:  # the index first, as phones that stream their uploads write it: a cut loses audio, not all
        (folder / "faststart").mkdir(exist_ok=True)
        made[f"faststart/{name}"] = _make(folder / "faststart", name, "-movflags", "+faststart")
    return made


@pytest.mark.parametrize("name", list(KINDS))
def test_the_runner_reads_each_kind_and_converts_it_whole(files, tmp_path, name):
    track = mp4.read_mp4(str(files[name])).chosen()
    assert track is not None and track.codec == KINDS[name][1]
    assert track.declared_seconds == pytest.approx(SECONDS, abs=0.05)
    code, last = run_task(tmp_path, files[name])
    assert code == 0, last
    assert abs(held_seconds(tmp_path / "output.mp3") - SECONDS) <= 0.5


@pytest.mark.parametrize("name", list(KINDS))
@pytest.mark.parametrize("layout", ["index-last", "faststart"])
def test_a_cut_short_copy_of_each_kind_fails_and_leaves_no_mp3(files, tmp_path, name, layout):
    source = files[name] if layout == "index-last" else files[f"faststart/{name}"]
    code, last = run_task(tmp_path, truncated_copy(source, tmp_path / "cut" / name))
    assert code != 0 and "the input is cut short" in last, last
    assert not (tmp_path / "output.mp3").exists()


def test_each_kind_and_a_rival_pair_through_the_local_pipeline(azurite, files, tmp_path):
    dropped = {f"iso/{name}": files[name] for name in KINDS}
    dropped["iso/cut/memo.m4a"] = truncated_copy(files["faststart/memo.m4a"], tmp_path / "cut" / "memo.m4a")
    with LocalPipeline(tmp_path / "state", settings=isolated(), azurite=azurite) as pipe:
        etags = {name: pipe.drop(name, path) for name, path in dropped.items()}
        outcomes = pipe.wait(etags, timeout=300)
        for name in KINDS:
            outcome = outcomes[f"iso/{name}"]
            assert outcome.kind == "converted", (name, outcome.report)
            assert outcome.output == naming.output_name(f"iso/{name}")
            mp3 = pipe.download(pipe.output_container, outcome.output, tmp_path / "mp3" / f"{name}.mp3")
            assert abs(held_seconds(mp3) - SECONDS) <= 0.5
        cut = outcomes["iso/cut/memo.m4a"]
        assert cut.kind == "failed" and "the input is cut short" in cut.report["reason"]

        # a.mov converted first; a.mp4 arrives and owns a.mp3; a.mov is rejected with a report naming it
        first = {"pair/a.mov": pipe.drop("pair/a.mov", files["camera.mov"])}
        assert pipe.wait(first, timeout=120)["pair/a.mov"].kind == "converted"
        owner = {"pair/a.mp4": pipe.drop("pair/a.mp4", files["faststart/memo.m4a"])}  # an MP4 inside, 6 s
        assert pipe.wait(owner, timeout=120)["pair/a.mp4"].kind == "converted"
        lost = pipe.outcome("pair/a.mov", first["pair/a.mov"])
        assert lost.kind == "failed" and "'pair/a.mp4'" in lost.report["reason"], lost
        meta = pipe.service.get_blob_client(pipe.output_container, "pair/a.mp3").get_blob_properties().metadata
        assert meta["mp3pipe_input"] == "pair/a.mp4"
