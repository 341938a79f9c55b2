"""Pipeline overhead against raw ffmpeg: throughput, latency, host memory and Batch requests per timer run."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from devhost.azurite import REPO
from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from localbatch.process import find_ffmpeg
from shared.adapters.storage import BlobStorage
from shared.domain import ffmpeg, naming
from tests.support.local_tasks import read_tasks

SAMPLE = REPO.parent / "shared" / "media" / "LowPriVMs-4.mp4"
MEDIA_VERSION = "v1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# What this benchmark measured before the local host took events (README and issue 12), printed beside today's.
BEFORE = {"ratio_drop": 1.70, "ratio_stored": 1.35, "latency": 0.235,
          "idle_135": "host 17% of a core, latency 0.26 s", "idle_2135": "2,135 blobs: host 37%, latency 1.24 s"}
RAW_CPU: list[float] = []  # CPU seconds of the ffmpeg processes of each raw_run
RAW_OTHERS: list[float] = []  # CPU seconds other processes on the machine used during each raw_run


def say(text: str = "") -> None:
    print(text, flush=True)


# -- media --------------------------------------------------------------------------------------------------------
def _ff(*args: str) -> None:
    subprocess.run([find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """`count` MP4s: one 720p H.264 track (generated once) muxed with a different stereo AAC track each."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"video-720p-{seconds:g}s.mp4"
    if not video.exists():
        tmp = video.with_suffix(".tmp.mp4")
        _ff("-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}", "-c:v", "libx264",
            "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p", "-an", str(tmp))
        tmp.rename(video)

    def one(i: int) -> Path:
        path = folder / f"clip-{i:03d}.mp4"
        if path.exists():
            return path
        tmp = path.with_suffix(".tmp.mp4")
        # Pink noise + a tone: LAME works about as hard as on real speech/music (a pure sine is much cheaper).
        _ff("-i", str(video),
            "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.2:sample_rate=44100:duration={seconds}:seed={i}",
            "-f", "lavfi", "-i", f"sine=frequency={220 + 20 * i}:sample_rate=44100:duration={seconds}",
            "-filter_complex", "[1:a][2:a]amix=inputs=2,aformat=channel_layouts=stereo[a]",
            "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-t", str(seconds), str(tmp))
        tmp.rename(path)
        return path

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(one, range(count)))


def make_sized_mp4(path: Path, size_bytes: int, resolution: str) -> Path:
    """A valid MP4 of about `size_bytes`: random-noise video (MPEG-4 part 2, q=1, cheap to encode) plus AAC audio."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    _ff("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", resolution, "-r", "25", "-i", "/dev/urandom",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-map", "0:v", "-map", "1:a",
        "-c:v", "mpeg4", "-q:v", "1", "-c:a", "aac", "-b:a", "96k", "-t", "3600", "-fs", str(size_bytes), str(tmp))
    tmp.rename(path)
    return path


# -- process accounting -------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own CPU seconds, reaped children's CPU seconds) of a process, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = raw.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def settle(max_wait: float, threshold: float = 0.15) -> str:
    """Wait (at most max_wait s) until the machine is idle (< threshold of all cores busy) for 2 s in a row."""
    if max_wait <= 0:
        return ""
    cores = os.cpu_count() or 1
    started = time.monotonic()
    quiet = 0
    busy = 0.0
    while quiet < 2 and time.monotonic() - started < max_wait:
        before = machine_busy()
        time.sleep(1.0)
        busy = (machine_busy() - before) / cores
        quiet = quiet + 1 if busy < threshold else 0
    return f"(waited {time.monotonic() - started:.0f} s for an idle machine: {busy:.0%} busy)"


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class CpuMeter:
    """CPU seconds spent by Azurite, the host (and its reaped ffmpeg children) and this process over a block."""

    pipe: LocalPipeline
    start: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        assert self.pipe.host is not None and self.pipe.azurite.proc is not None
        host, children = cpu_seconds(self.pipe.host.pid)
        azurite, _ = cpu_seconds(self.pipe.azurite.proc.pid)
        t = os.times()
        return {"azurite": azurite, "host (python)": host, "ffmpeg (host's children)": children,
                "bench uploader+poller": t.user + t.system, "machine": machine_busy()}

    def __enter__(self) -> CpuMeter:
        self.start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.spent = {k: end[k] - self.start[k] for k in end}

    def line(self, wall: float) -> str:
        ours = {k: v for k, v in self.spent.items() if k != "machine"}
        total = sum(ours.values())
        others = max(0.0, self.spent["machine"] - total)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in ours.items())
        available = wall * (os.cpu_count() or 1)
        return (f"    CPU s: {parts}; total {total:.1f} of {available:.1f} available; other processes on the machine "
                f"{others:.1f}")


# -- raw ffmpeg ---------------------------------------------------------------------------------------------------
def runner_argv() -> tuple[list[str], dict[str, str]]:
    """The task's own command line (the node runner: track choice, ffmpeg, completeness check), run here."""
    argv = shlex.split(ffmpeg.command_line())
    return [sys.executable, *argv[1:]], {**os.environ, "MP3PIPE_FFMPEG": find_ffmpeg()}


