"""The conversion task as it runs on the node: pick the track, run ffmpeg, land the MP3 only if it holds all the audio.

It reads and writes fixed names in the task's working directory (input.mp4 -> output.mp3); the blob's name never
reaches it. Its last stderr line on failure is `mp3pipe: <reason>`, which the failure report quotes. Exit codes:
ffmpeg's own when ffmpeg fails, 3 when the MP3 would be incomplete or the input has no audio, 0 when output.mp3 is
complete (Batch then uploads it: the output file rule is `tasksuccess`).
"""

from __future__ import annotations

import os
import sys

from shared.node import mp3, mp4
from shared.node.presets import PRESETS, Preset

INPUT_FILE = "input.mp4"
OUTPUT_FILE = "output.mp3"
TOLERANCE_SECONDS = 0.5  # the MP3 may be this much shorter than the declared audio (encoder delay, priming)
EXIT_INCOMPLETE = 3
ERROR_NO_STREAM = "matches no streams"  # ffmpeg: the file has no audio stream to map
_DECODE_ERRORS = ("Error while decoding", "Error submitting packet to decoder", "Invalid data found")
_CONTAINER_TAGS = ("major_brand", "minor_version", "compatible_brands")  # MP4 container details, not tags


# util-linux setpriv (every Ubuntu image has it) sets ffmpeg's parent-death signal without a Python fork.
_SETPRIV = next((p for p in ("/usr/bin/setpriv", "/bin/setpriv") if os.access(p, os.X_OK)), None)


def _spawn(args: list[str], stdin: int, stderr: int) -> int:
    """Start ffmpeg (stdin, stderr redirected) so that it gets SIGKILL if this runner dies (Batch kills the task on
    terminate or wall-clock expiry); its pid.

    posix_spawn, not subprocess: importing subprocess cost every task ~15 ms of CPU, and a preexec_fn forces a fork
    of the whole interpreter. Without setpriv the child sets the signal itself (prctl through ctypes) after a fork.
    """
    if _SETPRIV and sys.platform.startswith("linux"):
        return os.posix_spawn(_SETPRIV, [_SETPRIV, "--pdeathsig", "KILL", "--", *args], os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stderr, 2)])
    pid = os.fork()
    if pid == 0:  # the child: redirect, set the signal, become ffmpeg
        try:
            os.dup2(stdin, 0)
            os.dup2(stderr, 2)
            if sys.platform.startswith("linux"):
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
            os.execvp(args[0], args)
        finally:
            os._exit(127)
    return pid


def run_ffmpeg(args: list[str]) -> tuple[int, list[str]]:
    """Run ffmpeg, pass its stderr through to ours, and return (exit code, stderr lines)."""
    read_end, write_end = os.pipe()  # both close-on-exec: the child gets only the dup2'd copy
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = _spawn(args, devnull, write_end)
    finally:
        os.close(write_end)
        os.close(devnull)
    lines: list[str] = []
    with os.fdopen(read_end, "rb") as err:
        for raw in err:
            line = raw.decode("utf-8", "replace")
            sys.stderr.write(line)
            if len(lines) < 10000:
                lines.append(line.rstrip("\n"))
    sys.stderr.flush()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), lines


def _audio_map(track: mp4.AudioTrack | None) -> str:
    # An MP4 track's id is its stream id in ffmpeg: `0:i:<id>` is that track whatever the box order.
    return f"0:i:{track.track_id}" if track else "0:a:0"


def _filters(preset: Preset, loudnorm: str = "") -> list[str]:
    chain = []
    if preset.mono:
        chain.append("aformat=channel_layouts=mono")
    if loudnorm:
        chain.append(f"loudnorm={loudnorm}")
    if preset.sample_rate:
        chain.append(f"aresample={preset.sample_rate}")
    return ["-af", ",".join(chain)] if chain else []


def measure_loudness(ffmpeg: str, preset: Preset, track: mp4.AudioTrack | None) -> str:
    """First loudnorm pass: the measured values for a linear second pass (falls back to one-pass if unreadable)."""
    code, lines = run_ffmpeg([ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-i", INPUT_FILE, "-map",
                              _audio_map(track), "-vn", *_filters(preset, f"{preset.loudness}:print_format=json"),
                              "-f", "null", "-"])
    import json  # only this preset needs it: the import costs every other task a few ms

    text = "\n".join(lines)
    start, end = text.rfind("{"), text.rfind("}")
    if code != 0 or start < 0 or end < start:
        return preset.loudness
    try:
        m = json.loads(text[start:end + 1])
        return (f"{preset.loudness}:measured_I={m['input_i']}:measured_TP={m['input_tp']}"
                f":measured_LRA={m['input_lra']}:measured_thresh={m['input_thresh']}"
                f":offset={m['target_offset']}:linear=true")
    except (ValueError, KeyError):
        return preset.loudness


