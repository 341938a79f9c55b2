"""Structured event logging: one JSON line per pipeline event, with SAS query strings stripped."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger("mp3pipe")
_SAS = re.compile(r"(sig|se|sv|sp|sr|st|skoid|sktid|skt|ske|sks|skv|spr)=[^&\s\"']+", re.I)


def scrub(text: str) -> str:
    """Remove SAS parameters (signatures, keys) from a string before it is logged."""
    return _SAS.sub(lambda m: m.group(1) + "=REDACTED", text)


class ScrubSas(logging.Filter):
    """A logging filter for third-party loggers that print URLs (urllib3's retry warnings): SAS parameters go."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        return True


def quiet_sdk_logging() -> None:
    """Keep the Azure SDKs' warnings and errors, not their INFO lines, wherever the app runs.

    The Functions worker sets the root logger to INFO and forwards every record to Application Insights; azure-core's
    HttpLoggingPolicy logs each request and response (headers included) at INFO, several lines per file converted.
    """
    logging.getLogger("azure").setLevel(logging.WARNING)


def event(kind: str, level: int = logging.INFO, /, **fields: Any) -> dict[str, Any]:
    """Log one event as a JSON line (Application Insights parses customDimensions from it)."""
    record = {"event": kind, **fields}
    log.log(level, scrub(json.dumps(record, default=str, ensure_ascii=False)))
    return record
