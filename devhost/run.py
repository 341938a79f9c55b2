"""The main job (`make run`): start the local pipeline, drop MP4s, wait for every outcome, print a summary.

Exit status: 0 every file converted; 1 some failed with a report; 2 a file was left without an outcome or
the pipeline itself broke.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devhost.azurite import REPO
from devhost.local_pipeline import LocalPipeline, Outcome
from devhost.media import duration, make_mp4
from shared import naming
from shared.settings import SettingsError

SHARED_SAMPLE = REPO.parent / "shared" / "media" / "LowPriVMs-4.mp4"


def samples(folder: Path) -> Path:
    """Generated samples (lavfi sources, one in a sub-folder) plus the tutorial's real MP4 when present."""
    folder.mkdir(parents=True, exist_ok=True)
    make_mp4(folder / "tone 440Hz.mp4", 8.0, frequency=440)
    make_mp4(folder / "talks" / "2024" / "intro.take.2.mp4", 5.0, frequency=660, size="640x360")
    if SHARED_SAMPLE.exists():
        shutil.copyfile(SHARED_SAMPLE, folder / "LowPriVMs-4.mp4")
    return folder


def collect(folder: Path) -> dict[str, Path]:
    """Blob name (relative path, '/'-separated) -> file, for every .mp4 under folder."""
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and naming.is_mp4(p.name)
    }


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert MP4s to MP3s through the local mp3pipe pipeline.")
    parser.add_argument("--input", type=Path, help="folder of MP4s to drop (default: generated samples)")
    parser.add_argument("--output", type=Path, default=REPO / "out", help="where MP3s and failure reports go")
    parser.add_argument("--state", type=Path, default=REPO / ".state", help="state folder (Azurite data, tasks)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for all outcomes")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    pipe = LocalPipeline(args.state, settings={"MONITOR_SCHEDULE": "*/5 * * * * *"})
    try:
        pipe.check_settings()  # before anything starts: a bad setting is named here, not in the host's log
    except SettingsError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    source = args.input or samples(args.state / "samples")
    if not source.is_dir():
        console.print(f"[red]INPUT={source} is not a folder[/red]")
        return 2
    files = collect(source)
    if not files:
        console.print(f"[yellow]no .mp4 files under {source}[/yellow]")
        return 0
    console.print(f"mp3pipe: {len(files)} file(s) from {source}; state in {args.state}")
    started = time.monotonic()
    try:
        with pipe:
            console.print(f"Azurite on 127.0.0.1:{pipe.azurite.port}; local host log: {pipe.log_path}")
            for name in files:
                pipe.clear_outcome(name)
            with ThreadPoolExecutor(max_workers=4) as pool:
                etags = dict(zip(files, pool.map(lambda kv: pipe.drop(*kv), files.items()), strict=True))
            with console.status(f"converting {len(files)} file(s)..."):
                outcomes = pipe.wait(etags, timeout=args.timeout)
            rows = fetch(pipe, outcomes, args.output)
    except Exception as exc:  # noqa: BLE001 - the pipeline itself broke: say so, exit 2
        console.print(f"the pipeline broke: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    elapsed = time.monotonic() - started

    table = Table(title=f"mp3pipe summary ({elapsed:.1f} s)")
    for col in ("input", "output", "audio", "size", "result"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    kinds = [o.kind for o in outcomes.values()]
    console.print(
        f"converted={kinds.count('converted')} failed={kinds.count('failed')} "
        f"pending={kinds.count('pending')} output={args.output}"
    )
    if "pending" in kinds:
        return 2
    return 1 if "failed" in kinds else 0


def fetch(pipe: LocalPipeline, outcomes: dict[str, Outcome], dest: Path) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for name, o in sorted(outcomes.items()):
        if o.kind == "converted" and o.output:
            local = pipe.download(pipe.output_container, o.output, dest / o.output)
            secs = duration(local)
            rows.append((name, o.output, f"{secs:.2f} s" if secs else "?", human_size(local.stat().st_size),
                         "[green]converted[/green]"))
        elif o.kind == "failed" and o.report is not None:
            path = naming.report_name(name)
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            (dest / path).write_text(json.dumps(o.report, indent=2, ensure_ascii=False))
            rows.append((name, path, "-", "-", f"[red]failed: {o.report.get('reason')}[/red]"))
        else:
            rows.append((name, "-", "-", "-", "[yellow]no outcome (timed out)[/yellow]"))
    return rows


if __name__ == "__main__":
    sys.exit(main())
