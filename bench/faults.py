"""Fault figures: a mixed batch (good, hostile names, bad contents) with a kill -9 of the host midway.

Prints a table and, as its last line:
    dropped=N converted=N failed_with_report=N lost=N duplicated=N unexpected=N
`lost` counts blob versions with no outcome; `duplicated` counts versions with more than one task, with both an
MP3 and a failure report, or whose task ran, launched ffmpeg or uploaded its MP3 more often than its retries and
requeues explain (from the local gateway's task history); `unexpected` counts outcomes other than expected (a
good file failed, a bad one converted). All three must be 0, else the exit status is 1. A wait that passes its
deadline raises (the figures would describe an unfinished run).
Run: `.venv/bin/python -m bench.faults` (`--smoke`: a few files of each kind, for the test suite).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devhost.local_pipeline import LocalPipeline
from devhost.media import make_mp4
from shared.domain import naming
from tests.support.hostile import HOSTILE_NAMES, UNMAPPABLE_NAMES, bad_contents, odd_but_valid
from tests.support.task_audit import TaskAudit, tasks_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few files of each kind, no long one (seconds)")
    smoke = parser.parse_args(argv).smoke
    with tempfile.TemporaryDirectory(prefix="mp3pipe-faults-") as tmp:
        root = Path(tmp)
        print("generating media ...", flush=True)
        good = {f"good/clip-{i:02d}.mp4": make_mp4(root / "media" / f"good{i}.mp4", 6.0, frequency=300 + 20 * i,
                                                  size="160x120") for i in range(3 if smoke else 20)}
        tone = good["good/clip-00.mp4"]
        odd = odd_but_valid(root / "odd")
        drops: dict[str, bytes | Path] = {
            **good,
            **{name: tone for name in (HOSTILE_NAMES[:3] + UNMAPPABLE_NAMES[:2] if smoke
                                       else HOSTILE_NAMES + UNMAPPABLE_NAMES)},
            **bad_contents(root / "bad", tone),
            **({"odd/multi-audio.mp4": odd["odd/multi-audio.mp4"]} if smoke else odd),
        }
        expected_failures = set(UNMAPPABLE_NAMES) | {n for n in drops if n.startswith("bad/")}
        with LocalPipeline(root / "state", settings={"MONITOR_SCHEDULE": "*/1 * * * * *"}) as pipe:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                etags = dict(zip(drops, pool.map(lambda kv: pipe.drop(*kv), drops.items()), strict=True))
            # Kill -9 the host once a third of the files have an outcome, then start it again.
            while (done := sum(1 for o in pipe.wait(etags, timeout=0).values() if o.kind != "pending")) \
                    < len(drops) // 3:
                if time.monotonic() - started > 120:
                    raise TimeoutError(f"only {done}/{len(drops)} outcomes after 120 s: no mid-batch kill possible")
                time.sleep(0.05)
            pipe.kill_host()
            print(f"killed the host (kill -9) with {done}/{len(drops)} outcomes; restarting", flush=True)
            pipe.start_host()
            outcomes = pipe.wait(etags, timeout=300)
            elapsed = time.monotonic() - started
            tasks = settled(pipe)
            present = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}

    kinds = Counter(o.kind for o in outcomes.values())
    versions = Counter((t.name, t.etag) for t in tasks)
    twice = {(t.name, t.etag) for t in tasks if t.problems()}
    for t in tasks:
        for problem in t.problems():
            print(f"duplicated work: {t.name!r} ({t.id}): {problem}")
    duplicated = sum(1 for n in etags if versions[(n, etags[n])] > 1 or (n, etags[n]) in twice)
    duplicated += sum(1 for n, o in outcomes.items()
                      if o.kind == "failed" and naming.is_input(n) and _mirror(n) in present)
    unexpected = [n for n, o in outcomes.items()
                  if (o.kind == "failed") != (n in expected_failures) and o.kind != "pending"]
    print(f"{'input':60} outcome")
    for name, o in sorted(outcomes.items()):
        shown = name.replace("\n", "\\n").replace("\t", "\\t")
        shown = shown if len(shown) <= 58 else shown[:27] + "..." + shown[-28:]
        detail = o.output if o.kind == "converted" else (o.report or {}).get("reason", "")
        print(f"{shown:60} {o.kind}: {detail}")
    print(f"elapsed {elapsed:.1f} s; outcomes other than expected: {unexpected or 'none'}")
    print(f"dropped={len(etags)} converted={kinds['converted']} failed_with_report={kinds['failed']} "
          f"lost={kinds['pending']} duplicated={duplicated} unexpected={len(unexpected)}")
    return 0 if kinds["pending"] == 0 and duplicated == 0 and not unexpected else 1


def settled(pipe: LocalPipeline, timeout: float = 120.0) -> list[TaskAudit]:
    """The tasks once every one has completed (an MP3 lands a moment before its task completes); raises
    TimeoutError at the deadline rather than audit tasks still running."""
    deadline = time.monotonic() + timeout
    while unfinished := [t for t in tasks_of(pipe) if t.state != "completed"]:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{len(unfinished)} task(s) not completed after {timeout:.0f} s: "
                               + ", ".join(f"{t.name!r} ({t.state})" for t in unfinished[:5]))
        time.sleep(0.1)
    return tasks_of(pipe)


def _mirror(name: str) -> str:
    try:
        return naming.output_name(name)
    except naming.UnmappableName:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
