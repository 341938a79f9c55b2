"""A clock the test moves (epoch seconds), for Deps and the fakes to share."""

from __future__ import annotations

import datetime as dt


class Clock:
    """The monitor's clock (epoch seconds), moved by the test."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
