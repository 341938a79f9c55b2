"""Many small files through `make run` (python -m devhost.run): wall time against raw ffmpeg, host memory over time,
storage requests per file by kind (Azurite's access log) and CPU per file by component (/proc accounting).

`--baseline REF` runs the same files through another commit's `make run` first (same machine, same run), so the
figures before and after a change sit side by side.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from devhost.azurite import ACCESS_LOG_SETTING, REPO
from devhost.media import make_mp4
from localbatch.process import find_ffmpeg
from shared.domain import ffmpeg
from shared.settings import DEFAULTS

CLK_TCK = os.sysconf("SC_CLK_TCK")
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<url>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def say(text: str = "") -> None:
    print(text, flush=True)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def raw_run(files: list[Path], work: Path, parallel: int) -> tuple[float, float]:
    """ffmpeg with the task's argv on the local files, `parallel` at a time; (wall seconds, CPU seconds)."""
    argv = ffmpeg.argv(program=find_ffmpeg())
    dirs = []
    for i, f in enumerate(files):
        d = work / f"{i:05d}"
        d.mkdir(parents=True)
        (d / ffmpeg.INPUT_FILE).symlink_to(f.resolve())
        dirs.append(d)
    t0, cpu0 = time.perf_counter(), children_cpu()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda d: subprocess.run(argv, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, check=True), dirs))
    return time.perf_counter() - t0, children_cpu() - cpu0