def raw_run(files: list[Path], workdir: Path, parallel: int, argv: list[str] | None = None,
            env: dict[str, str] | None = None) -> float:
    """The physical limit: ffmpeg with the task's argv on local files, `parallel` at a time; wall seconds.
    With `argv`: that command instead (the runner), on the same files."""
    argv = argv or ffmpeg.argv(program=find_ffmpeg())
    dirs = []
    for i, f in enumerate(files):
        d = workdir / f"{i:03d}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / ffmpeg.INPUT_FILE).symlink_to(f.resolve())
        dirs.append(d)

    def one(d: Path) -> None:
        subprocess.run(argv, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, env=env)

    started = time.perf_counter()
    before, busy = os.times(), machine_busy()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, dirs))
    after, busy = os.times(), machine_busy() - busy
    ours = after.children_user + after.children_system - before.children_user - before.children_system
    ours += after.user + after.system - before.user - before.system
    RAW_CPU.append(ours)
    RAW_OTHERS.append(max(0.0, busy - ours))
    return time.perf_counter() - started


# -- the pipeline -------------------------------------------------------------------------------------------------
def watch_outputs(service: BlobServiceClient, container: str, wanted: dict[str, str], timeout: float,
                  interval: float, stop_early: Callable[[], None] | None = None) -> dict[str, float]:
    """Poll the output container; returns wall time (time.time()) each wanted MP3 was first seen."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    cc = service.get_container_client(container)
    while len(seen) < len(wanted) and time.monotonic() < deadline:
        now = time.time()
        for b in cc.list_blobs():
            if b.name in wanted.values() and b.name not in seen:
                seen[b.name] = now
            elif b.name.endswith(".error.json") and b.name not in seen:
                raise RuntimeError(f"a conversion failed: {b.name}")
        if stop_early:
            stop_early()
        time.sleep(interval)
    if len(seen) < len(wanted):
        raise TimeoutError(f"{len(wanted) - len(seen)} MP3s did not land within {timeout}s")
    return seen


def task_times(state_dir: Path) -> list[tuple[float, float, float]]:
    """(created, started, ended) of every completed local Batch task, in time.time() seconds."""
    return [(t.created, t.start_time, t.end_time) for t in read_tasks(state_dir) if t.succeeded]


def task_failures(state_dir: Path) -> list[str]:
    """Ids of failed local Batch tasks."""
    return [t.id for t in read_tasks(state_dir) if t.failed]


def wait_log(path: Path, offset: int, needle: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(offset)
                if needle.encode() in fh.read():
                    return
        time.sleep(0.05)
    raise TimeoutError(f"{needle!r} not in {path} within {timeout}s")


@dataclass
class ThroughputRun:
    wall: float  # first drop started -> last MP3 seen
    uploaded_at: float  # seconds after start when the last drop/copy returned
    first_mp3: float
    cpu: str
    breakdown: str


def throughput(pipe: LocalPipeline, files: list[Path], prefix: str, *, server_copy: bool,
               drop_concurrency: int, profile: Path | None) -> ThroughputRun:
    """Drop all files at once; time until the last MP3 has landed.

    server_copy=False: upload each file from local disk into the input container (what a user does).
    server_copy=True: the files were staged in another container of the same Azurite beforehand; the clock runs
    from a server-side copy into the input container, so it measures the pipeline without the user's upload.
    """
    service = pipe.service
    names = {f"{prefix}/{i:03d}-{f.name}": f for i, f in enumerate(files)}
    wanted = {n: naming.output_name(n) for n in names}
    staging = service.get_container_client("bench-staging")
    if server_copy:
        storage = BlobStorage(service)
        storage.ensure_containers(staging.container_name)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda f: storage.upload_file(staging.container_name, f.name, f), set(files)))
    before = {r for r in task_times(pipe.state_dir)}
    spy = None
    if profile is not None:
        assert pipe.host is not None
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pipe.host.pid),
                                "-o", str(profile), "-f", "speedscope", "-r", "100"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    results: dict[str, float] = {}
    with CpuMeter(pipe) as cpu:
        t0 = time.time()

        def drop(item: tuple[str, Path]) -> None:
            name, path = item
            if server_copy:
                src = staging.get_blob_client(path.name).url
                dest = service.get_blob_client(pipe.input_container, name)
                copied = dest.start_copy_from_url(src, requires_sync=True)
                pipe.notifier.blob_created(dest.url, copied["etag"], path.stat().st_size, api="CopyBlob")
            else:
                pipe.drop(name, path)

        def dropper() -> None:
            with ThreadPoolExecutor(drop_concurrency) as pool:
                list(pool.map(drop, names.items()))
            results["uploaded"] = time.time()

        th = threading.Thread(target=dropper)
        th.start()
        # Watch the local gateway's task table, not the output container: a listing every half second costs
        # Azurite (on the same 2 cores) a visible share of the run. end_time is written right after the MP3's
        # block list committed; the MP3s themselves are checked once all tasks are done.
        deadline = time.monotonic() + 600
        while len(set(task_times(pipe.state_dir)) - before) < len(names):
            failed = task_failures(pipe.state_dir)
            if failed:
                raise RuntimeError(f"a conversion failed: {failed[0]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all of {len(names)} MP3s landed within 600 s")
            pipe.check_host()
            time.sleep(0.5)
        th.join()
    watch_outputs(service, pipe.output_container, wanted, timeout=60, interval=0.5, stop_early=pipe.check_host)
    if spy is not None:
        spy.send_signal(2)
        spy.wait(timeout=60)
    after = [r for r in task_times(pipe.state_dir) if r not in before]
    if len(after) != len(names):
        raise RuntimeError(f"{len(after)} new succeeded tasks for {len(names)} files")
    end = max(r[2] for r in after)
    wall = end - t0
    breakdown = ""
    if after:
        created = sorted(r[0] - t0 for r in after)
        run = [r[2] - r[1] for r in after]
        wait_q = [r[1] - r[0] for r in after]
        breakdown = (
            f"    tasks created {created[0]:.2f}..{created[-1]:.2f} s after t0; queued for a slot median "
            f"{statistics.median(wait_q):.2f} s; task run (download+ffmpeg+upload) median {statistics.median(run):.2f}"
            f" s, sum {sum(run):.1f} s (= {sum(run) / (wall * (os.cpu_count() or 1)):.0%} of slot time)"
        )
    return ThroughputRun(wall, results["uploaded"] - t0, min(r[2] for r in after) - t0, cpu.line(wall), breakdown)


@dataclass
class Paired:
    """Raw ffmpeg and the pipeline on the same files, run alternately: each ratio against the raw run just before
    it, so a machine that speeds up or slows down between runs (this one varies by 20%) moves both alike."""

    raws: list[float] = field(default_factory=list)
    raw_cpu: list[float] = field(default_factory=list)
    runs: list[ThroughputRun] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [run.wall / raw for run, raw in zip(self.runs, self.raws, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def typical(self) -> int:
        """Index of the pair with the median ratio (the one whose CPU breakdown is printed)."""
        ranked = sorted(range(len(self.ratios)), key=lambda i: self.ratios[i])
        return ranked[len(ranked) // 2]

    def lines(self, label: str) -> list[str]:
        i = self.typical
        run = self.runs[i]
        pairs = "; ".join(f"{raw:.2f} vs {r.wall:.2f} s" for raw, r in zip(self.raws, self.runs, strict=True))
        return [f"  {label}: ratio {self.ratio:.2f} (median of {len(self.runs)} pairs, raw vs pipeline: {pairs})",
                f"    median pair: raw {self.raws[i]:.2f} s (ffmpeg {self.raw_cpu[i]:.1f} CPU s), pipeline "
                f"{run.wall:.2f} s (last upload/copy returned at {run.uploaded_at:.2f} s, first MP3 at "
                f"{run.first_mp3:.2f} s)", run.cpu, run.breakdown]


def paired(files: list[Path], tmp: Path, pairs: int, wait_quiet: float, waits: list[str],
           run: Callable[[int], ThroughputRun]) -> Paired:
    """`pairs` times: raw ffmpeg on `files`, then `run(i)` on the same files, each after the machine went idle."""
    out = Paired()
    cores = os.cpu_count() or 1
    for i in range(pairs):
        waits.append(settle(wait_quiet))
        out.raws.append(raw_run(files, tmp / "raw", cores))
        out.raw_cpu.append(RAW_CPU[-1])
        waits.append(settle(wait_quiet))
        out.runs.append(run(i))
    return out


def latency_once(pipe: LocalPipeline, name: str, path: Path) -> tuple[float, float]:
    """(drop -> MP3 seen seconds, upload seconds) for one small file; polls the MP3 every 10 ms."""
    mp3 = pipe.service.get_blob_client(pipe.output_container, naming.output_name(name))
    t0 = time.perf_counter()
    pipe.drop(name, path)
    uploaded = time.perf_counter() - t0
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        try:
            mp3.get_blob_properties()
            return time.perf_counter() - t0, uploaded
        except ResourceNotFoundError:
            time.sleep(0.01)
    pipe.check_host()
    raise TimeoutError(f"{name} not converted within 60 s")


def memory_once(pipe: LocalPipeline, name: str, path: Path) -> dict[str, int]:
    """Fresh host process; drop one file; VmHWM of the host before and after the MP3 landed (kB)."""
    pipe.stop_host()
    offset = pipe.log_path.stat().st_size if pipe.log_path.exists() else 0
    pipe.start_host()
    assert pipe.host is not None
    wait_log(pipe.log_path, offset, '"event": "monitor"')
    pid = pipe.host.pid
    ready = status_kb(pid, "VmHWM")
    peak_rss = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_rss
        while not stop.is_set():
            try:
                peak_rss = max(peak_rss, status_kb(pid, "VmRSS"))
            except (OSError, KeyError):
                return
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    pipe.drop(name, path)
    up = time.perf_counter() - t0
    watch_outputs(pipe.service, pipe.output_container, {name: naming.output_name(name)}, timeout=600,
                  interval=0.1, stop_early=pipe.check_host)
    total = time.perf_counter() - t0
    stop.set()
    th.join()
    hwm = status_kb(pid, "VmHWM")
    return {"ready_hwm_kb": ready, "hwm_kb": hwm, "sampled_peak_rss_kb": peak_rss, "upload_ms": int(up * 1000),
            "total_ms": int(total * 1000)}


@dataclass
class WatchFigures:
    blobs: int
    host_cpu: float  # share of one core
    azurite_cpu: float
    window_s: float
    latency_s: float
    latencies: list[float]


def watch_cost(pipe: LocalPipeline, small: Path, total: int, window: float) -> tuple[WatchFigures, WatchFigures]:
    """Idle CPU of the host and Azurite (over `window` s, long enough to include the background listing's rests)
    and the small-file drop latency (through LocalPipeline.drop: upload + event), as the input container holds what
    earlier phases left (~135 blobs), then `total` blobs."""
    service = pipe.service
    cc = service.get_container_client(pipe.input_container)
    receipts = service.get_container_client("azure-webjobs-hosts")

    def idle_cpu(seconds: float) -> tuple[float, float]:
        assert pipe.host is not None and pipe.azurite.proc is not None
        h0, a0 = cpu_seconds(pipe.host.pid)[0], cpu_seconds(pipe.azurite.proc.pid)[0]
        time.sleep(seconds)
        h1, a1 = cpu_seconds(pipe.host.pid)[0], cpu_seconds(pipe.azurite.proc.pid)[0]
        return (h1 - h0) / seconds, (a1 - a0) / seconds

    def measure(tag: str, seconds: float) -> WatchFigures:
        n = sum(1 for _ in cc.list_blob_names())
        host, azurite = idle_cpu(seconds)
        lats = [latency_once(pipe, f"watch/{tag}-{i}.mp4", small)[0] for i in range(5)]
        return WatchFigures(n, host, azurite, seconds, statistics.median(lats), lats)

    before = measure("before", window / 3)
    extra = max(0, total - before.blobs - 5)
    # Blobs stored long ago: in the input container with the host's receipts (not MP4s, so nothing converts),
    # then a host restart, which reads the receipts, as after weeks of use.
    from devhost.host import HOST_ID, receipt_name

    def seed(i: int) -> None:
        name = f"old/{i:05d}.txt"
        etag = cc.get_blob_client(name).upload_blob(b"x", overwrite=True)["etag"]
        receipts.upload_blob(receipt_name(HOST_ID, "submit", pipe.input_container, etag, name), b"", overwrite=True)

    with ThreadPoolExecutor(16) as seeding:
        list(seeding.map(seed, range(extra)))
    pipe.stop_host()
    offset = pipe.log_path.stat().st_size
    pipe.start_host()
    wait_log(pipe.log_path, offset, "watching container", timeout=600)
    latency_once(pipe, "watch/warmup-after-restart.mp4", small)  # a fresh process: imports, first connections
    time.sleep(5.0)  # the listing is backing off
    return before, measure("after", window)


def storage_floor(pipe: LocalPipeline, files: list[Path], tmp: Path, cores: int) -> dict[str, float]:
    """What Azurite alone costs for the throughput's bytes, nothing else running: upload them (as the drop does)
    into a container no function watches, then GET them `cores` at a time with the gateway's own downloader."""
    from localbatch.transfers import download

    storage = BlobStorage(pipe.service)
    storage.ensure_containers("bench-floor")
    assert pipe.azurite.proc is not None
    az = pipe.azurite.proc.pid
    names = {f"{i:03d}.mp4": f for i, f in enumerate(files)}
    a0, t0, me0 = cpu_seconds(az)[0], time.perf_counter(), os.times()
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(lambda kv: storage.upload_file("bench-floor", kv[0], kv[1]), names.items()))
    up_wall, up_az = time.perf_counter() - t0, cpu_seconds(az)[0] - a0
    me1 = os.times()
    up_client = me1.user + me1.system - me0.user - me0.system
    urls = [storage.node_read_url("bench-floor", n, dt.timedelta(hours=1)) for n in names]
    a0, t0 = cpu_seconds(az)[0], time.perf_counter()

    def get(i_url: tuple[int, str]) -> None:
        dest = tmp / "floor" / f"{i_url[0]:03d}.mp4"
        download(i_url[1], dest)
        dest.unlink()

    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(get, enumerate(urls)))
    me2 = os.times()
    return {"upload_wall": up_wall, "upload_azurite_cpu": up_az, "upload_client_cpu": up_client,
            "get_wall": time.perf_counter() - t0, "get_azurite_cpu": cpu_seconds(az)[0] - a0,
            "get_client_cpu": me2.user + me2.system - me1.user - me1.system}


