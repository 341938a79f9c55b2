"""The `mp3pipe` command: drop files, watch status, retry a failed file, backfill missed ones, check a deployment.

It uses the same app settings as the Function App (environment, else local.settings.json, else the sample), so it
works against Azurite (default, `make serve`) and against Azure alike.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from shared.domain import naming

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Operate the mp3pipe MP4-to-MP3 pipeline.")
console = Console()
STATE_STYLE = {"waiting": "yellow", "queued": "cyan", "converting": "blue", "done": "green", "failed": "red"}


@app.callback()
def options(
    azure: Annotated[bool, typer.Option(
        "--azure", help="work on the deployed Azure account (azd's environment, your own Entra ID sign-in)")] = False,
    azure_env: Annotated[str, typer.Option(help="azd environment to use (default: azd's default)")] = "",
) -> None:
    """Operate the mp3pipe MP4-to-MP3 pipeline."""
    if azure or azure_env:
        from mp3pipe.azd_env import AzdEnvError, apply

        try:
            apply(azure_env)
        except AzdEnvError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None


def _deps():  # noqa: ANN202 - typed in shared.bootstrap
    import os

    from mp3pipe.azd_env import IDENTITY_SETTINGS
    from shared import bootstrap
    from shared.settings import SettingsError
    from shared.settings_file import load_local_settings

    # Storage by identity (an account URL, no key) from the environment or --azure: the local file's Azurite
    # connection string must not take its place.
    by_identity = "AzureWebJobsStorage" not in os.environ and any(os.environ.get(k) for k in IDENTITY_SETTINGS)
    load_local_settings()
    if by_identity:
        os.environ.pop("AzureWebJobsStorage", None)
    try:
        return bootstrap.tool_deps()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def drop(
    paths: Annotated[list[Path], typer.Argument(help="MP4 files or folders (sub-folders kept)")],
    prefix: Annotated[str, typer.Option(help="folder in the input container to drop into")] = "",
) -> None:
    """Upload inputs (.mp4, .mov, .m4a...) to the input container, in blocks, several at a time, with a progress bar."""
    from shared.adapters.drop import Dropper, collect_files
    from shared.adapters.eventgrid import Notifier

    deps = _deps()
    try:
        files = collect_files(paths)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    skipped = [n for n in files if not naming.is_input(n)]
    for name in skipped:
        console.print(f"[yellow]skipping {name}: not one of {', '.join(naming.INPUT_SUFFIXES)}[/yellow]")
        files.pop(name)
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    # The local host is told of each file when one runs (in Azure, Event Grid does this).
    dropper = Dropper(deps.storage, deps.settings.input_container, Notifier(deps.settings.local_state_dir))
    total = sum(p.stat().st_size for p in files.values())
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task(f"dropping {len(files)} file(s)", total=total)
        for name, path in files.items():
            done_before = progress.tasks[overall].completed
            progress.update(overall, description=f"{prefix}{name}")

            def hook(current: int, _total: int | None, base: float = done_before) -> None:
                progress.update(overall, completed=base + current)

            dropper.drop(prefix + name, path, progress=hook)
            progress.update(overall, completed=done_before + path.stat().st_size)
        progress.update(overall, description=f"dropped {len(files)} file(s)")
    console.print(f"dropped {len(files)} file(s) into container '{deps.settings.input_container}'")


def _when(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def render(report, limit: int) -> Group:  # noqa: ANN001 - shared.usecases.status.StatusReport
    from rich.markup import escape

    from shared.usecases.status import STATES

    counts = "  ".join(f"[{STATE_STYLE[s]}]{s} {report.counts[s]}[/{STATE_STYLE[s]}]" for s in STATES)
    if not report.complete:
        counts = f"first {len(report.files):,} files (narrow with --prefix): {counts}\n{_summary_line(report.summary)}"
    if report.pool is None:
        pool = "pool: not created yet"
    else:
        p = report.pool
        pool = (f"pool: {p.current_dedicated + p.current_spot} node(s) now, target {p.target_dedicated + p.target_spot}"
                f" ({p.target_spot} Spot), {p.allocation_state}")
        for problem in report.pool_problems:
            pool += f"\n[red]pool problem: {escape(problem)}[/red]"
    table = Table(show_edge=False, header_style="bold")
    for col in ("input", "state", "output or reason", "dropped", "finished"):
        table.add_column(col, overflow="fold")
    rows = sorted(report.files, key=lambda f: (f.state == "done", f.dropped_at), reverse=False)
    for f in rows[:limit]:
        detail = f.reason if f.state == "failed" or (f.state == "waiting" and f.reason) else (f.output or "-")
        table.add_row(naming.display_name(f.name, 80), f"[{STATE_STYLE[f.state]}]{f.state}[/{STATE_STYLE[f.state]}]",
                      detail, _when(f.dropped_at), _when(f.finished_at))
    more = f"... and {len(rows) - limit} more" if len(rows) > limit else ""
    return Group(counts, pool, table, more)


def _summary_line(summary) -> str:  # noqa: ANN001 - shared.usecases.status.Summary
    jobs = f"Batch: {summary.queued:,} queued, {summary.converting:,} converting"
    if summary.inputs is None:
        return f"all files: {jobs}; reconcile has not finished a pass yet"
    return (f"all files (reconcile's pass finished {summary.pass_finished_at}): {summary.inputs:,} inputs, "
            f"{summary.converted:,} converted, {summary.failed:,} failed, {summary.unconverted:,} not converted yet; "
            f"{jobs}")


@app.command()
def status(
    prefix: Annotated[str, typer.Option(help="only files under this folder")] = "",
    watch: Annotated[bool, typer.Option("--watch", help="refresh until nothing is left to convert")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes with --watch")] = 2.0,
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Counts by state (waiting, queued, converting, done, failed), the pool, and a per-file table."""
    from shared.usecases.status import as_json as to_json
    from shared.usecases.status import collect

    deps = _deps()
    report = collect(deps, prefix)
    if as_json:
        typer.echo(to_json(report))
        return
    if not watch:
        console.print(render(report, limit))
        raise typer.Exit(1 if report.counts["failed"] else 0)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    bar = progress.add_task("finished", total=len(report.files))
    with Live(Group(progress, render(report, limit)), console=console, refresh_per_second=4) as live:
        while True:
            finished = report.counts["done"] + report.counts["failed"]
            progress.update(bar, total=len(report.files), completed=finished)
            live.update(Group(progress, render(report, limit)))
            if not report.busy:
                break
            time.sleep(interval)
            report = collect(deps, prefix)
    raise typer.Exit(1 if report.counts["failed"] else 0)


@app.command()
def retry(name: Annotated[str, typer.Argument(help="input blob name, e.g. videos/a.mp4")]) -> None:
    """Convert one file again (after replacing it, or after a transient failure)."""
    from shared.usecases.submit import retry as retry_blob

    deps = _deps()
    result = retry_blob(deps, name)
    if result.status == "gone":
        console.print(f"[red]{name!r} is not in container '{deps.settings.input_container}'[/red]")
        raise typer.Exit(2)
    console.print(f"{name}: {result.status} (task {result.task_id})")


@app.command()
def backfill(
    batch: Annotated[int, typer.Option(help="blobs listed per page")] = 1000,
) -> None:
    """Submit every input MP4 that has no task yet (missed triggers, files from before the app existed)."""
    from shared.usecases.reconcile import backfill as run_backfill

    result = run_backfill(_deps(), batch)
    console.print(f"checked {result.checked} MP4(s), submitted {result.submitted}")


@app.command()
def doctor() -> None:
    """Check the deployed environment (`mp3pipe --azure doctor`): each check ok or PROBLEM, with the fix."""
    from mp3pipe.doctor import main as run_doctor

    raise typer.Exit(run_doctor())


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
