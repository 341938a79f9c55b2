"""Fault figures: a mixed batch (good, hostile names, bad contents) with a kill -9 of the host midway.

Prints a table and, as its last line:
    dropped=N converted=N failed_with_report=N lost=N duplicated=N
`lost` counts blob versions with no outcome; `duplicated` counts versions with more than one task, or with both
an MP3 and a failure report. Both must be 0. Run: `.venv/bin/python bench/faults.py`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devhost.hostile import HOSTILE_NAMES, UNMAPPABLE_NAMES, bad_contents, odd_but_valid  # noqa: E402
from devhost.local_pipeline import LocalPipeline  # noqa: E402
from devhost.media import make_mp4  # noqa: E402
from shared import naming, planning  # noqa: E402
from shared.batch.local import spec_from_json  # noqa: E402


def task_versions(pipe: LocalPipeline) -> Counter[tuple[str, str]]:
    """(input name, ETag) -> number of tasks, from the local gateway's own database."""
    counts: Counter[tuple[str, str]] = Counter()
    for *_, raw in pipe.task_rows():
        env = spec_from_json(raw).env()
        counts[(env[planning.ENV_INPUT_BLOB], env[planning.ENV_INPUT_ETAG])] += 1
    return counts


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mp3pipe-faults-") as tmp:
        root = Path(tmp)
        print("generating media ...", flush=True)
        good = {f"good/clip-{i:02d}.mp4": make_mp4(root / "media" / f"good{i}.mp4", 6.0, frequency=300 + 20 * i,
                                                  size="160x120") for i in range(20)}
        tone = good["good/clip-00.mp4"]
        drops: dict[str, bytes | Path] = {
            **good,
            **{name: tone for name in HOSTILE_NAMES + UNMAPPABLE_NAMES},
            **bad_contents(root / "bad", tone),
            **odd_but_valid(root / "odd"),
        }
        expected_failures = set(UNMAPPABLE_NAMES) | {n for n in drops if n.startswith("bad/")}
        with LocalPipeline(root / "state", settings={"MONITOR_SCHEDULE": "*/1 * * * * *"}) as pipe:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                etags = dict(zip(drops, pool.map(lambda kv: pipe.drop(*kv), drops.items()), strict=True))
            # Kill -9 the host once a third of the files have an outcome, then start it again.
            while time.monotonic() - started < 120:
                done = sum(1 for o in pipe.wait(etags, timeout=0).values() if o.kind != "pending")
                if done >= len(drops) // 3:
                    break
                time.sleep(0.05)
            pipe.kill_host()
            print(f"killed the host (kill -9) with {done}/{len(drops)} outcomes; restarting", flush=True)
            pipe.start_host()
            outcomes = pipe.wait(etags, timeout=300)
            elapsed = time.monotonic() - started
            versions = task_versions(pipe)
            present = {b.name for b in pipe.service.get_container_client(pipe.output_container).list_blobs()}

    kinds = Counter(o.kind for o in outcomes.values())
    duplicated = sum(1 for n in etags if versions[(n, etags[n])] > 1)
    duplicated += sum(1 for n, o in outcomes.items()
                      if o.kind == "failed" and naming.is_mp4(n) and _mirror(n) in present)
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
          f"lost={kinds['pending']} duplicated={duplicated}")
    return 0 if kinds["pending"] == 0 and duplicated == 0 else 1


def _mirror(name: str) -> str:
    try:
        return naming.output_name(name)
    except naming.UnmappableName:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
