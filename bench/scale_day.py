"""A day of 1,000,000 small files on Azure, on paper: requests per file, what they cost, the pool it needs, and which
part stops keeping up (job size, reconcile coverage, node disks), today's constants against the fixes proposed in
docs/many-files-on-azure.md.

Run: .venv/bin/python -m bench.scale_day   (deterministic; about a minute; prints figures, asserts nothing)
     `--smoke`: one simulated hour, fewer probes (for the test suite; its figures differ from the day's)

The model is tests/support/sim/throughput.py; the code's constants (DELETE_BATCH, RECONCILE_BATCH, the schedules,
the task retention the deployment sets, ...) are imported there, in one place. Prices and per-task times are assumptions
stated below and in the doc, with their sources; nothing here talks to Azure.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from tests.support.sim.day_pool import DayPool, run_day
from tests.support.sim.throughput import (
    BEFORE_DELETE_BOUND,
    BEFORE_RETENTION_AZURE_S,
    CODE,
    Load,
    Outcome,
    Policy,
    Pool,
    nodes_for,
    simulate,
)
from tests.support.sim.workloads import GAP_MEDIAN_S, RUNNER_S

# --- Prices (USD, pay-as-you-go list prices, East US; the same table as docs/deploy-azure.md "What it costs"). ----
PRICE_WRITE_10K = 0.05  # Blob Hot LRS write operations (PutBlob, PutBlock, PutBlockList), per 10,000
PRICE_LIST_10K = 0.05  # Blob Hot LRS list and create-container operations, per 10,000 (billed like writes)
PRICE_READ_10K = 0.004  # Blob Hot LRS read and "all other" operations (GetBlob, GetBlobProperties), per 10,000
PRICE_EVENTGRID_M = 0.60  # Event Grid basic, per million operations
PRICE_FUNC_EXEC_M = 0.40  # Flex Consumption on-demand, per million executions
PRICE_FUNC_GBS = 0.000026  # Flex Consumption on-demand, per GB-s of instance memory while executing
PRICE_LOGS_GB = 2.30  # Log Analytics (Analytics logs) per GB ingested
PRICE_D2S_V3_H = 0.096  # standard_d2s_v3 Linux, dedicated, per hour (Batch adds no charge)
SPOT_SHARE_OF_PRICE = 0.20  # Spot: an assumption (~80% off; it varies by region and hour: check the Retail Prices API)

# --- Per-task times on a node (seconds of slot time) -----------------------------------------------------------
FFMPEG_S = 0.027  # ffmpeg on a 2 s voice memo: 27.1 s for 1,000 files (bench/many_files.py)
DOWNLOAD_S = 0.030  # Batch agent GETs a 62 kB resource file in-region (assumption: one round trip + transfer)
UPLOAD_S = 0.050  # Batch agent PUTs a ~50 kB output file (assumption)
BATCH_OVERHEAD_S = (0.5, GAP_MEDIAN_S, 2.0)  # Batch's own per-task gap: not published; its range and sources in
# tests/support/sim/workloads.py
FUNC_MEMORY_GB = 2.0  # infra/modules/functionapp.bicep instanceMemoryMB: 2048
SUBMIT_S = 0.15  # one submit on Azure: GetBlobProperties + record GET + PUT + add_task (assumption)
LOG_BYTES_PER_WRITE = 1300  # a StorageBlobLogs row (docs/deploy-azure.md: ~0.7 GB for ~540,000 writes)
LOG_BYTES_PER_FILE_APP = 3000  # the submit's request row + its event trace + host traces (assumption)
TEMP_DISK_GIB = 16  # standard_d2s_v3 temporary disk, where Batch keeps task folders (/mnt/batch/tasks)


@dataclass(frozen=True)
class Row:
    step: str
    request: str
    kind: str  # "write" | "read" | "list"
    per_file: float
    who: str

    @property
    def usd_per_million(self) -> float:
        price = {"write": PRICE_WRITE_10K, "read": PRICE_READ_10K, "list": PRICE_LIST_10K}[self.kind]
        return self.per_file * 1_000_000 / 10_000 * price


def storage_rows(files: float, out: Outcome, monitor_s: int, reconcile_s: int, horizon_s: int) -> list[Row]:
    """Every storage request a file causes from drop to MP3, today, on the success path of a first drop."""
    runs_m = horizon_s / monitor_s
    runs_r = horizon_s / reconcile_s
    checked = out.reconcile_checked / files
    return [
        Row("drop", "PutBlob input (62 kB, one request)", "write", 1, "the user"),
        Row("submit", "GetBlobProperties input (ETag, Last-Modified)", "read", 1, "submit_blob"),
        Row("submit", "GetBlob record (404 on a first drop)", "read", 1, "FileRecords.claim -> get"),
        Row("submit", "PutBlob record, If-None-Match: *", "write", 1, "FileRecords.claim -> put_if"),
        Row("node", "GetBlob input (resource file)", "read", 1, "Batch node agent"),
        Row("node", "PutBlob output.mp3 (output file)", "write", 1, "Batch node agent"),
        Row("monitor", "GetBlob + PutBlob monitor/state.json, per run", "read", runs_m / files, "monitor_tick"),
        Row("monitor", "(the PutBlob of that pair)", "write", runs_m / files, "monitor_tick"),
        Row("monitor", "GetBlob record (its outcome recorded)", "read", 1, "record_outcome -> FileRecords.apply"),
        Row("monitor", "PutBlob record, If-Match (converted)", "write", 1, "record_outcome -> FileRecords.apply"),
        Row("reconcile", "List Blobs input, one page per run", "list", runs_r / files, "reconcile"),
        Row("reconcile", "GetBlob record, per blob looked at", "read", checked, "reconcile -> FileRecords.get"),
        Row("reconcile", "GetBlobProperties output, per blob looked at", "read", checked, "file_life.standing"),
        Row("reconcile", "GetBlob + PutBlob reconcile/state.json, per run", "read", runs_r / files, "reconcile"),
        Row("reconcile", "(the PutBlob of that pair)", "write", runs_r / files, "reconcile"),
    ]


def fixed_rows(files: float, out: Outcome, monitor_s: int, reconcile_s: int, horizon_s: int) -> list[Row]:
    """The same file after the fixes: reconcile lists inputs and outputs side by side (5,000 a page) and GETs a
    record only for an input with no MP3 yet; the user's, submit's and node's requests stay (they are the work)."""
    runs_r = horizon_s / reconcile_s
    pages = 2 * out.reconcile_checked / CODE.reconcile_page
    in_flight = 0.001  # share of looked-at inputs with no MP3 yet (seconds in flight / a pass): an upper bound
    rows = [r for r in storage_rows(files, out, monitor_s, reconcile_s, horizon_s)[:10]]
    return rows + [
        Row("reconcile", "List Blobs input + output, 5,000 a page", "list", (pages + runs_r) / files, "reconcile"),
        Row("reconcile", "GetBlob record, inputs with no MP3 only", "read", in_flight * out.reconcile_checked / files,
            "reconcile"),
        Row("reconcile", "GetBlob + PutBlob reconcile/state.json, per run", "read", runs_r / files, "reconcile"),
        Row("reconcile", "(the PutBlob of that pair)", "write", runs_r / files, "reconcile"),
    ]


