"""The `mp3pipe` command: drop files, watch status, retry failed files, backfill missed ones, fetch the results,
check a deployment.

It uses the same app settings as the Function App (environment, else local.settings.json, else the sample), so it
works against Azurite (default, `make serve`) and against Azure alike.
"""

from __future__ import annotations

import enum
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mp3pipe import errors
from mp3pipe.help_style import Command
from mp3pipe.help_style import Group as HelpGroup
from mp3pipe.status_view import OpenFiles, render

app = typer.Typer(add_completion=False, no_args_is_help=True, cls=HelpGroup, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="Operate the mp3pipe video-and-audio-to-MP3 pipeline.", epilog=errors.EXIT_CODES_HELP)
console = Console()
progress_console = Console(stderr=True)  # bars never mix into what a script reads from stdout


class Output(enum.StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[Output, typer.Option("--output", "-o", metavar="table|json",
                                              help="table for people, json for scripts")]
AsJson = Annotated[bool, typer.Option("--json", hidden=True, help="same as -o json")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="say what would happen, change nothing")]
_state = {"azure": False, "debug": False}


@app.callback(epilog=errors.EXIT_CODES_HELP)
def options(
    azure: Annotated[bool, typer.Option(
        "--azure", help="work on the deployed Azure account (azd's environment, your own Entra ID sign-in)")] = False,
    azure_env: Annotated[str, typer.Option(metavar="NAME", help="azd environment to use (default: azd's default)")]
    = "",
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an unexpected error")] = False,
) -> None:
    """Operate the mp3pipe video-and-audio-to-MP3 pipeline."""
    _state["debug"] = debug
    if azure or azure_env:
        from mp3pipe.azd_env import AzdEnvError, apply

        _state["azure"] = True
        try:
            apply(azure_env)
        except AzdEnvError as exc:
            raise errors.CliError(str(exc)) from None


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
    except bootstrap.StorageUnreachable as exc:
        raise errors.unreachable(exc.url, _state["azure"]) from None
    except SettingsError as exc:
        raise errors.CliError(str(exc)) from None


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _confirm(count: int, what: str, yes: bool) -> bool:
    """Ask before changing many files; never blocks a script: without a terminal, --yes is required."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise errors.CliError(f"{what} {count} file(s): add --yes to confirm (no terminal to ask on)")
    return typer.confirm(f"{what} {count} file(s)?", default=False)


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def drop(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="input files or folders (sub-folders kept)")],
    prefix: Annotated[str, typer.Option(metavar="PREFIX", help="folder in the input container to drop into")] = "",
    dry_run: DryRun = False,
    output: OutputOption = Output.table,
) -> None:
    """Upload inputs (.mp4, .mov, .m4a...) to the input container, in blocks, several at a time, with a progress bar;
    a folder's settings files (`_mp3pipe.json`) go up first, so its inputs convert with them."""
    from mp3pipe.drop import Dropper, collect_files, collect_settings, skipped_line
    from mp3pipe.eventgrid import Notifier

    skipped: list[str] = []
    try:
        files = collect_files(paths, skipped)
        settings_files = collect_settings(paths)
    except FileNotFoundError as exc:
        raise errors.CliError(f"{exc}: give input files or folders that exist") from None
    if skipped:
        progress_console.print(f"[yellow]{escape(skipped_line(skipped))}[/yellow]", soft_wrap=True)
    deps = _deps()
    container = deps.settings.input_container
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    total = sum(p.stat().st_size for p in files.values())
    if dry_run:
        if output == Output.json:
            _json({"dry_run": True, "container": container,
                   "files": [{"input": prefix + n, "size": p.stat().st_size} for n, p in files.items()]})
            return
        for name in settings_files:
            console.print(f"would drop the folder settings {escape(prefix + name)}")
        for name, path in files.items():
            console.print(f"would drop {escape(prefix + name)} ({path.stat().st_size:,} bytes)")
        console.print(f"would drop {len(files)} file(s), {total:,} bytes, into container '{container}' (dry run: "
                      "nothing uploaded)")
        return
    # The local host is told of each file when one runs (in Azure, Event Grid does this).
    dropper = Dropper(deps.storage, container, Notifier(deps.settings.local_state_dir))
    for name, path in settings_files.items():  # before the inputs they apply to
        dropper.drop(prefix + name, path)
        progress_console.print(f"dropped the folder settings {escape(prefix + name)}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    dropped = []
    with Progress(*columns, console=progress_console) as progress:
        overall = progress.add_task(f"dropping {len(files)} file(s)", total=total)
        for name, path in files.items():
            done_before = progress.tasks[overall].completed
            progress.update(overall, description=escape(f"{prefix}{name}"))

            def hook(current: int, _total: int | None, base: float = done_before) -> None:
                progress.update(overall, completed=base + current)

            etag = dropper.drop(prefix + name, path, progress=hook)
            dropped.append({"input": prefix + name, "etag": etag, "size": path.stat().st_size})
            progress.update(overall, completed=done_before + path.stat().st_size)
        progress.update(overall, description=f"dropped {len(files)} file(s)")
    if output == Output.json:
        _json({"container": container, "files": dropped})
        return
    console.print(f"dropped {len(files)} file(s) into container '{container}'")


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def status(
    prefix: Annotated[str, typer.Option(metavar="PREFIX", help="only files under this folder")] = "",
    watch: Annotated[bool, typer.Option("--watch", help="refresh until nothing is left to convert")] = False,
    interval: Annotated[float, typer.Option(metavar="SECONDS", help="seconds between refreshes with --watch")] = 2.0,
    limit: Annotated[int, typer.Option(metavar="N", min=1, help="rows to show, newest first")] = 50,
    output: OutputOption = Output.table,
    as_json: AsJson = False,
) -> None:
    """Counts by state (waiting, queued, converting, done, failed), the pool, and the newest files in a table.

    Exits 1 when a file under the prefix failed.
    """
    from shared.usecases.status import as_json as to_json
    from shared.usecases.status import collect

    deps = _deps()
    report = collect(deps, prefix)
    if as_json or output == Output.json:
        typer.echo(to_json(report))
        raise typer.Exit(errors.FILE_FAILED if report.counts["failed"] else errors.OK)
    if not watch:
        console.print(render(report, limit, console.width))
        raise typer.Exit(errors.FILE_FAILED if report.counts["failed"] else errors.OK)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    bar = progress.add_task("finished (of the files open since the watch began)", total=None)
    followed = OpenFiles()
    with Live(Group(progress, render(report, limit, console.width)), console=console, refresh_per_second=4) as live:
        while True:
            finished, total = followed.update(report)
            progress.update(bar, total=total, completed=finished)
            live.update(Group(progress, render(report, limit, console.width)))
            if not report.busy:
                break
            time.sleep(interval)
            report = collect(deps, prefix)
    raise typer.Exit(errors.FILE_FAILED if report.counts["failed"] else errors.OK)


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def retry(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                        help="one input blob name, e.g. videos/a.mp4")] = "",
    prefix: Annotated[str | None, typer.Option(metavar="PREFIX", show_default=False,
                                               help="every file under this folder ('' for all)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="only the files that failed (with --prefix: under it)")]
    = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask before retrying several files")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the outcomes and print them (exit 1 if any failed)")]
    = False,
    interval: Annotated[float, typer.Option(metavar="SECONDS", help="seconds between looks with --wait")] = 2.0,
    dry_run: DryRun = False,
    output: OutputOption = Output.table,
) -> None:
    """Convert files again (after replacing them, or after a transient failure): one NAME, every file under
    --prefix, or the --failed ones."""
    from mp3pipe import outcomes
    from shared.usecases.submit import retry as retry_blob

    if bool(name) == (prefix is not None or failed):
        raise errors.CliError("give either one NAME, or --prefix P and/or --failed (see `mp3pipe retry --help`)")
    deps = _deps()
    container = deps.settings.input_container
    if name:
        if deps.storage.properties(deps.storage.blob(container, name)) is None:
            raise errors.CliError(f"{name!r} is not in container '{container}': check the name with "
                                  "`mp3pipe status --prefix FOLDER`")
        names = [name]
    else:
        chosen = outcomes.select(deps, prefix or "", failed_only=failed)
        names = [f.name for f in chosen]
        what = "failed file(s)" if failed else "file(s)"
        where = f" under '{prefix}'" if prefix else ""
        if output == Output.table:
            console.print(f"{len(names)} {what}{where} to convert again")
    if dry_run:
        if output == Output.json:
            _json({"dry_run": True, "retry": names})
        else:
            for n in names:
                console.print(f"would retry {escape(n)}")
            console.print(f"would retry {len(names)} file(s) (dry run: nothing changed)")
        return
    if not name and names and not _confirm(len(names), "Convert again", yes):
        console.print("nothing retried")
        return
    results = [retry_blob(deps, n) for n in names]
    retried = [{"input": r.name, "status": r.status, "task_id": r.task_id} for r in results]
    if output == Output.table:
        for r in results:
            console.print(escape(f"{r.name}: {r.status} (task {r.task_id})"))
    if not wait:
        if output == Output.json:
            _json({"retried": retried})
        return
    done = outcomes.wait(deps, [r.name for r in results if r.status != "gone"], interval)
    failures = [f for f in done if f.state == "failed"]
    if output == Output.json:
        _json({"retried": retried,
               "outcomes": [{"input": f.name, "state": f.state, "output": f.output, "reason": f.reason}
                            for f in done]})
    else:
        for f in done:
            detail = f.reason if f.state == "failed" else f.output
            console.print(f"{escape(f.name)}: [{'red' if f.state == 'failed' else 'green'}]{f.state}[/] "
                          f"{escape(detail or '')}")
    raise typer.Exit(errors.FILE_FAILED if failures else errors.OK)


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def backfill(
    batch: Annotated[int, typer.Option(metavar="N", min=1, help="blobs listed per page")] = 1000,
    dry_run: DryRun = False,
    output: OutputOption = Output.table,
) -> None:
    """Submit every input that has no task yet (missed triggers, files from before the app existed)."""
    from mp3pipe import outcomes
    from shared.usecases.reconcile import backfill as run_backfill

    deps = _deps()
    if dry_run:
        files = outcomes.select(deps, "", failed_only=False)
        would = [f.name for f in files if f.resubmit]
        if output == Output.json:
            _json({"dry_run": True, "checked": len(files), "would_submit": would})
            return
        for n in would:
            console.print(f"would submit {escape(n)}")
        console.print(f"checked {len(files)} input(s), would submit {len(would)} (dry run: nothing submitted)")
        return
    result = run_backfill(deps, batch)
    if output == Output.json:
        _json({"checked": result.checked, "submitted": result.submitted})
        return
    console.print(f"checked {result.checked} input(s), submitted {result.submitted}")


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def events(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events as they arrive")] = False,
    take: Annotated[bool, typer.Option("--take", help="delete each event printed (you are then its receiver)")] = False,
    output: OutputOption = Output.table,
    interval: Annotated[float, typer.Option(metavar="SECONDS", help="seconds between reads with --follow")] = 2.0,
) -> None:
    """Print the outcome events in the outcome queue (OUTCOME_QUEUE), oldest first: one per input version that
    ended (converted, failed, rejected, superseded). Peeks, leaving the queue as it is (at most the 32 oldest:
    Azure's cap); `--take` receives and deletes them instead."""
    from mp3pipe.events_view import as_json, line, new_events
    from shared.ports.outcome_queue import OutcomeQueueUnreachable

    queue = _deps().outcomes
    if queue is None:
        raise errors.CliError("no outcome queue: storage is reached by identity through a blob endpoint alone; set "
                              "AzureWebJobsStorage__queueServiceUri (or __accountName)")
    seen: set[str] = set()
    try:
        while True:
            for event in new_events(queue.take if take else queue.peek, seen, take):
                if output == Output.json:
                    typer.echo(as_json(event))
                else:
                    console.print(line(event), highlight=False, soft_wrap=True)
            if not follow:
                return
            time.sleep(interval)
    except OutcomeQueueUnreachable as exc:
        raise errors.CliError(f"cannot read the outcome queue: {exc}") from None
    except KeyboardInterrupt:
        return


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def fetch(
    prefix: Annotated[str, typer.Argument(metavar="PREFIX", help="folder in the output container ('' for all)")],
    dest: Annotated[Path, typer.Argument(metavar="DEST", help="local folder to download into (created)")],
    output: OutputOption = Output.table,
) -> None:
    """Download the MP3s and failure reports under PREFIX into DEST, folders kept; each failed task's stderr.txt
    lands beside its report (a.error.json, a.stderr.txt)."""
    from mp3pipe.fetch import fetch as run_fetch

    deps = _deps()
    container = deps.settings.output_container
    got = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=progress_console) as progress:
        bar = progress.add_task("fetching", total=None)

        def skipped(blob: str, why: str) -> None:
            progress.console.print(f"[yellow]skipped {escape(blob)}: {escape(why)}[/yellow]")

        for item in run_fetch(deps.storage, container, prefix, dest,
                              started=lambda blob: progress.update(bar, description=escape(blob)), skipped=skipped):
            got.append(item)
            progress.update(bar, completed=len(got))
        progress.update(bar, description=f"fetched {len(got)} file(s)", total=len(got))
    if output == Output.json:
        _json({"container": container, "dest": str(dest),
               "files": [{"name": f.name, "path": str(f.path), "kind": f.kind, "size": f.size} for f in got]})
        return
    kinds = {k: sum(f.kind == k for f in got) for k in ("mp3", "report", "log")}
    console.print(f"fetched {kinds['mp3']} MP3(s), {kinds['report']} failure report(s) and {kinds['log']} "
                  f"task log(s) from container '{container}' into {dest}")
    if not got:
        console.print(f"nothing under {prefix!r} in '{container}': see `mp3pipe status` for what is still converting")


@app.command(cls=Command, epilog=errors.EXIT_CODES_HELP)
def doctor() -> None:
    """Check the deployed environment (`mp3pipe --azure doctor`): each check ok or PROBLEM, with the fix."""
    from mp3pipe.doctor import main as run_doctor

    raise typer.Exit(run_doctor())


def _say(message: str) -> None:
    console.print(f"[red]{escape(message)}[/red]", soft_wrap=True)


def main() -> int:
    return errors.run(lambda: app(prog_name="mp3pipe"), _say, lambda: _state["debug"])


if __name__ == "__main__":
    sys.exit(main())
