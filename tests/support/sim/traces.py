"""The benchmark's arrival traces: burst, trickle, office day and Poisson (deterministic for a seed)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    """Drop times of the files (seconds from the start) and how long the trace lasts."""

    name: str
    arrivals: tuple[float, ...]
    horizon: float


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