def totals(rows: list[Row]) -> tuple[float, float]:
    return sum(r.per_file for r in rows), sum(r.usd_per_million for r in rows)


def print_rows(title: str, rows: list[Row]) -> None:
    print(title)
    print(f"  {'step':<10} {'request':<52} {'kind':<6} {'per file':>9} {'$ / 1M files':>13}  by")
    for r in rows:
        print(f"  {r.step:<10} {r.request:<52} {r.kind:<6} {r.per_file:9.4f} {r.usd_per_million:13.3f}  {r.who}")
    n, usd = totals(rows)
    print(f"  {'total':<10} {'':<52} {'':<6} {n:9.4f} {usd:13.3f}")
    print()


def hours_for(horizon_s: int) -> tuple[float, ...]:
    return tuple(h for h in (0.25, 0.5, 1, 6, 12, 24) if h * 3600 <= horizon_s)


def fmt_wait(out: Outcome) -> str:
    waits = sorted(out.probe_waits)
    seen = [w for w in waits if math.isfinite(w)]
    if not seen:
        return "none looked at"
    median = waits[len(waits) // 2]
    med = f"{median / 60:.0f} min" if math.isfinite(median) else "never (within the run)"
    return f"median wait {med}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one simulated hour")
    smoke = parser.parse_args(argv).smoke
    load = Load(horizon_s=3600 if smoke else 86400)
    probes = 200 if smoke else 2000
    rate = load.files_per_day / 86400
    files = rate * load.horizon_s
    work_s = DOWNLOAD_S + RUNNER_S + FFMPEG_S + UPLOAD_S
    slot_s = work_s + BATCH_OVERHEAD_S[1]

    print(f"A day of small files on Azure ({'smoke: one simulated hour' if smoke else 'one simulated day'})")
    print(f"  load {load.files_per_day:,.0f} files/day = {rate:.2f}/s = {rate * 60:.0f}/min; 2 s voice memos "
          f"(62 kB MP4, ~{load.mp3_bytes // 1000} kB MP3)")
    print(f"  the code: DELETE_BATCH={CODE.delete_batch} a run, monitor every {CODE.monitor_s} s, "
          f"RECONCILE_BATCH={CODE.reconcile_budget} every {CODE.reconcile_s} s, RENEW_BATCH={CODE.renew_batch} "
          f"every {CODE.renew_check_s} s, TASK_RETENTION_SECONDS {CODE.retention_local_s} (settings default) / "
          f"{CODE.retention_azure_s} (infra), BATCH_MAX_NODES {CODE.max_nodes_azure} (infra), {CODE.vm_size} "
          f"{CODE.slots_before} slots/node before issue 29, {CODE.slots_default} now (a memo asks for "
          f"{CODE.memo_slots})")
    print()

    # --- (b) node time per file and the pool --------------------------------------------------------------------
    print("Node time per file (seconds a task holds its slot) and the pool that keeps up (80% busy):")
    print(f"  download {DOWNLOAD_S} + runner {RUNNER_S} + ffmpeg {FFMPEG_S} + upload {UPLOAD_S} = {work_s:.3f} s "
          f"of work, plus Batch's per-task overhead")
    print(f"  {'overhead':>9} {'slot s':>7} {'slots':>6} {'nodes':>6} {'$/day dedicated':>16} {'$/day Spot':>11}"
          f" {'CPU busy/node':>14}")
    node_usd_day = node_usd_day_before = 0.0
    nodes_headline = nodes_before = 0
    memos_per_node = CODE.slots_default // CODE.memo_slots  # memo tasks a node runs at once now
    for overhead in BATCH_OVERHEAD_S:
        for slots in (CODE.slots_before, memos_per_node):
            s = work_s + overhead
            n = nodes_for(load.files_per_day, slots, s)
            usd = n * PRICE_D2S_V3_H * 24
            cpu = rate * (RUNNER_S + FFMPEG_S) / n / CODE.vcpus
            if overhead == BATCH_OVERHEAD_S[1] and slots == CODE.slots_before:
                node_usd_day_before, nodes_before = usd, n
            if overhead == BATCH_OVERHEAD_S[1] and slots == memos_per_node:
                node_usd_day, nodes_headline = usd, n
            print(f"  {overhead:9.1f} {s:7.3f} {slots:6d} {n:6d} {usd:16.2f} {usd * SPOT_SHARE_OF_PRICE:11.2f}"
                  f" {cpu:13.0%}")
    print()

    # --- the same day on the simulated pool, under our policy -----------------------------------------------------
    day_h = load.horizon_s / 3600
    before_day = run_day(load.files_per_day, day_h, CODE.slots_before, CODE.vcpus, count_slots=False)
    after_day = run_day(load.files_per_day, day_h, CODE.slots_default, CODE.vcpus, count_slots=True)
    print(f"The day on the simulated pool under our policy ({day_h:g} h from an empty pool, BATCH_MAX_NODES 25, "
          f"Batch's gap lognormal median {GAP_MEDIAN_S:g} s, 90% in 0.5-2 s; tests/support/sim/day_pool.py):")
    print(f"  {'':<44} {'before (2 slots, tasks)':>24} {'after (8 slots, slots)':>24}")
    settled = f"{after_day.settled_s / 60:.0f} min"
    rows: list[tuple[str, str, Callable[[DayPool], float]]] = [
        ("nodes paid for, mean over the run", "{:.1f}", lambda d: d.mean_nodes),
        (f"nodes paid for, mean after the first {settled}", "{:.1f}", lambda d: d.steady_nodes),
        ("most nodes asked for", "{:d}", lambda d: d.peak_nodes),
        ("node cost a day (mean nodes)", "${:.2f}", lambda d: d.mean_nodes * PRICE_D2S_V3_H * 24),
        ("p95 wait, every file (cold start included)", "{:.1f} s", lambda d: d.p95_wait_s),
        (f"p95 wait, files after the first {settled}", "{:.2f} s", lambda d: d.steady_p95_wait_s),
        ("resizes", "{:d}", lambda d: d.resizes),
    ]
    for label, fmt, get in rows:
        print(f"  {label:<44} {fmt.format(get(before_day)):>24} {fmt.format(get(after_day)):>24}")
    print()

    pool = Pool(nodes_before, CODE.slots_before, slot_s)
    now_name = f"now: paced (<= {CODE.max_deletes_per_run}/run), {CODE.retention_azure_s} s"
    policies = {
        f"before: {BEFORE_DELETE_BOUND}/run, 900 s": Policy("before", CODE.retention_local_s, BEFORE_DELETE_BOUND,
                                                            CODE.reconcile_budget),
        "before, infra's 7 days": Policy("before-azure", BEFORE_RETENTION_AZURE_S, BEFORE_DELETE_BOUND,
                                         CODE.reconcile_budget),
        now_name: Policy("now", CODE.retention_azure_s, 0, CODE.reconcile_budget, paced=True, sized=True),
    }
    outs = {name: simulate(load, pool, p, probes=probes) for name, p in policies.items()}
    today, azure, fixed = outs.values()  # before (settings default), before (infra's retention), the code now

    # --- (d) job size over time ---------------------------------------------------------------------------------
    print(f"Tasks in the Batch job over time ({pool.nodes} nodes x {pool.slots} slots, {slot_s:.2f} s a task):")
    hours = hours_for(load.horizon_s)
    print(f"  {'policy':<32}" + "".join(f"{f'{h:g} h':>11}" for h in hours) + f"{'deleted':>11}")
    for name, out in outs.items():
        print(f"  {name:<32}" + "".join(f"{out.at_hour(h):11,d}" for h in hours) + f"{out.deleted:11,d}")
    ticks = load.horizon_s // CODE.monitor_s
    print(f"  completions a monitor run: {rate * CODE.monitor_s:.0f}; deleted a run before: at most "
          f"{BEFORE_DELETE_BOUND} (job growth {rate * CODE.monitor_s - BEFORE_DELETE_BOUND:.0f} tasks/min); now "
          f"{fixed.deleted / ticks:.0f} a run on average, bound {CODE.max_deletes_per_run}")
    print()
    print("Task folders left on each node (output.mp3 ~50 kB each) at the end of the run:")
    for name, out in outs.items():
        folders = out.series.folders_per_node[-1]
        gib = folders * load.mp3_bytes / 2**30
        print(f"  {name:<32} {folders:11,.0f} folders  {gib:6.2f} GiB of the {TEMP_DISK_GIB} GiB temp disk")
    hours_to_fill = TEMP_DISK_GIB * 2**30 / (rate / pool.nodes * load.mp3_bytes) / 3600
    print(f"  with the infra's former 7-day retention a node's temp disk was full after ~{hours_to_fill:.0f} h "
          f"(folders are removed only by a delete or the end of retention)")
    print()

    # --- reconcile ----------------------------------------------------------------------------------------------
    print("Reconcile: how long a file waits before a pass looks at it (what a missed event waits to be converted):")
    print(f"  {'policy':<32} {'looked at':>11} {'landed':>11} {'wraps':>6} {'seen in 1 h':>12} "
          f"{'seen in run':>12}  wait")
    fix_name = f"now: listing, a pass every {CODE.reconcile_pass_s / 3600:g} h"
    kept = {
        f"before: {CODE.reconcile_budget} a run": today,
        fix_name: fixed,
        "before, 7 days of inputs kept": simulate(load, pool, policies[f"before: {BEFORE_DELETE_BOUND}/run, 900 s"],
                                                  probes=probes, initial_blobs=7_000_000),
        "now, 7 days of inputs kept": simulate(load, pool, policies[now_name], probes=probes, initial_blobs=7_000_000),
    }
    for name, out in kept.items():
        print(f"  {name:<32} {out.reconcile_checked:11,d} {out.arrived:11,d} {out.reconcile_wraps:6d} "
              f"{out.probes_seen_within(3600):12.1%} {out.probes_seen_within(load.horizon_s):12.1%}  {fmt_wait(out)}")
    print()

    # --- renewal (SAS mode) with the deployment's pool bound ----------------------------------------------------
    slow = Pool(CODE.max_nodes_azure, CODE.slots_before, work_s + BATCH_OVERHEAD_S[2])
    days = 1 if smoke else 3
    backlog = simulate(replace(load, horizon_s=days * load.horizon_s), slow, policies[now_name], probes=10)
    cap = slow.nodes * slow.slots / slow.slot_s
    first_due_h = CODE.renew_after_s / 3600 / max(1 - cap / rate, 1e-9)
    print(f"Pool at BATCH_MAX_NODES={slow.nodes} x {slow.slots} slots with a {BATCH_OVERHEAD_S[2]} s overhead: "
          f"{cap:.2f} tasks/s against {rate:.2f}/s arriving (a backlog; renewal matters in SAS mode)")
    print(f"  after {days * load.horizon_s / 3600:g} h: {backlog.queue_end:,.0f} queued, {backlog.renew_due:,d} "
          f"of them queued longer than {CODE.renew_after_s / 3600:.0f} h (SAS URLs to renew); the first is due after "
          f"{first_due_h:.0f} h, then every task does")
    print(f"  renewal handles {CODE.renew_batch} per {CODE.renew_check_s} s = "
          f"{CODE.renew_batch * 86400 // CODE.renew_check_s:,d}/day against {load.files_per_day:,.0f} falling due")
    print()

    # --- (a) storage requests per file --------------------------------------------------------------------------
    rows = storage_rows(files, today, CODE.monitor_s, CODE.reconcile_s, load.horizon_s)
    print_rows("Storage requests per file, before the fixes (success path of a first drop):", rows)
    frows = fixed_rows(files, fixed, CODE.monitor_s, CODE.reconcile_s, load.horizon_s)
    print_rows("Storage requests per file now (reconcile listing inputs and outputs, a pass every 2 h):", frows)
    req_today, usd_storage = totals(rows)
    req_fix, usd_storage_fix = totals(frows)

    # --- Batch requests ---------------------------------------------------------------------------------------
    monitor_reads = 3 + 1  # pool, node counts, task counts, completed-task listing (docs/azure-batch.md)
    per_file_monitor = monitor_reads * (load.horizon_s / CODE.monitor_s) / files
    batch_today = 1 + today.delete_requests / files + per_file_monitor
    batch_fix = 1 + fixed.delete_requests / files + per_file_monitor
    batch_collection = 1 / 100 + fixed.delete_requests / files + per_file_monitor
    print("Batch requests (free, but rate-limited by ServerBusy, not by a published number):")
    print(f"  per file before: add_task 1 + delete {today.delete_requests / files:.3f} + monitor "
          f"{per_file_monitor:.4f} = {batch_today:.3f} (deletes fall behind: {files - today.deleted:,.0f} "
          f"never deleted)")
    print(f"  per file now, paced deletes: {batch_fix:.3f} ({rate * batch_fix:.1f} requests/s)")
    print(f"  with add_task_collection of 100 and paced deletes: {batch_collection:.3f} "
          f"({rate * batch_collection:.1f} requests/s)")
    rotated = 1 + per_file_monitor + 1 / files  # one job a day, deleted whole once its tasks are all recorded
    print(f"  one add_task per file, a job a day deleted whole (no task deletes): {rotated:.3f} "
          f"({rate * rotated:.1f} requests/s)")
    print()

    # --- (c) Functions, Event Grid, logs --------------------------------------------------------------------------
    execs = load.files_per_day + 86400 / CODE.monitor_s + 86400 / CODE.reconcile_s
    busy = rate * SUBMIT_S
    gbs_low = max(1.0, busy) * 86400 * FUNC_MEMORY_GB  # executions share instances (concurrency > 1)
    gbs_high = load.files_per_day * 1.0 * FUNC_MEMORY_GB  # each execution alone, billed its 1,000 ms minimum
    logs_gb = (3 * load.files_per_day * LOG_BYTES_PER_WRITE + load.files_per_day * LOG_BYTES_PER_FILE_APP) / 1e9
    print("Functions (Flex Consumption, 2 GB instances), Event Grid and logs, per day:")
    print(f"  executions {execs:,.0f} (one submit per event: maxEventsPerBatch 1) = "
          f"${execs / 1e6 * PRICE_FUNC_EXEC_M:.2f}")
    print(f"  submit busy {busy:.2f} executions at once on average; GB-s {gbs_low:,.0f} (instances shared) to "
          f"{gbs_high:,.0f} (each alone, 1 s minimum) = ${gbs_low * PRICE_FUNC_GBS:.2f} to "
          f"${gbs_high * PRICE_FUNC_GBS:.2f}")
    print(f"  Event Grid: 1-2 operations per file = ${load.files_per_day / 1e6 * PRICE_EVENTGRID_M:.2f} to "
          f"${2 * load.files_per_day / 1e6 * PRICE_EVENTGRID_M:.2f} (double with the .mp3 notifications)")
    print(f"  Log Analytics: ~{logs_gb:.1f} GB (StorageWrite rows + the submit's traces) = "
          f"${logs_gb * PRICE_LOGS_GB:.2f}")
    print()

    usd_day = (usd_storage_fix + node_usd_day + execs / 1e6 * PRICE_FUNC_EXEC_M + gbs_low * PRICE_FUNC_GBS
               + load.files_per_day / 1e6 * PRICE_EVENTGRID_M + logs_gb * PRICE_LOGS_GB)
    print(f"A day at {load.files_per_day:,.0f} files, the design now: storage ${usd_storage_fix:.2f} (before the fixes "
          f"${usd_storage:.2f}) + nodes "
          f"${node_usd_day:.2f} + Functions ${execs / 1e6 * PRICE_FUNC_EXEC_M + gbs_low * PRICE_FUNC_GBS:.2f} (low) "
          f"+ Event Grid ${load.files_per_day / 1e6 * PRICE_EVENTGRID_M:.2f} + logs ${logs_gb * PRICE_LOGS_GB:.2f} "
          f"= ${usd_day:.2f} (${usd_day * 30:,.0f} a month)")
    print()

    h, end = load.horizon_s / 3600, load.horizon_s
    seven = kept["now, 7 days of inputs kept"]
    print(f"files_per_s={rate:.2f} job_tasks_before={today.at_hour(h)} job_tasks_before_infra={azure.at_hour(h)} "
          f"job_tasks={fixed.at_hour(h)} deletes_per_run={fixed.deleted / ticks:.0f} "
          f"reconcile_seen_before={today.probes_seen_within(end):.3f} "
          f"reconcile_seen={fixed.probes_seen_within(end):.3f} "
          f"reconcile_seen_7d_inputs={seven.probes_seen_within(end):.3f} "
          f"storage_requests_per_file_before={req_today:.3f} storage_requests_per_file={req_fix:.3f} "
          f"batch_requests_per_file={batch_fix:.3f} batch_requests_per_s={rate * batch_fix:.1f} "
          f"batch_requests_per_file_collection={batch_collection:.3f} nodes_d2s_v3_before={nodes_before} "
          f"nodes_d2s_v3={nodes_headline} node_usd_day_before={node_usd_day_before:.2f} "
          f"node_usd_day={node_usd_day:.2f} usd_per_day={usd_day:.2f} "
          f"sim_nodes_before={before_day.mean_nodes:.1f} sim_nodes={after_day.mean_nodes:.1f} "
          f"sim_steady_nodes_before={before_day.steady_nodes:.1f} sim_steady_nodes={after_day.steady_nodes:.1f} "
          f"sim_node_usd_day_before={before_day.mean_nodes * PRICE_D2S_V3_H * 24:.2f} "
          f"sim_node_usd_day={after_day.mean_nodes * PRICE_D2S_V3_H * 24:.2f} "
          f"sim_p95_wait_s_before={before_day.p95_wait_s:.1f} sim_p95_wait_s={after_day.p95_wait_s:.1f}")


if __name__ == "__main__":
    main()
