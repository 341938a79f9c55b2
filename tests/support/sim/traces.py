"""The benchmark's arrival traces: burst, trickle, office day, Poisson and a steady rate (deterministic for a seed).

A trace's files are videos (30 s conversions) unless it says otherwise: tests/support/sim/workloads.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from tests.support.sim.workloads import VIDEOS, Files


@dataclass(frozen=True)
class Trace:
    """Drop times of the files (seconds from the start) and how long the trace lasts."""

    name: str
    arrivals: tuple[float, ...]
    horizon: float
    files: Files = VIDEOS

    def of(self, files: Files, name: str | None = None) -> Trace:
        """The same arrivals, of other files."""
        return replace(self, files=files, name=name or f"{self.name}, {files.name}")


def burst(files: int = 200, hours: float = 2.0) -> Trace:
    """All files dropped at t=0, then silence."""
    return Trace("burst", tuple(0.0 for _ in range(files)), hours * 3600)


def trickle(every_s: float = 180.0, hours: float = 8.0) -> Trace:
    """One file every `every_s` seconds, starting at t=0."""
    n = int(hours * 3600 // every_s)
    return Trace("trickle", tuple(i * every_s for i in range(n)), hours * 3600)


def office_day(seed: int, files: int = 1000, hours: float = 10.0) -> Trace:
    """A Poisson process whose rate follows sin(pi t / T): zero at the ends, peak at midday.

    Conditioned on `files` arrivals, the drop times of a Poisson process are i.i.d. draws from the
    normalised rate, whose inverse CDF is T/pi * arccos(1 - 2u).
    """
    rng = random.Random(f"office-{seed}")
    span = hours * 3600
    times = sorted(span / math.pi * math.acos(1 - 2 * rng.random()) for _ in range(files))
    return Trace("office day", tuple(times), span)


def poisson(seed: int, mean_gap_s: float, hours: float = 8.0) -> Trace:
    """Files landing independently, `mean_gap_s` apart on average (exponential gaps), for `hours`."""
    rng = random.Random(f"poisson-{seed}-{mean_gap_s}")
    span, t, times = hours * 3600, 0.0, []
    while (t := t + rng.expovariate(1 / mean_gap_s)) < span:
        times.append(t)
    return Trace("poisson", tuple(times), span)


def steady(files_per_day: float, hours: float) -> Trace:
    """Files landing at a constant rate (`files_per_day` / 86,400 a second), evenly spaced, for `hours`."""
    gap = 86400.0 / files_per_day
    return Trace("steady", tuple(i * gap for i in range(int(hours * 3600 / gap))), hours * 3600)