def copies(preset: Preset, track: mp4.AudioTrack | None) -> bool:
    """Whether the track is copied as it is: it is MP3 already and the preset asks for no other quality."""
    return preset.copy_mp3 and track is not None and track.codec == "mp3"


def ffmpeg_args(ffmpeg: str, preset: Preset, track: mp4.AudioTrack | None, loudnorm: str = "") -> list[str]:
    """The whole ffmpeg command: the chosen audio track, cover images, tags and chapters, into output.mp3."""
    encode = ["-c:a", "libmp3lame", *preset.encode, *_filters(preset, loudnorm)]
    audio = ["-c:a", "copy"] if copies(preset, track) else encode
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", INPUT_FILE,
        "-map", _audio_map(track),
        # Attached pictures (a cover) travel as the MP3's APIC frame: every video stream, less the real videos.
        "-map", "0:v?", "-map", "-0:V?", "-c:v", "copy",
        "-map_metadata", "0", "-map_chapters", "0",
        *[arg for tag in _CONTAINER_TAGS for arg in ("-metadata", f"{tag}=")],
        *audio,
        "-id3v2_version", "3", "-f", "mp3", OUTPUT_FILE,
    ]


def incomplete_reason(declared: float, measured: float, stderr: list[str]) -> str:
    """Why the MP3 holds less than the input declares, in words a user understands."""
    decode_errors = sum(1 for line in stderr if any(p in line for p in _DECODE_ERRORS))
    cut = any("partial file" in line for line in stderr)
    if cut:
        return (f"the input is cut short: its audio track declares {declared:.1f} s but only {measured:.1f} s "
                "could be read (an interrupted upload?)")
    if decode_errors:
        return (f"the input is damaged: its audio track declares {declared:.1f} s but only {measured:.1f} s "
                f"could be decoded ({decode_errors} unreadable audio packets)")
    return f"the MP3 holds only {measured:.1f} s of the {declared:.1f} s the input's audio track declares"


def fail(reason: str, code: int = EXIT_INCOMPLETE) -> int:
    try:
        os.remove(OUTPUT_FILE)
    except OSError:
        pass
    sys.stderr.write(f"mp3pipe: {reason}\n")
    sys.stderr.flush()
    return code


def main(argv: list[str]) -> int:
    preset = PRESETS[argv[0] if argv else "standard"]
    ffmpeg = os.environ.get("MP3PIPE_FFMPEG") or "ffmpeg"
    if not os.path.exists(INPUT_FILE):
        return fail("the input file was not available to the task", 66)
    if os.path.getsize(INPUT_FILE) == 0:
        return fail("the input is empty (0 bytes)")
    unreadable: mp4.NotMp4 | None = None
    try:
        info: mp4.Mp4Info | None = mp4.read_mp4(INPUT_FILE)
    except mp4.NotMp4 as exc:
        info, unreadable = None, exc  # another container ffmpeg may still read, or an MP4 without its index
    track = info.chosen() if info else None
    if info is not None and track is None:
        return fail("the input has no audio stream")
    loudnorm = measure_loudness(ffmpeg, preset, track) if preset.loudness else ""
    code, stderr = run_ffmpeg(ffmpeg_args(ffmpeg, preset, track, loudnorm))
    try:
        os.remove(INPUT_FILE)  # converted or not, the node's disk should not keep it
    except OSError:
        pass
    if code != 0:
        if unreadable is not None and unreadable.truncated:
            return fail("the input is cut short: it ends before the index (moov box) an MP4 keeps at its end, "
                        "so none of it can be read (an interrupted upload?)", code)
        if unreadable is not None and not any(ERROR_NO_STREAM in line for line in stderr):
            return fail("the input is not an MP4, nor any other audio or video file ffmpeg can read", code)
        return code
    measured = mp3.duration_seconds(OUTPUT_FILE)
    declared = track.declared_seconds if track else None
    if measured <= 0:
        return fail("no audio could be decoded from the input")
    if declared is not None and measured < declared - TOLERANCE_SECONDS:
        return fail(incomplete_reason(declared, measured, stderr))
    if declared is None and any("partial file" in line for line in stderr):
        # Nothing to compare with (a fragmented MP4 written live), but ffmpeg met the cut inside a fragment.
        return fail(f"the input is cut short: it ends inside its audio data, after {measured:.1f} s "
                    "(an interrupted upload?)")
    sys.stderr.write(f"mp3pipe: converted {measured:.2f} s of audio"
                     + (f" (declared {declared:.2f} s)" if declared is not None else " (no declared duration)")
                     + ("; copied without re-encoding" if copies(preset, track) else "")
                     + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
