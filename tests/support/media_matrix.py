"""The MP4s people really have, and broken ones dropped by mistake, generated with ffmpeg: one recipe per class."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from localbatch.process import find_ffmpeg


@dataclass(frozen=True)
class Case:
    """One class of input: how to make it, and what a user should get back."""

    name: str
    seconds: float  # the audio a complete MP3 holds (0 for broken inputs)
    args: tuple[str, ...] = ()  # ffmpeg arguments after the inputs, before the output name
    inputs: tuple[str, ...] = ()  # ffmpeg input arguments (lavfi sources)
    channels: int = 2  # channels the MP3 should have
    reason: str = ""  # for broken inputs: words the failure report's reason must contain
    copied: bool = False  # the audio is MP3 already: copied, not re-encoded


def _video(seconds: float, size: str = "320x240") -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=15:duration={seconds}")


def _tone(seconds: float, rate: int = 44100, frequency: int = 440) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}")


def _speech_like(seconds: float) -> tuple[str, ...]:
    """Pink noise with pauses, 2 s on, 1 s off: level changes like speech, so loudness has something to measure."""
    expr = "if(lt(mod(t\\,3)\\,2)\\,0.3*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*3*t))\\,0)"
    return ("-f", "lavfi", "-i", f"aevalsrc={expr}:s=44100:d={seconds}")


H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
AAC = ("-c:a", "aac", "-b:a", "96k", "-ac", "2")

GOOD: tuple[Case, ...] = (
    Case("phone-hevc-moov-last", 6.0, ("-map", "0:v", "-map", "1:a", "-c:v", "libx265", "-preset", "ultrafast",
                                       "-x265-params", "log-level=error", "-tag:v", "hvc1", *AAC),
         _video(6.0) + _tone(6.0, 48000)),
    Case("fragmented-screen-recording", 6.0, ("-map", "0:v", "-map", "1:a", *H264, *AAC, "-movflags",
                                              "frag_keyframe+empty_moov+default_base_moof"),
         _video(6.0) + _tone(6.0)),
    Case("audio-already-mp3", 6.0, ("-map", "0:v", "-map", "1:a", *H264, "-c:a", "libmp3lame", "-b:a", "128k",
                                    "-ac", "2"),
         _video(6.0) + _tone(6.0), copied=True),
    Case("camcorder-ac3-5.1", 6.0, ("-map", "0:v", "-map", "1:a", *H264, "-c:a", "ac3", "-ac", "6"),
         _video(6.0) + _tone(6.0, 48000)),
    Case("tv-eac3-5.1", 6.0, ("-map", "0:v", "-map", "1:a", *H264, "-c:a", "eac3", "-ac", "6"),
         _video(6.0) + _tone(6.0, 48000)),
    Case("web-recorder-opus", 6.0, ("-map", "0:v", "-map", "1:a", *H264, "-c:a", "libopus", "-b:a", "64k", "-ac", "2"),
         _video(6.0) + _tone(6.0, 48000)),
    Case("audio-only-aac", 6.0, AAC, _tone(6.0)),
    Case("audio-only-alac", 6.0, ("-c:a", "alac", "-ac", "2"), _tone(6.0)),
    Case("hi-res-96khz", 6.0, ("-c:a", "aac", "-b:a", "192k", "-ac", "2"), _tone(6.0, 96000)),
    Case("mono-voice-memo", 6.0, ("-c:a", "aac", "-b:a", "64k", "-ac", "1"), _tone(6.0), channels=1),
    Case("lecture-2-hours", 2 * 3600.0, ("-c:a", "aac", "-b:a", "12k", "-ac", "1"), _tone(2 * 3600.0, 8000),
         channels=1),
)

BROKEN: tuple[Case, ...] = (
    Case("empty", 0, reason="the input is empty"),
    Case("not-a-video", 0, reason="the input is not an MP4, nor any other audio or video file"),
    Case("cut-short-moov-first", 0, reason="the input is cut short: its audio track declares 20.0 s but only"),
    Case("cut-short-moov-last", 0, reason="the input is cut short: it ends before the index"),
    Case("no-audio", 0, reason="the input has no audio stream"),
    Case("corrupted-in-the-middle", 0, reason="the input is damaged"),
)


def generator() -> str:
    """Debian's ffmpeg when installed (another build than the converter's, like users' tools), else the wheel's."""
    return shutil.which("ffmpeg") or find_ffmpeg()


def _run(args: list[str]) -> None:
    subprocess.run([generator(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make(case: Case, folder: Path) -> Path:
    """Write the case's MP4 into folder and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.name}.mp4"
    if case.inputs:  # a generated recording; the broken ones are made below
        _run([*case.inputs, *case.args, "-t", str(case.seconds), str(path)])
        return path
    if case.name == "empty":
        path.write_bytes(b"")
    elif case.name == "not-a-video":
        path.write_text("This is a meeting agenda, saved with the wrong extension.\n" * 200)
    elif case.name in ("cut-short-moov-first", "cut-short-moov-last", "corrupted-in-the-middle"):
        whole = folder / f"{case.name}.whole.mp4"
        fast = () if case.name == "cut-short-moov-last" else ("-movflags", "+faststart")
        _run([*_video(20.0, "160x120"), *_tone(20.0), "-map", "0:v", "-map", "1:a", *H264, *AAC, *fast,
              "-t", "20", str(whole)])
        data = bytearray(whole.read_bytes())
        if case.name == "corrupted-in-the-middle":
            rng = random.Random(7)  # the same damage every run
            start, length = len(data) * 2 // 5, len(data) // 4
            data[start:start + length] = bytes(rng.randrange(256) for _ in range(length))
        else:
            del data[len(data) * 2 // 5:]
        path.write_bytes(bytes(data))
        whole.unlink()
    elif case.name == "no-audio":
        _run([*_video(4.0), *H264, "-t", "4", str(path)])
    return path


def cut_short_by(folder: Path, missing: float, seconds: float = 8.0) -> Path:
    """An audio-only fast-start MP4 that declares `seconds` of audio, its last `missing` seconds of samples cut off
    (its index first, then the samples in order: the end of the file holds the end of the audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    whole, path = folder / f"whole-{seconds}.mp4", folder / f"short-by-{missing}.mp4"
    if not whole.exists():
        _run([*_tone(seconds), *AAC, "-movflags", "+faststart", "-t", str(seconds), str(whole)])
    data = whole.read_bytes()
    samples_at = data.index(b"mdat") + 4  # the index (moov) sits before: every byte after is audio
    per_second = (len(data) - samples_at) / seconds
    path.write_bytes(data[: len(data) - round(missing * per_second)])
    return path


def tagged(folder: Path) -> Path:
    """A podcast episode as editors export it: tags, two chapters and a cover image."""
    folder.mkdir(parents=True, exist_ok=True)
    cover, meta, path = folder / "cover.png", folder / "chapters.txt", folder / "tagged.mp4"
    _run(["-f", "lavfi", "-i", "testsrc2=size=300x300", "-frames:v", "1", str(cover)])
    meta.write_text(";FFMETADATA1\ntitle=Episode 12: Pipelines\nartist=The Ops Hour\nalbum=Season 2\n"
                    "date=2026\ncomment=Recorded live\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=3000\ntitle=Intro\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=3000\nEND=6000\ntitle=Main part\n")
    _run([*_tone(6.0), "-i", str(cover), "-f", "ffmetadata", "-i", str(meta), "-map", "0:a", "-map", "1:v",
          "-map_metadata", "2", "-map_chapters", "2", *AAC, "-c:v", "png", "-disposition:v:0", "attached_pic",
          "-t", "6", str(path)])
    return path


def two_tracks(folder: Path) -> Path:
    """Two audio tracks, the second marked default: 4 s of commentary, then 7 s of the programme."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "two-tracks.mp4"
    _run([*_tone(4.0, frequency=300), *_tone(7.0, frequency=900), "-map", "0:a", "-map", "1:a", *AAC,
          "-disposition:a:0", "0", "-disposition:a:1", "default", str(path)])
    return path


def speech(folder: Path, seconds: float = 30.0) -> Path:
    """A quiet talk, far from -16 LUFS, for the podcast preset."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "talk.mp4"
    _run([*_speech_like(seconds), "-af", "volume=-14dB", "-ac", "2", *AAC, "-t", str(seconds), str(path)])
    return path
