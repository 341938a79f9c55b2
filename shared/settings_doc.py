"""README's settings table and local.settings.sample.json, written from shared/settings_spec.py.

`python -m shared.settings_doc` rewrites both; `--check` exits 1 if either differs from the declaration.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.settings_spec import SETTINGS, Setting

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SAMPLE = REPO / "local.settings.sample.json"
BEGIN = "<!-- settings table: written by `python -m shared.settings_doc` from shared/settings_spec.py -->"
END = "<!-- end of settings table -->"
# Read by `func start` itself, not by our code.
PLATFORM_LOCAL = {"FUNCTIONS_WORKER_RUNTIME": "python"}


def _bound(value: float) -> str:
    return f"{value:g}"


def allowed(s: Setting) -> str:
    """The values a setting takes, as README shows them."""
    if s.kind in ("whole", "number"):
        kind = "whole number" if s.kind == "whole" else "number"
        if s.low is not None and s.high is not None:
            return f"{kind}, {_bound(s.low)} to {_bound(s.high)}"
        return f"{kind} ≥ {_bound(s.low)}" if s.low is not None else f"{kind} ≤ {_bound(s.high or 0)}"
    return {
        "connection": "connection string",
        "container": "container name (3-63 of `a-z`, `0-9`, single `-`)",
        "batch_id": "1-64 of letters, digits, `-`, `_`",
        "ncrontab": "NCRONTAB, 6 fields",
        "choice": ", ".join(f"`{c}`" for c in s.choices),
    }.get(s.kind, "")


def table() -> str:
    """README's settings table, one row per declared setting."""
    rows = ["| setting | default | allowed | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = s.computed or (f"`{s.default}`" if s.default else "")
        rows.append(f"| `{s.name}` | {default} | {allowed(s)} | {s.meaning} |")
    return "\n".join(rows)


def readme(text: str) -> str:
    """README's text with its settings table (between the markers) written from the declaration."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the settings table markers {BEGIN!r} ... {END!r}")
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def sample() -> str:
    """local.settings.sample.json: every setting a local run reads, at its default."""
    values = {**PLATFORM_LOCAL, **{s.name: s.default for s in SETTINGS if s.local}}
    return json.dumps({"IsEncrypted": False, "Values": values}, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    wanted = {README: readme(README.read_text()), SAMPLE: sample()}
    stale = [path for path, text in wanted.items() if path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.name} differs from shared/settings_spec.py: run python -m shared.settings_doc")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
