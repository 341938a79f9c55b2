"""The local task journal: an unreadable line fails the reader; only an append cut short at the end is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from localbatch.history import HistoryError, append_event, history_path, read_history


def test_events_read_back_in_order(tmp_path: Path) -> None:
    append_event(tmp_path, "job", "t1", "run", attempt=0)
    append_event(tmp_path, "job", "t1", "upload", path="a.mp3", etag="e1")
    assert [(e["event"], e.get("path")) for e in read_history(tmp_path, "job", "t1")] == [("run", None),
                                                                                          ("upload", "a.mp3")]


def test_a_garbled_line_in_the_middle_fails_the_reader(tmp_path: Path) -> None:
    append_event(tmp_path, "job", "t1", "run", attempt=0)
    with open(history_path(tmp_path, "job", "t1"), "ab") as fh:
        fh.write(b'{"event": "upl\x00\xff\n')
    append_event(tmp_path, "job", "t1", "upload", path="a.mp3", etag="e1")
    with pytest.raises(HistoryError, match="line 2"):
        read_history(tmp_path, "job", "t1")


def test_a_whole_line_that_is_no_event_fails_the_reader(tmp_path: Path) -> None:
    append_event(tmp_path, "job", "t1", "run", attempt=0)
    with open(history_path(tmp_path, "job", "t1"), "a") as fh:
        fh.write("[1, 2]\n")
    with pytest.raises(HistoryError):
        read_history(tmp_path, "job", "t1")


def test_a_last_append_cut_short_is_not_an_event(tmp_path: Path) -> None:
    append_event(tmp_path, "job", "t1", "run", attempt=0)
    with open(history_path(tmp_path, "job", "t1"), "a") as fh:
        fh.write('{"event": "upload", "pa')  # no newline: the write never finished
    assert [e["event"] for e in read_history(tmp_path, "job", "t1")] == ["run"]
