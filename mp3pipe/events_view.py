"""What `mp3pipe events` prints: one line per outcome event (time, outcome, input, output or reason), or its JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

STYLE = {"converted": "green", "failed": "red", "rejected": "red", "superseded": "yellow"}


def line(event: dict[str, Any]) -> str:
    """`time  outcome  input  -> output (bytes)` or `time  outcome  input  reason` (Rich markup escaped)."""
    from rich.markup import escape

    data = event.get("data") or {}
    outcome = str(data.get("outcome", "?"))
    name = escape(str((data.get("input") or {}).get("name", event.get("subject", "?"))))
    if outcome == "converted":
        out = data.get("output") or {}
        tail = f"-> {escape(str(out.get('url', '')))} ({out.get('bytes')} bytes)"
    else:
        tail = escape(str(data.get("reason", "")))
    style = STYLE.get(outcome, "white")
    return f"{event.get('time', '?')}  [{style}]{outcome:<10}[/{style}]  {name}  {tail}"


def as_json(event: dict[str, Any]) -> str:
    """The CloudEvent as one line of JSON (structured mode, as it travels)."""
    return json.dumps(event, ensure_ascii=False, sort_keys=True)


def new_events(read: Callable[[], list[dict[str, Any]]], seen: set[str], consumed: bool) -> Iterator[dict[str, Any]]:
    """Events `read` returns that were not shown yet (by id; what is consumed is never seen twice anyway)."""
    for event in read():
        key = str(event.get("id"))
        if consumed or key not in seen:
            seen.add(key)
            yield event
