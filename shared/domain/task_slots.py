"""How many of a node's Batch task slots one conversion asks for, from what submit knows before it runs (pure).

Why so, and the thresholds it gives: docs/scaling.md, "Slots a task asks for".
"""

from __future__ import annotations

import math

# The most seconds of audio a byte of input can hold: 64 kbit/s AAC (voice memos, the lowest bitrate typical inputs
# carry; music is 128-256 kbit/s, phone video 8-20 Mbit/s of which audio is a sliver). So size / this is an upper
# bound on a file's duration, hence on its encode time: a file is never given fewer slots than its work needs.
LOWEST_BYTES_PER_AUDIO_SECOND = 8_000
# Seconds of audio libmp3lame encodes per CPU second: bench/many_files.py converts 2 s in 0.027 s of CPU (74x).
ENCODE_SPEED = 74.0
# Batch's own per-task gap (schedule, resource file download, output upload, state report): 0.5-2 s, not published;
# docs/many-files-on-azure.md (b). During it the task holds its slots and no core.
TASK_GAP_SECONDS = 1.0


def core_slots(slots_per_node: int, vcpus: int | None) -> int:
    """The slots that make one core's worth on a node: slots per node / vCPUs (1 when the vCPUs are unknown)."""
    if not vcpus or vcpus <= 0:
        return 1
    return max(slots_per_node // vcpus, 1)


def required_slots(size_bytes: int | None, slots_per_node: int, vcpus: int | None) -> int:
    """The slots a conversion of an input of `size_bytes` asks for: its share of a core, in slots, rounded up.

    A task keeps a core busy for its encode time (at most size / LOWEST_BYTES_PER_AUDIO_SECOND / ENCODE_SPEED) of
    the encode time + TASK_GAP_SECONDS it holds its slots. A 2 s memo is busy ~10% of that and takes 1 slot, so
    four share a core and overlap their gaps; a long recording is busy ~all of it and takes a core's worth. An
    unknown size takes a core's worth (what every task took before slots were packed). Never above the node's slots.
    """
    core = core_slots(slots_per_node, vcpus)
    if size_bytes is None or size_bytes < 0:
        return min(core, max(slots_per_node, 1))
    encode = size_bytes / LOWEST_BYTES_PER_AUDIO_SECOND / ENCODE_SPEED
    share = encode / (encode + TASK_GAP_SECONDS)
    return min(max(math.ceil(share * core - 1e-9), 1), core, max(slots_per_node, 1))


def slots_on_node(required: int, node_slots: int) -> int:
    """The slots a task holds on a node: what it asks for, at least 1, never more than the node has (Batch would
    accept such a task and never run it)."""
    return min(max(required, 1), max(node_slots, 1))


def size_thresholds(slots_per_node: int, vcpus: int | None) -> list[tuple[int, int]]:
    """(slots, the smallest input size in bytes that asks for them) for 2.. a core's worth: the rule's thresholds."""
    core = core_slots(slots_per_node, vcpus)
    out = []
    for slots in range(2, core + 1):
        share = (slots - 1) / core  # above this share of a core, ceil(share * core) reaches `slots`
        encode = share * TASK_GAP_SECONDS / (1 - share)
        out.append((slots, math.floor(encode * ENCODE_SPEED * LOWEST_BYTES_PER_AUDIO_SECOND) + 1))
    return out
