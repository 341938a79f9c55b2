"""`status` at many files, on real Azurite and the local gateway: per-file for the first page only, records read
for those files (never the whole record listing for a prefix), a cheap summary for the rest."""

from __future__ import annotations

from rich.console import Console

from mp3pipe import cli
from shared.usecases import status
from shared.usecases.reconcile import backfill
from tests.test_reconcile import _fill, _put, counted


def test_a_large_container_shows_its_first_page_and_a_summary(deps):
    _fill(deps, [f"day/{i:03d}.mp4" for i in range(150)], mp3=True)
    _fill(deps, [f"day/{i:03d}x.mp4" for i in range(3)], mp3=False)  # missed events: reconcile submits them
    assert backfill(deps).submitted == 3
    d, counter, _ = counted(deps)
    report = status.collect(d, limit=100)
    assert not report.complete and len(report.files) == 100
    assert [(f.name, f.state) for f in report.files][:3] == [("day/000.mp4", "done"), ("day/000x.mp4", "queued"),
                                                             ("day/001.mp4", "done")]
    assert report.summary is not None
    s = report.summary
    assert (s.inputs, s.converted, s.failed, s.unconverted, s.queued) == (153, 150, 0, 3, 3)
    state = deps.settings.state_container
    assert counter.seen[("list", state)] == 0  # no listing of every record
    assert counter.seen[("GET", state)] <= 100 + 2  # the page's records, the monitor's and reconcile's state
    shown = Console(record=True, width=240)
    shown.print(cli.render(report, 50))
    text = shown.export_text()
    assert "first 100 files (narrow with --prefix)" in text and "... and 50 more" in text
    assert "153 inputs, 150 converted, 0 failed, 3 not converted yet; Batch: 3 queued" in text


def test_a_prefix_reads_only_its_own_records(deps):
    _fill(deps, [f"other/{i:03d}.mp4" for i in range(120)], mp3=True)
    _put(deps, "mine/a.mp4")
    _put(deps, "mine/b.mp4")
    d, counter, _ = counted(deps)
    report = status.collect(d, prefix="mine/")
    assert report.complete and report.summary is None
    assert [(f.name, f.state) for f in report.files] == [("mine/a.mp4", "waiting"), ("mine/b.mp4", "waiting")]
    assert counter.seen[("list", deps.settings.state_container)] == 0
    assert counter.seen[("GET", deps.settings.state_container)] == 2 + 1  # two records, the monitor's state


def test_a_small_deployment_gets_exact_counts_as_before(deps):
    _fill(deps, [f"few/{i}.mp4" for i in range(5)], mp3=True)
    report = status.collect(deps)
    assert report.complete and report.summary is None
    assert report.counts["done"] == 5 and len(report.files) == 5