# -- Batch requests per timer run ---------------------------------------------------------------------------------
def requests_per_tick(connection: str, state_dir: Path) -> tuple[int, int, str]:
    """monitor_tick through AzureBatchGateway against the Batch REST stand-in, with 10 and 5,000 tasks."""
    from azure.storage.blob import BlobServiceClient as Bsc

    from shared.ports.deps import Deps
    from shared.settings import Settings
    from shared.usecases.monitor.cleanup import MAX_DELETES_PER_RUN
    from shared.usecases.monitor.tick import monitor_tick
    from tests.support.batch_standin import BatchStandin

    standin = BatchStandin().start()
    quiet = logging.getLogger("mp3pipe")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the failure reports' event lines
    try:
        env = {
            "AzureWebJobsStorage": connection, "BATCH_GATEWAY": "azure", "BATCH_ACCOUNT_URL": standin.url,
            "INPUT_CONTAINER": "bench-req-in", "OUTPUT_CONTAINER": "bench-req-out",
            "STATE_CONTAINER": "bench-req-state", "LOCAL_STATE_DIR": str(state_dir), "BATCH_MAX_NODES": "10",
        }
        settings = Settings.from_env(env)
        storage = BlobStorage(Bsc.from_connection_string(connection))
        storage.ensure_containers(settings.input_container, settings.output_container, settings.state_container)
        gw = standin.gateway(pool_id=settings.pool_id, job_id=settings.job_id, vm_size=settings.vm_size,
                             slots_per_node=settings.slots_per_node)
        deps = Deps(settings=settings, storage=storage, gateway=gw)
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        job = settings.job_id

        deletes = [0]

        def tick() -> tuple[int, Counter[str]]:
            standin.clear_requests()
            monitor_tick(deps)
            # Task deletes (cleanup of recorded outcomes) are bounded per run (cleanup.MAX_DELETES_PER_RUN) and
            # counted apart; the completed-task listing they need is one page per 1,000 tasks deleted.
            reqs = [r for r in standin.requests if not (r.method == "DELETE" and "/tasks/" in r.path)]
            deletes[0] = len(standin.requests) - len(reqs)
            return len(reqs), Counter(f"{r.method} {r.path.split('?')[0]}" for r in reqs)

        tick()  # creates the pool and the job (a one-off, like the first timer run in a new account)
        # Both jobs have finished, failed, queued and running tasks; old failures lie before the watermark.
        older = long_ago - dt.timedelta(days=1)
        standin.bulk_load(job, 2, prefix="smallfail", result="failure", at=older)
        tick()  # reports those two once and sets the failure watermark
        tick()  # and deletes them: their outcome is recorded
        standin.bulk_load(job, 7, prefix="small", at=long_ago)
        standin.bulk_load(job, 2, prefix="smallq", state="active")
        standin.bulk_load(job, 1, prefix="smallr", state="running")
        assert len(standin.tasks[job]) == 10
        n10, kinds10 = tick()
        deletes10 = deletes[0]  # the first run that sees the work: scales the pool
        steady10, _ = tick()
        standin.finish_resize(settings.pool_id)  # the nodes arrived
        left = len(standin.tasks[job])  # the ten, less the finished ones the two runs deleted
        standin.bulk_load(job, 5_000 - 1_000 - left, prefix="done", at=long_ago)
        standin.bulk_load(job, 300, prefix="oldfail", result="failure", at=older)
        standin.bulk_load(job, 640, prefix="queued", state="active")
        standin.bulk_load(job, 50, prefix="running", state="running")
        standin.bulk_load(job, 10, prefix="newfail", result="failure")
        assert len(standin.tasks[job]) == 5_000
        n5000, kinds5000 = tick()
        deletes5000 = deletes[0]  # sees more work (scales again) and 10 new failures (reports them)
        steady5000, _ = tick()
        gw.close()
        detail = (f"    10 tasks: {dict(kinds10)} (+{deletes10} task deletes)\n    5,000 tasks: {dict(kinds5000)} "
                  f"(+{deletes5000} task deletes; at most {MAX_DELETES_PER_RUN} a run)\n"
                  f"    the next (steady) run: {steady10} with 10 tasks, {steady5000} with 5,000; stand-in spec "
                  f"violations: {len(standin.validation_errors)}")
        return n10, n5000, detail
    finally:
        quiet.setLevel(level)
        standin.stop()