def find_pids(state: Path) -> dict[str, int]:
    """The `python -m devhost.host` whose LOCAL_STATE_DIR is `state`, and the Azurite keeping its data there."""
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            env = Path(f"/proc/{entry}/environ").read_bytes() if b"devhost.host" in cmd else b""
        except OSError:
            continue
        if b"devhost.host" in cmd and f"LOCAL_STATE_DIR={state}".encode() in env:
            found["host"] = int(entry)
        elif b"azurite" in cmd and str(state / "azurite").encode() in cmd:
            found["azurite"] = int(entry)
    return found


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(own CPU seconds, reaped children's CPU seconds) of a process, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(x) for x in raw.rsplit(")", 1)[1].split()[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def request_kinds(log: Path, roles: dict[str, str] | None = None) -> Counter[str]:
    """Azurite's access log -> requests by kind: method, container's role, what part of it (and the query)."""
    roles = roles or {DEFAULTS["INPUT_CONTAINER"]: "input", DEFAULTS["OUTPUT_CONTAINER"]: "output",
                      DEFAULTS["STATE_CONTAINER"]: "state", "azure-webjobs-hosts": "host receipts"}
    kinds: Counter[str] = Counter()
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return kinds
    for m in ACCESS_LINE.finditer(text):
        url = urlsplit(m["url"])
        parts = unquote(url.path).split("/")[2:]  # /devstoreaccount1/<container>/<blob>
        query = parse_qs(url.query)
        container = roles.get(parts[0], parts[0]) if parts else "(account)"
        blob = "/".join(parts[1:])
        what = ("container" if not blob else "monitor state" if blob.startswith("monitor")
                else "file record" if blob.startswith("files/") else "blob")
        comp = "".join(f" {k}={v[0]}" for k, v in sorted(query.items()) if k in ("comp", "restype"))
        status = m["status"]
        kinds[f"{m['method']} {container} {what}{comp} -> {status}"] += 1
    return kinds


@dataclass
class Pipeline:
    """One `make run` over the files: wall time, outcomes, memory, CPU by component, requests by kind."""

    label: str
    wall: float = 0.0
    code: int = -1
    converted: int = -1
    failed: int = -1
    pending: int = -1
    progress: list[str] = field(default_factory=list)
    samples: list[tuple[float, float]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def baseline_tree(ref: str, dest: Path) -> Path:
    """Another commit's files (git archive) beside this checkout's node_modules, Azurite's access log on."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    (dest / "node_modules").symlink_to(REPO / "node_modules")
    azurite = dest / "devhost" / "azurite.py"
    azurite.write_text(azurite.read_text().replace('"--silent",', ""))  # older code: no access-log switch
    return dest


def run_pipeline(label: str, repo: Path, inputs: Path, tmp: Path, env: dict[str, str] | None = None) -> Pipeline:
    """`python -m devhost.run` of `repo` over the inputs, sampled every 0.5 s (memory, CPU of each process);
    `env`: settings for that run (e.g. LOCAL_TASK_SLOTS)."""
    result = Pipeline(label)
    state = tmp / "state"
    done = threading.Event()
    t0 = time.monotonic()
    run: subprocess.Popen[str] | None = None
    last: dict[str, tuple[float, float]] = {}

    def sample() -> None:
        pids: dict[str, int] = {}
        while not done.wait(0.5):
            if len(pids) < 3:  # the host and Azurite appear after make run has started
                pids = find_pids(state)
                if run is not None:
                    pids["make run"] = run.pid
            for name, pid in pids.items():
                cpu = cpu_seconds(pid)
                if cpu is not None:
                    last[name] = cpu
            mib = rss_mib(pids["host"]) if "host" in pids else None
            if mib is not None:
                result.samples.append((time.monotonic() - t0, mib))

    cpu0 = children_cpu()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    run = subprocess.Popen([sys.executable, "-m", "devhost.run", "--input", str(inputs), "--output",
                            str(tmp / "out"), "--state", str(state), "--timeout", "3600"], cwd=repo,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "COLUMNS": "160", ACCESS_LOG_SETTING: "1", **(env or {})})
    out, _ = run.communicate()
    result.wall = time.monotonic() - t0
    result.code = run.returncode
    done.set()
    th.join()
    total = children_cpu() - cpu0
    host, tasks = last.get("host", (0.0, 0.0))
    azurite = last.get("azurite", (0.0, 0.0))[0]
    result.cpu = {"tasks (runner + ffmpeg)": tasks, "host's Python": host, "Azurite": azurite}
    result.cpu["make run (drop, events, waiting, fetch)"] = max(0.0, total - tasks - host - azurite)
    summary = re.search(r"converted=(\d+) failed=(\d+) pending=(\d+)", out)
    result.converted, result.failed, result.pending = (int(x) for x in summary.groups()) if summary else (-1, -1, -1)
    result.progress = [line.strip() for line in out.splitlines() if line.startswith(("dropped", "finished"))]
    if result.code != 0:
        say(out[-3000:])
    result.requests = request_kinds(state / "azurite.log")
    return result


def report(r: Pipeline, files: int, raw: float, raw_cpu: float) -> None:
    say(f"{r.label}: make run (python -m devhost.run) {r.wall:.1f} s, exit {r.code}: converted {r.converted}, "
        f"failed {r.failed}, pending {r.pending}")
    for line in r.progress:
        say(f"  progress: {line}")
    if r.samples:
        marks = [r.samples[min(len(r.samples) - 1, int(len(r.samples) * q))] for q in (0.1, 0.25, 0.5, 0.75)]
        marks.append(r.samples[-1])
        say("  host memory (VmRSS) over the run: " + ", ".join(f"{t:.0f} s {m:.0f} MiB" for t, m in marks))
    cpu = dict(r.cpu)
    tasks = cpu.pop("tasks (runner + ffmpeg)")
    parts = {"ffmpeg (raw run's CPU)": raw_cpu, "runner (tasks less raw ffmpeg)": max(0.0, tasks - raw_cpu), **cpu}
    say(f"  CPU per file, ms (/proc; {sum(parts.values()):.1f} CPU-s in all):")
    for name, seconds in parts.items():
        say(f"    {name:<42} {seconds / files * 1000:7.1f}")
    say(f"  storage requests per file (Azurite's access log; {sum(r.requests.values())} in all):")
    for kind, n in sorted(r.requests.items(), key=lambda kv: -kv[1]):
        say(f"    {kind:<60} {n / files:7.3f}")


def azure_requests(files: int, tmp: Path) -> tuple[Counter[str], Counter[str]]:
    """Requests per file with the Azure Batch adapter, drop to clean-up: each file uploaded and submitted through the
    real submit use-case against Azurite and the Batch REST stand-in, its task completed as a success (Batch
    uploads the MP3), then monitor runs until the job is empty again. (storage kinds, Batch kinds), totals."""
    import datetime as dt
    import logging

    from azure.storage.blob import BlobServiceClient

    from devhost.azurite import Azurite
    from shared.adapters.storage import BlobStorage
    from shared.ports.deps import Deps
    from shared.settings import Settings
    from shared.usecases.monitor.tick import monitor_tick
    from shared.usecases.submit import submit_blob
    from tests.support.batch_standin import BatchStandin

    quiet = logging.getLogger("mp3pipe")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    log = tmp / "azurite.log"
    with Azurite(tmp / "azurite", log_file=log, access_log=True) as azurite:
        standin = BatchStandin().start()
        try:
            settings = Settings.from_env({
                "AzureWebJobsStorage": azurite.connection_string, "BATCH_GATEWAY": "azure",
                "BATCH_ACCOUNT_URL": standin.url, "LOCAL_STATE_DIR": str(tmp / "state"), "BATCH_MAX_NODES": "10"})
            storage = BlobStorage(BlobServiceClient.from_connection_string(azurite.connection_string))
            storage.ensure_containers(settings.input_container, settings.output_container, settings.state_container)
            gateway = standin.gateway(pool_id=settings.pool_id, job_id=settings.job_id, vm_size=settings.vm_size,
                                      slots_per_node=settings.slots_per_node)
            deps = Deps(settings=settings, storage=storage, gateway=gateway)
            monitor_tick(deps)  # the pool and the job, once per account: not a file's cost
            standin.clear_requests()
            offset = log.stat().st_size
            long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
            for i in range(files):
                name = f"f{i // 100:03d}/clip-{i:05d}.mp4"
                storage.upload_bytes(settings.input_container, name, b"an mp4")
                result = submit_blob(storage.blob(settings.input_container, name), deps)
                assert result.status == "submitted" and result.task_id, result
                storage.service.get_blob_client(settings.input_container, name).download_blob().readall()  # the node
                storage.upload_bytes(settings.output_container, name[:-1] + "3", b"an mp3")  # Batch's upload
                standin.set_task(settings.job_id, result.task_id, result="success", exit_code=0, at=long_ago)
            for _ in range(files // 100 + 3):
                monitor_tick(deps)
                if not standin.tasks[settings.job_id]:
                    break
            gateway.close()
            batch = Counter(f"{r.method} {re.sub(r'/tasks/[^/?]+', '/tasks/<id>', r.path.split('?')[0])} -> "
                            f"{r.status}" for r in standin.requests)
            with open(log, "rb") as fh:
                fh.seek(offset)
                tail = tmp / "azurite.files.log"
                tail.write_bytes(fh.read())
        finally:
            quiet.setLevel(level)
            standin.stop()
    return request_kinds(tail, {settings.input_container: "input", settings.output_container: "output",
                                settings.state_container: "state"}), batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each small MP4")
    p.add_argument("--baseline", metavar="REF", help="also run this commit's make run first (e.g. main)")
    p.add_argument("--slots", type=int, action="append", default=[], metavar="N",
                   help="also run this checkout with LOCAL_TASK_SLOTS=N (repeatable), after the default run")
    p.add_argument("--repeat", type=int, default=1, help="rounds (raw, then each run); medians reported")
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
        configs: list[tuple[str, str, Path, dict[str, str]]] = []  # (key, label, repository, settings)
        if args.baseline:
            configs.append(("baseline", f"baseline {args.baseline}",
                            baseline_tree(args.baseline, tmp / "baseline"), {}))
        configs.append(("now", "this checkout", REPO, {}))
        configs += [(f"slots_{n}", f"this checkout, LOCAL_TASK_SLOTS={n}", REPO, {"LOCAL_TASK_SLOTS": str(n)})
                    for n in args.slots]
        # Rounds: a raw run, then each configuration; each ratio against its round's raw run (this machine's speed
        # drifts by 20% between minutes), the median round of each configuration reported.
        raws: list[tuple[float, float]] = []
        runs: dict[str, list[Pipeline]] = {key: [] for key, *_ in configs}
        for r in range(args.repeat):
            raws.append(raw_run(files, tmp / f"raw-{r}", cores))
            say(f"round {r + 1}: raw ffmpeg, {cores} at a time: {raws[-1][0]:.1f} s "
                f"({raws[-1][1] / args.files * 1000:.1f} ms CPU per file)")
            for key, label, repo, env in configs:
                run = run_pipeline(label, repo, inputs, tmp / f"run-{key}-{r}", env)
                runs[key].append(run)
                say(f"  {label}: {run.wall:.1f} s, ratio {run.wall / raws[-1][0]:.2f}, exit {run.code}")

        ratios = {key: [run.wall / raw for run, (raw, _) in zip(done, raws, strict=True)]
                  for key, done in runs.items()}

        def median_run(key: str) -> tuple[Pipeline, float, float]:
            """(the median round's run, its raw wall, its ratio): one round, so the line's figures agree."""
            i = sorted(range(args.repeat), key=lambda k: ratios[key][k])[args.repeat // 2]
            return runs[key][i], raws[i][0], ratios[key][i]

        chosen = {key: median_run(key) for key, *_ in configs}
        raw_cpu = statistics.median(c for _, c in raws)
        for key, label, *_ in configs:
            run, raw, _ = chosen[key]
            say(f"{label}, median of {args.repeat} round(s): ratios " + ", ".join(f"{x:.2f}" for x in ratios[key]))
            report(run, args.files, raw, raw_cpu)
        now, raw, ratio = chosen["now"]
        before = chosen["baseline"][0] if args.baseline else None
        azure_files = 5 if args.smoke else 200
        storage_kinds, batch_kinds = azure_requests(azure_files, tmp / "azure")
        say(f"Azure Batch adapter (REST stand-in), {azure_files} files, drop to clean-up, requests per file:")
        for label, kinds in (("storage", storage_kinds), ("Batch", batch_kinds)):
            for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
                say(f"    {label:<8} {kind:<60} {n / azure_files:7.3f}")
        first = now.samples[len(now.samples) // 4][1] if now.samples else float("nan")
        last = now.samples[-1][1] if now.samples else float("nan")
        per_file = sum(now.requests.values()) / args.files
        base = (f" baseline_wall_s={before.wall:.1f} baseline_ratio={chosen['baseline'][2]:.2f} "
                f"baseline_requests_per_file={sum(before.requests.values()) / args.files:.2f}") if before else ""
        say(f"many_files={args.files} wall_s={now.wall:.1f} raw_s={raw:.1f} ratio={ratio:.2f} "
            f"outcomes={now.converted + now.failed} host_rss_quarter_mib={first:.0f} host_rss_end_mib={last:.0f} "
            f"requests_per_file={per_file:.2f} "
            f"azure_storage_requests_per_file={sum(storage_kinds.values()) / azure_files:.2f} "
            f"batch_requests_per_file={sum(batch_kinds.values()) / azure_files:.2f}{base}"
            + "".join(f" slots_{n}_wall_s={chosen[f'slots_{n}'][0].wall:.1f} "
                      f"slots_{n}_ratio={chosen[f'slots_{n}'][2]:.2f}" for n in args.slots))
        return 0 if all(run.code == 0 for done in runs.values() for run in done) else 1
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
