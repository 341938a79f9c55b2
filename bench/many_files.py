"""Many small files through `make run` (python -m devhost.run): wall time against raw ffmpeg, host memory over time."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devhost.azurite import REPO
from devhost.media import make_mp4
from shared.adapters.batch.local_process import find_ffmpeg
from shared.domain import ffmpeg


def say(text: str = "") -> None:
    print(text, flush=True)


def raw_run(files: list[Path], work: Path, parallel: int) -> float:
    """ffmpeg with the task's argv on the local files, `parallel` at a time; wall seconds."""
    argv = ffmpeg.argv(program=find_ffmpeg())
    dirs = []
    for i, f in enumerate(files):
        d = work / f"{i:05d}"
        d.mkdir(parents=True)
        (d / ffmpeg.INPUT_FILE).symlink_to(f.resolve())
        dirs.append(d)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda d: subprocess.run(argv, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, check=True), dirs))
    return time.perf_counter() - t0


def host_pid(state: Path) -> int | None:
    """The `python -m devhost.host` whose LOCAL_STATE_DIR is `state`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if b"devhost.host" in cmd and f"LOCAL_STATE_DIR={state}".encode() in env:
            return int(entry)
    return None


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each small MP4")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--smoke", action="store_true", help="5 files of 1 s (for the test suite)")
    args = p.parse_args(argv)
    if args.smoke:
        args.files, args.seconds = 5, 1.0
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="mp3pipe-many-"))
    try:
        src = make_mp4(tmp / "src.mp4", args.seconds, size="64x64", frequency=500)
        inputs = tmp / "in"
        files = []
        for i in range(args.files):
            dest = inputs / f"f{i // 100:03d}" / f"clip-{i:05d}.mp4"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            files.append(dest)
        say(f"{args.files} x {args.seconds:g} s MP4s ({src.stat().st_size / 1e3:.0f} kB each); {cores} cores, load "
            f"average {os.getloadavg()[0]:.2f}")
        raw = raw_run(files, tmp / "raw", cores)
        say(f"raw ffmpeg, {cores} at a time: {raw:.1f} s")

        state = tmp / "state"
        samples: list[tuple[float, float]] = []
        done = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            pid = None
            while not done.wait(1.0):
                pid = pid or host_pid(state)
                mib = rss_mib(pid) if pid else None
                if mib is not None:
                    samples.append((time.monotonic() - t0, mib))

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        run = subprocess.run([sys.executable, "-m", "devhost.run", "--input", str(inputs), "--output",
                              str(tmp / "out"), "--state", str(state), "--timeout", "3600"], cwd=REPO,
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
        wall = time.monotonic() - t0
        done.set()
        th.join()
        summary = re.search(r"converted=(\d+) failed=(\d+) pending=(\d+)", run.stdout)
        converted, failed, pending = (int(x) for x in summary.groups()) if summary else (-1, -1, -1)
        say(f"make run (python -m devhost.run): {wall:.1f} s, exit {run.returncode}: converted {converted}, failed "
            f"{failed}, pending {pending}")
        for line in run.stdout.splitlines():
            if line.startswith(("dropped", "finished")):
                say(f"  progress: {line.strip()}")
        if samples:
            marks = [samples[min(len(samples) - 1, int(len(samples) * q))] for q in (0.1, 0.25, 0.5, 0.75)]
            marks.append(samples[-1])
            say("host memory (VmRSS) over the run: " + ", ".join(f"{t:.0f} s {m:.0f} MiB" for t, m in marks))
        first = samples[len(samples) // 4][1] if samples else float("nan")
        last = samples[-1][1] if samples else float("nan")
        say(f"many_files={args.files} wall_s={wall:.1f} raw_s={raw:.1f} ratio={wall / raw:.2f} "
            f"outcomes={converted + failed} host_rss_quarter_mib={first:.0f} host_rss_end_mib={last:.0f}")
        return 0 if run.returncode == 0 else 1
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
