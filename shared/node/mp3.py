"""How much audio an MP3 file holds, by walking its frames (stdlib only: no decoder, no header estimate)."""

from __future__ import annotations

import mmap
import os
import struct

# kbit/s by [version is MPEG-1][bitrate index] for Layer III.
_BITRATES = {
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


def _skip_id3v2(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _frame(header: int) -> tuple[int, int, int] | None:
    """(frame length in bytes, samples, sample rate) of a Layer III frame header, None if not one."""
    if header >> 21 != 0x7FF:
        return None
    version, layer = (header >> 19) & 3, (header >> 17) & 3
    bitrate_index, rate_index, padding = (header >> 12) & 15, (header >> 10) & 3, (header >> 9) & 1
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    rate = _RATES[version][rate_index]
    samples = 1152 if mpeg1 else 576
    length = (samples // 8) * _BITRATES[mpeg1][bitrate_index] * 1000 // rate + padding
    return length, samples, rate


def _is_info_frame(data: mmap.mmap, pos: int, length: int) -> bool:
    """The Xing/Info/VBRI header frame a LAME encoder writes first: it holds no audio."""
    frame = data[pos:pos + length]
    return b"Xing" in frame[:64] or b"Info" in frame[:64] or b"VBRI" in frame[:64]


def duration_seconds(path: str) -> float:
    """Seconds of audio in the MP3's frames; 0.0 when it has none. Resynchronises past junk between frames."""
    if os.path.getsize(path) < 4:
        return 0.0
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _walk(data)


def _walk(data: mmap.mmap) -> float:
    pos = _skip_id3v2(data[:10])
    total = 0.0
    first = True
    end = len(data) - 4
    while pos <= end:
        parsed = _frame(struct.unpack_from(">I", data, pos)[0])
        if parsed is None or pos + parsed[0] > len(data):
            pos += 1
            continue
        length, samples, rate = parsed
        nxt = pos + length
        # A real frame is followed by another frame or by the end (or an ID3v1 tag); else it is a false sync.
        if nxt <= end and _frame(struct.unpack_from(">I", data, nxt)[0]) is None and data[nxt:nxt + 3] != b"TAG":
            pos += 1
            continue
        if not (first and _is_info_frame(data, pos, length)):
            total += samples / rate
        first = False
        pos = nxt
    return total
