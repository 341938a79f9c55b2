"""`mp3pipe status` on a terminal: counts, the pool, the newest files first in a table that fits the width, and
`--watch`'s bar over the files still open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mp3pipe.drop import skipped_line
from shared.domain import naming
from shared.usecases.status import STATES, UNFINISHED, FileStatus, StatusReport, Summary

STATE_STYLE = {"waiting": "yellow", "queued": "cyan", "converting": "blue", "done": "green", "failed": "red"}
EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)
WIDE = 120  # columns from which the table shows both times, in full
SHORT = "%m-%d %H:%M"


def newest_first(files: list[FileStatus]) -> list[FileStatus]:
    """Files by their latest event (finished, else dropped), the newest first."""
    return sorted(files, key=lambda f: f.finished_at or f.dropped_at or EPOCH, reverse=True)


def render(report: StatusReport, limit: int, width: int = 200) -> Group:
    """The counts, the pool and a table of the newest `limit` files within `width` columns: long names and reasons
    are cut with an ellipsis, never the state; under WIDE columns one short "finished" time instead of two."""
    counts = "  ".join(f"[{STATE_STYLE[s]}]{s} {report.counts[s]}[/{STATE_STYLE[s]}]" for s in STATES)
    if not report.complete:
        counts = f"first {len(report.files):,} files (narrow with --prefix): {counts}\n{summary_line(report.summary)}"
    wide = width >= WIDE
    table = Table(show_edge=False, header_style="bold")
    table.add_column("input", min_width=10)  # wrapable, so rich narrows it; each cell stays one line
    table.add_column("state", no_wrap=True, min_width=10)
    table.add_column("output or reason", min_width=10)
    for heading in ("dropped", "finished") if wide else ("finished",):
        table.add_column(heading, no_wrap=True)
    rows = newest_first(report.files)
    for f in rows[:limit]:
        detail = f.reason if f.state == "failed" or (f.state == "waiting" and f.reason) else (f.output or "-")
        times = (_when(f.dropped_at), _when(f.finished_at)) if wide else (_when(f.finished_at, SHORT),)
        table.add_row(_line(naming.display_name(f.name, 1024)), f"[{STATE_STYLE[f.state]}]{f.state}[/]",
                      _line(detail), *times)
    more = ""
    if len(rows) > limit:
        more = (f"... and {len(rows) - limit} more, older (show them with --limit {len(rows)}, "
                "or narrow with --prefix P)")
    left_alone = Text(skipped_line(report.skipped), style="yellow") if report.skipped else ""
    return Group(counts, _pool(report), table, more, left_alone)


def _line(value: str) -> Text:
    return Text(value, no_wrap=True, overflow="ellipsis")


def _pool(report: StatusReport) -> str:
    if report.pool is None:
        return "pool: not created yet"
    p = report.pool
    pool = (f"pool: {p.current_dedicated + p.current_spot} node(s) now, target {p.target_dedicated + p.target_spot}"
            f" ({p.target_spot} Spot), {p.allocation_state}")
    for problem in report.pool_problems:
        pool += f"\n[red]pool problem: {escape(problem)}[/red]"
    return pool


def _when(value: dt.datetime | None, form: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.astimezone().strftime(form) if value else "-"


def summary_line(summary: Summary | None) -> str:
    if summary is None:
        return ""
    jobs = f"Batch: {summary.queued:,} queued, {summary.converting:,} converting"
    if summary.inputs is None:
        return f"all files: {jobs}; reconcile has not finished a pass yet"
    return (f"all files (reconcile's pass finished {summary.pass_finished_at}): {summary.inputs:,} inputs, "
            f"{summary.converted:,} converted, {summary.failed:,} failed, {summary.unconverted:,} not converted yet; "
            f"{jobs}")


@dataclass
class OpenFiles:
    """What `--watch`'s bar counts: the files not done or failed when the watch began, and every file that is open
    (dropped again) since, and every file new since; files finished before it began are not counted."""

    names: set[str] = field(default_factory=set)
    at_start: set[str] | None = None  # every file the watch's first look saw

    def update(self, report: StatusReport) -> tuple[int, int]:
        """Follow one refresh; returns (finished, total) among the files followed."""
        if self.at_start is None:
            self.at_start = {f.name for f in report.files}
        self.names.update(f.name for f in report.files if f.state in UNFINISHED or f.name not in self.at_start)
        followed = [f for f in report.files if f.name in self.names]
        return sum(f.state not in UNFINISHED for f in followed), len(followed)
