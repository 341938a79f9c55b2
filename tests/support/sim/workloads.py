"""What the simulated pool's files are: a task's core seconds, its input size (hence its slots) and Batch's gap.

A task holds the slots it asks for (`shared.domain.task_slots.required_slots`, from the input's size) for Batch's
per-task gap plus its work; during the gap it uses no core, during its work one core.

Batch's per-task gap (scheduling the task on a node, the resource-file download, the output upload, the state
report) is a lognormal with median 1.0 s and 90% of draws in 0.5-2 s (sigma ln 2 / 1.645). Its source: Microsoft
publishes no figure. Its best practices say tasks "that only run for one to two seconds are not ideal" and ask for
"a 10 second minimum" because of this per-task overhead (learn.microsoft.com, "Azure Batch best practices", Avoid
short execution time); the one public measurement found, github.com/Azure/Batch/issues/58 (2019), shows a task of
about 1 s with resource files spending ~4 s before it ran ("Losing 4 seconds ... for only downloading resources",
7 s between two dependent tasks). So 0.5-2 s is the optimistic end; docs/many-files-on-azure.md (b) and
bench.scale_day use the same range, 1 s in the headline. A longer gap makes slots matter more, not less.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from shared.domain.task_slots import ENCODE_SPEED

RUNNER_S = 0.055  # the node runner's start-up (CPU), README: cut from ~100 to ~55 ms
GAP_MEDIAN_S = 1.0  # Batch's per-task gap, median (see the module docstring for the source)
GAP_SIGMA = math.log(2.0) / 1.645  # 90% of gaps within 0.5-2 s
MEMO_AUDIO_S = 2.0
MEMO_BYTES = 62_000  # a 2 s voice memo MP4 (docs/many-files-on-azure.md)
RECORDING_AUDIO_S = 3600.0
RECORDING_BYTES = 28_800_000  # 1 h of 64 kbit/s AAC: the lowest bitrate typical inputs carry
VIDEO_BYTES_PER_AUDIO_S = 1_250_000  # a phone video, 10 Mbit/s: its audio is a sliver of its size


def gap_draw(rng: random.Random, median_s: float = GAP_MEDIAN_S, sigma: float = GAP_SIGMA) -> float:
    """One task's Batch gap in seconds (0 when the median is 0: the model without a gap)."""
    if median_s <= 0:
        return 0.0
    return rng.lognormvariate(math.log(median_s), sigma)


@dataclass(frozen=True)
class Files:
    """A kind of file, or a mix of kinds: `draw` gives one file's (core seconds of work, input bytes)."""

    name: str
    kinds: tuple[tuple[float, str], ...] = ()  # (share, kind) for a mix; empty: this file is one kind
    work_median_s: float = 30.0
    work_sigma: float = 0.0
    bytes_per_work_s: float = 0.0  # input bytes per core second of work (a lognormal work's size)
    size_bytes: int = 0  # a fixed size (memos, recordings), when bytes_per_work_s is 0

    def draw(self, rng: random.Random) -> tuple[float, int]:
        if self.kinds:
            u, acc = rng.random(), 0.0
            for share, kind in self.kinds:
                acc += share
                if u < acc:
                    return KINDS[kind].draw(rng)
            return KINDS[self.kinds[-1][1]].draw(rng)
        work = self.work_median_s if self.work_sigma <= 0 else rng.lognormvariate(math.log(self.work_median_s),
                                                                                  self.work_sigma)
        size = round(work * self.bytes_per_work_s) if self.bytes_per_work_s else self.size_bytes
        return work, size


def video(median_s: float = 30.0, name: str = "videos") -> Files:
    """Phone videos and music: conversions of lognormal length (sigma 0.6), inputs far past a core's worth."""
    return Files(name, work_median_s=median_s, work_sigma=0.6,
                 bytes_per_work_s=ENCODE_SPEED * VIDEO_BYTES_PER_AUDIO_S)


VIDEOS = video()  # the benchmark's traces before issue 29: 30 s conversions (median), a core each
LONG_VIDEOS = video(240.0, "4 min videos")
MEMOS = Files("voice memos", work_median_s=RUNNER_S + MEMO_AUDIO_S / ENCODE_SPEED, size_bytes=MEMO_BYTES)
RECORDINGS = Files("recordings", work_median_s=RUNNER_S + RECORDING_AUDIO_S / ENCODE_SPEED,
                   size_bytes=RECORDING_BYTES)
KINDS = {"videos": VIDEOS, "memos": MEMOS, "recordings": RECORDINGS}
MIX = Files("mix", kinds=((0.80, "memos"), (0.15, "videos"), (0.05, "recordings")))
