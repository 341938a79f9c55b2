"""The main job (`make run`): start the local pipeline, drop the inputs, wait for every outcome, print a summary.

Exit status: 0 every file converted; 1 some failed with a report; 2 a file was left without an outcome or
the pipeline itself broke.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from devhost.azurite import REPO
from devhost.local_pipeline import LocalPipeline, Outcome
from devhost.media import duration, make_mp4
from devhost.outcome_feed import human_size
from mp3pipe.drop import collect_files, collect_settings, skipped_line
from mp3pipe.fetch import log_of, log_path
from shared.domain import naming
from shared.settings import SettingsError

TABLE_ROWS = 50  # the summary table shows failures first, then converted files, this many rows at most
SHARED_SAMPLE = REPO.parent / "shared" / "media" / "LowPriVMs-4.mp4"


def samples(folder: Path) -> Path:
    """Generated samples (lavfi sources, one in a sub-folder) plus the tutorial's real MP4 when present."""
    folder.mkdir(parents=True, exist_ok=True)
    make_mp4(folder / "tone 440Hz.mp4", 8.0, frequency=440)
    make_mp4(folder / "talks" / "2024" / "intro.take.2.mp4", 5.0, frequency=660, size="640x360")
    if SHARED_SAMPLE.exists():
        shutil.copyfile(SHARED_SAMPLE, folder / "LowPriVMs-4.mp4")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert video and audio files to MP3s locally.")
    parser.add_argument("--input", type=Path, help="folder of inputs to drop (default: generated samples)")
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
    busy = pipe.running_host()
    if busy is not None:
        console.print(f"a local pipeline (make serve, pid {busy}) already runs on the state folder {args.state}: "
                      "stop it (Ctrl-C), drop into it with `.venv/bin/python -m mp3pipe drop FOLDER`, or give "
                      "make run another STATE=folder", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    source = args.input or samples(args.state / "samples")
    if not source.is_dir():
        console.print(f"[red]INPUT={source} is not a folder[/red]")
        return 2
    skipped: list[str] = []
    files = collect_files([source], skipped)
    say_skipped = (lambda: console.print(skipped_line(skipped), style="yellow", markup=False, highlight=False,
                                         soft_wrap=True)) if skipped else (lambda: None)
    if not files:
        console.print(f"[yellow]no input files ({' '.join(naming.INPUT_SUFFIXES)}) under {source}[/yellow]")
        say_skipped()
        return 0
    console.print(f"mp3pipe: {len(files)} file(s) from {source}; state in {args.state}")
    started = time.monotonic()
    try:
        with pipe:
            console.print(f"Azurite on 127.0.0.1:{pipe.azurite.port}; local host log: {pipe.log_path}")
            pipe.clear_outcomes(list(files))
            for name, path in collect_settings([source]).items():  # a folder's settings before its inputs
                pipe.drop(name, path)
                console.print(f"folder settings: {name}", markup=False, highlight=False)
            fetcher = Fetcher(pipe, args.output)
            try:
                outcomes = drop_and_wait(console, pipe, files, args.timeout, on_outcomes=fetcher.offer)
                rows = fetch(fetcher, outcomes, shown=TABLE_ROWS)
            finally:
                fetcher.close()
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
    if len(outcomes) > len(rows):
        console.print(f"... and {len(outcomes) - len(rows)} more converted file(s), all in {args.output}")
    kinds = [o.kind for o in outcomes.values()]
    console.print(
        f"converted={kinds.count('converted')} failed={kinds.count('failed')} "
        f"pending={kinds.count('pending')} output={args.output}"
    )
    say_skipped()
    if "pending" in kinds:
        return 2
    return 1 if "failed" in kinds else 0


def drop_and_wait(console: Any, pipe: LocalPipeline, files: dict[str, Path], timeout: float,
                  on_outcomes: Callable[[dict[str, Outcome]], None] | None = None) -> dict[str, Outcome]:
    """Drop every file (4 uploads at a time, each with its event), then wait for outcomes, with progress bars;
    `on_outcomes` sees the outcomes after each round of waiting."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console,
                        refresh_per_second=2)  # rich redraws 10 a second by default: 8% of the samples (py-spy)
    with progress:
        dropping = progress.add_task("dropped", total=len(files), detail="")

        def one(item: tuple[str, Path]) -> str:
            etag = pipe.drop(*item)
            progress.advance(dropping)
            return etag

        with ThreadPoolExecutor(max_workers=4) as pool:
            etags = dict(zip(files, pool.map(one, files.items()), strict=True))
        finishing = progress.add_task("finished", total=len(files), detail="")

        def show(outcomes: dict[str, Outcome]) -> None:
            kinds = [o.kind for o in outcomes.values()]
            progress.update(finishing, completed=len(kinds) - kinds.count("pending"),
                            detail=f"converted {kinds.count('converted')}, failed {kinds.count('failed')}")
            if on_outcomes is not None:
                on_outcomes(outcomes)

        return pipe.wait(etags, timeout=timeout, interval=0.2, on_progress=show)


class Fetcher:
    """Brings each outcome into the output folder as soon as it is known, while the other files still convert:
    the MP3 downloaded, or the failure report written (4 at a time)."""

    def __init__(self, pipe: LocalPipeline, dest: Path) -> None:
        self.pipe, self.dest = pipe, dest
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fetch")
        self.started: dict[str, Future[Path | None]] = {}

    def offer(self, outcomes: dict[str, Outcome]) -> None:
        for name, o in outcomes.items():
            if o.kind != "pending" and name not in self.started:
                self.started[name] = self.pool.submit(self._bring, name, o)

    def local(self, name: str, o: Outcome) -> Path | None:
        """Where this outcome landed in the output folder (waiting for its transfer), or None if it has none."""
        self.offer({name: o})
        return self.started[name].result() if name in self.started else None

    def _bring(self, name: str, o: Outcome) -> Path | None:
        if o.kind == "converted" and o.output:
            return self.pipe.download(self.pipe.output_container, o.output, self.dest / o.output)
        if o.kind == "failed" and o.report is not None:
            path = self.dest / naming.report_name(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(o.report, indent=2, ensure_ascii=False))
            self._bring_log(o.report, path)
            return path
        return None

    def _bring_log(self, report: dict[str, Any], path: Path) -> None:
        """The failed task's stderr.txt beside its report (a.error.json -> a.stderr.txt), as `mp3pipe fetch` does."""
        log = log_of(report)
        if log is None:
            return
        try:
            self.pipe.download(self.pipe.output_container, log, log_path(path))
        except ResourceNotFoundError:
            pass  # a rejected input never ran: no log

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def fetch(fetcher: Fetcher, outcomes: dict[str, Outcome],
          shown: int = TABLE_ROWS) -> list[tuple[str, str, str, str, str]]:
    """Every MP3 and report in the output folder; table rows for failures and pending files first, then converted
    ones, `shown` rows at most."""
    def row(name: str, o: Outcome, show: bool) -> tuple[str, str, str, str, str]:
        local = fetcher.local(name, o)
        if o.kind == "converted" and o.output and local is not None:
            secs = duration(local) if show else None
            return (name, o.output, f"{secs:.2f} s" if secs else "?", human_size(local.stat().st_size),
                    "[green]converted[/green]")
        if o.kind == "failed" and o.report is not None:
            return (name, naming.report_name(name), "-", "-", f"[red]failed: {o.report.get('reason')}[/red]")
        return (name, "-", "-", "-", "[yellow]no outcome (timed out)[/yellow]")

    order = sorted(outcomes.items(), key=lambda kv: (kv[1].kind == "converted", kv[0]))
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda i_kv: row(*i_kv[1], i_kv[0] < shown), enumerate(order)))
    return sorted(rows[:shown], key=lambda r: r[0])


if __name__ == "__main__":
    sys.exit(main())