# -- main ---------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=40)
    p.add_argument("--seconds", type=float, default=60.0, help="audio (and video) length of each throughput file")
    p.add_argument("--latency-runs", type=int, default=5)
    p.add_argument("--pairs", type=int, default=3, help="raw/pipeline pairs per throughput figure (median taken)")
    p.add_argument("--big-mb", type=int, default=1024, help="size of the large MP4 of the memory check")
    p.add_argument("--drop-concurrency", type=int, default=0, help="uploads at once (0: all files at once)")
    p.add_argument("--media-dir", type=Path, help="generated media are cached here between runs",
                   default=Path(tempfile.gettempdir()) / f"mp3pipe-bench-media-{MEDIA_VERSION}")
    p.add_argument("--skip", default="",
                   help="comma-separated phases to skip: paced,copy,floor,memory,watch,requests")
    p.add_argument("--watch-blobs", type=int, default=20000, help="blobs stored in the input container for the "
                   "second idle-cost and latency check")
    p.add_argument("--idle-window", type=float, default=120.0,
                   help="seconds over which idle CPU is measured with --watch-blobs stored (a third of it before)")
    p.add_argument("--profile-dir", type=Path, help="py-spy the host during the stored-files run")
    p.add_argument("--wait-quiet", type=float, default=20,
                   help="before each timed phase wait up to this many seconds for other processes to go quiet")
    p.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    p.add_argument("--smoke", action="store_true", help="every phase on a few tiny files, once (for the test suite): "
                   "the figures mean nothing, the run shows the benchmark still works")
    args = p.parse_args(argv)
    if args.smoke:
        args.files, args.seconds, args.latency_runs, args.pairs, args.big_mb = 2, 2.0, 1, 1, 2
        args.watch_blobs, args.idle_window, args.wait_quiet = 30, 3.0, 0
        args.skip = ",".join(filter(None, (args.skip, "paced")))
    skip = set(filter(None, args.skip.split(",")))
    cores = os.cpu_count() or 1
    t_start = time.perf_counter()
    say(f"mp3pipe pipeline benchmark: {cores} cores, load average {os.getloadavg()[0]:.2f}, ffmpeg {find_ffmpeg()}")

    media = args.media_dir
    t = time.perf_counter()
    clips = make_clips(media / f"clips-{args.seconds:g}s", args.files, args.seconds)
    files = list(clips)
    with_sample = SAMPLE.exists() and not args.smoke
    if with_sample:
        files.append(SAMPLE)
    small = media / "small.mp4"
    if not small.exists():
        make_mp4(small, 5.0, size="320x240")
    big = make_sized_mp4(media / f"big-{args.big_mb}mb.mp4", args.big_mb * 1024 * 1024, "1280x720")
    one_mb = make_sized_mp4(media / "small-1mb.mp4", 1024 * 1024, "160x120")
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    say(f"media ({time.perf_counter() - t:.1f} s, cached in {media}): {len(clips)} x {args.seconds:g} s 720p H.264 + "
        f"stereo AAC{' + ' + SAMPLE.name if with_sample else ''} = {len(files)} files, {total_mb:.0f} MB; "
        f"small {small.stat().st_size / 1e3:.0f} kB; memory check {one_mb.stat().st_size / 1e6:.1f} MB and "
        f"{big.stat().st_size / 1e6:.0f} MB")

    tmp = Path(tempfile.mkdtemp(prefix="mp3pipe-bench-"))
    try:
        # 1a. the physical limit (a first run warms the page cache; the pairs below hold the measured ones)
        waits = [settle(args.wait_quiet)]
        raw_run(files, tmp / "raw", cores)
        raw_lat = [raw_run([small], tmp / "raw-small", 1) for _ in range(args.latency_runs)]
        runner_cmd, runner_env = runner_argv()

        pipe = LocalPipeline(tmp / "state", log_name="host.log")
        pipe.start()
        try:
            latency_once(pipe, "warmup/w.mp4", small)  # host imports, pool and job creation
            conc = args.drop_concurrency or len(files)
            profile = None
            if args.profile_dir:
                args.profile_dir.mkdir(parents=True, exist_ok=True)
                profile = args.profile_dir / "host-stored-files.speedscope.json"
            # 1b. throughput: drop from local disk, paced drop, server-side copy of stored files; each paired
            def drops(prefix: str, **kwargs: Any) -> Callable[[int], ThroughputRun]:
                return lambda i: throughput(pipe, files, f"{prefix}{i}", **kwargs)

            tp = paired(files, tmp, args.pairs, args.wait_quiet, waits,
                        drops("tp", server_copy=False, drop_concurrency=conc, profile=None))
            tpp = None
            if "paced" not in skip:
                tpp = paired(files, tmp, 1, args.wait_quiet, waits,
                             drops("tpp", server_copy=False, drop_concurrency=4, profile=None))
            tpc = None
            if "copy" not in skip:
                tpc = paired(files, tmp, args.pairs, args.wait_quiet, waits,
                             drops("tpc", server_copy=True, drop_concurrency=conc, profile=profile))

            # 1c. the runner alone on local files (no storage, no host), paired with bare ffmpeg
            def runner_alone(_: int) -> ThroughputRun:
                wall = raw_run(files, tmp / "runner", cores, runner_cmd, runner_env)
                return ThroughputRun(wall, 0.0, 0.0, f"    CPU s: runner + ffmpeg {RAW_CPU[-1]:.1f}", "")

            runner = paired(files, tmp, args.pairs, args.wait_quiet, waits, runner_alone)
            # 2. latency
            waits.append(settle(args.wait_quiet))
            lat = [latency_once(pipe, f"lat/{i}.mp4", small) for i in range(args.latency_runs)]
            sample_lat = latency_once(pipe, "lat/sample.mp4", SAMPLE) if with_sample else None
            # 3. memory
            mem_small = mem_big = None
            if "memory" not in skip:
                mem_small = memory_once(pipe, "mem/one-mb.mp4", one_mb)
                mem_big = memory_once(pipe, "mem/big.mp4", big)
            watch = None
            if "watch" not in skip:
                waits.append(settle(args.wait_quiet))
                watch = watch_cost(pipe, small, args.watch_blobs, args.idle_window)
            floor = None
            if "floor" not in skip:
                waits.append(settle(args.wait_quiet))
                floor = storage_floor(pipe, files, tmp, cores)
            host_log = pipe.log_path
            pipe.stop_host()
            # 4. requests per timer run (Batch REST stand-in; storage on the same Azurite)
            req = None
            if "requests" not in skip:
                req = requests_per_tick(pipe.azurite.connection_string, tmp / "req-state")
        finally:
            pipe.stop()

        say()
        say(f"1. throughput: {len(files)} files ({total_mb:.0f} MB), dropped {conc} at a time; raw = ffmpeg with the "
            f"task's argv on local files, {cores} at a time")
        for line in tp.lines("from the drop (upload from local disk into Azurite included)"):
            say(line)
        if tpp:
            for line in tpp.lines("from the drop, uploading 4 files at a time instead"):
                say(line)
        if tpc:
            for line in tpc.lines("from a server-side copy of already-stored files into the input container"):
                say(line)
        for line in runner.lines("the task's runner alone on local files (track choice + ffmpeg + completeness "
                                 "check; no storage, no host)")[:3]:
            say(line)
        raw_tp = statistics.median(tp.raws + (tpc.raws if tpc else []))
        ratio_stored = tpc.ratio if tpc else float("nan")
        throughput_ratio = tp.ratio
        runner_ratio = runner.ratio
        say(f"  ratio (stored files) = {ratio_stored:.2f}  (target <= 1.20; before: {BEFORE['ratio_stored']:.2f})")
        say(f"  ratio (from the drop) = {throughput_ratio:.2f}  (target <= 1.35; before: "
            f"{BEFORE['ratio_drop']:.2f})")
        say(f"  ratio (the runner alone, no storage) = {runner_ratio:.2f}")

        lat_med = statistics.median(x for x, _ in lat)
        raw_lat_med = statistics.median(raw_lat)
        say(f"2. latency: small MP4 ({small.stat().st_size / 1e3:.0f} kB, 5 s), median of {args.latency_runs}")
        say(f"  pipeline drop -> MP3 landed: {lat_med:.3f} s (runs {', '.join(f'{x:.3f}' for x, _ in lat)}; "
            f"upload part median {statistics.median(u for _, u in lat):.3f} s)")
        say(f"  raw ffmpeg (process start included): {raw_lat_med:.3f} s")
        latency_delta = lat_med - raw_lat_med
        say(f"  difference = {latency_delta:.3f} s  (target <= 1.0 s; before: drop -> MP3 {BEFORE['latency']:.3f} s)")
        if sample_lat:
            say(f"  {SAMPLE.name} ({SAMPLE.stat().st_size / 1e6:.1f} MB): drop -> MP3 {sample_lat[0]:.3f} s, "
                f"raw ffmpeg {raw_run([SAMPLE], tmp / 'raw-sample', 1):.3f} s")

        memory_ratio = float("nan")
        if mem_small and mem_big:
            memory_ratio = mem_big["hwm_kb"] / mem_small["hwm_kb"]
            say("3. memory of the host process (python -m devhost.host, local gateway in-process), fresh per file")
            for label, m, f in (("1 MB", mem_small, one_mb), ("1 GB", mem_big, big)):
                grew = (m["hwm_kb"] - m["ready_hwm_kb"]) / 1024
                say(f"  {label} MP4 ({f.stat().st_size / 1e6:.1f} MB): VmHWM {m['hwm_kb'] / 1024:.1f} MiB "
                    f"(ready {m['ready_hwm_kb'] / 1024:.1f} MiB, +{grew:.1f} MiB while converting); upload "
                    f"{m['upload_ms'] / 1000:.1f} s, drop -> MP3 {m['total_ms'] / 1000:.1f} s")
            say(f"  ratio = {memory_ratio:.2f}  (target: about 1)")

        requests_10 = requests_5000 = -1
        if req:
            requests_10, requests_5000, detail = req
            say(f"4. Batch requests per timer run (monitor_tick, AzureBatchGateway -> REST stand-in): "
                f"10 tasks {requests_10}, 5,000 tasks {requests_5000}")
            say(detail)
        idle_20000 = latency_20000 = float("nan")
        if watch:
            say("5. idle cost and small-file latency as blobs pile up (events drive the trigger; a background listing "
                "that backs off finds other tools' uploads)")
            for w, old in zip(watch, (BEFORE["idle_135"], BEFORE["idle_2135"]), strict=True):
                say(f"  {w.blobs} blobs stored: idle over {w.window_s:.0f} s: host {w.host_cpu:.1%} of a core, Azurite "
                    f"{w.azurite_cpu:.1%}; small file drop -> MP3 median {w.latency_s:.3f} s (runs "
                    f"{', '.join(f'{x:.3f}' for x in w.latencies)})  (before: {old})")
            idle_20000, latency_20000 = watch[1].host_cpu, watch[1].latency_s
            say("  targets with 20,000 stored: idle host CPU <= 3% of a core, latency <= 0.5 s")
        floor_stored = floor_drop = float("nan")
        if floor:
            f = floor
            say(f"6. the floor: Azurite alone for the same {total_mb:.0f} MB, nothing else running")
            say(f"  upload (as the drop does): {f['upload_wall']:.2f} s, Azurite {f['upload_azurite_cpu']:.1f} CPU s, "
                f"uploader {f['upload_client_cpu']:.1f} CPU s")
            say(f"  GET {cores} at a time (the gateway's downloader): {f['get_wall']:.2f} s, Azurite "
                f"{f['get_azurite_cpu']:.1f} CPU s, downloader {f['get_client_cpu']:.1f} CPU s")
            # CPU-bound on `cores` cores: the conversions' CPU plus what storage alone needs for the same bytes.
            # The raw run's wall already holds ffmpeg's CPU (and whatever else the machine did meanwhile); storage's
            # CPU for the same bytes comes on top of it, on the same cores.
            stored_cpu = f["get_azurite_cpu"] + f["get_client_cpu"]
            floor_stored = 1 + stored_cpu / cores / raw_tp
            floor_drop = 1 + (stored_cpu + f["upload_azurite_cpu"] + f["upload_client_cpu"]) / cores / raw_tp
            say(f"  floor ratio (raw wall + storage's CPU over {cores} cores, against raw): stored files "
                f"{floor_stored:.2f}, from the drop {floor_drop:.2f}")
            say(f"  with the runner's own cost on top (its ratio alone - 1): stored files "
                f"{floor_stored + runner_ratio - 1:.2f}, from the drop {floor_drop + runner_ratio - 1:.2f}")

        say(f"idle waits before the timed phases: {' '.join(w for w in waits if w) or 'none'}")
        if args.keep:
            say(f"host log: {host_log}")
        say(f"benchmark wall time {time.perf_counter() - t_start:.0f} s")
        say(f"throughput_ratio={throughput_ratio:.2f} latency_delta_s={latency_delta:.2f} "
            f"memory_ratio={memory_ratio:.2f} requests_10={requests_10} requests_5000={requests_5000} "
            f"throughput_ratio_stored={ratio_stored:.2f} idle_cpu_20000={idle_20000:.3f} "
            f"latency_20000_s={latency_20000:.3f} floor_ratio_stored={floor_stored:.2f} "
            f"floor_ratio_drop={floor_drop:.2f} runner_ratio={runner_ratio:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
