"""What an MP4 declares about its audio, read from its boxes: tracks, default flag, codec, duration (stdlib only)."""

from __future__ import annotations

import struct
from io import BufferedReader as BinaryIO  # io is loaded at start-up already; typing would cost each task ~4 ms

_TKHD_ENABLED = 0x1  # ffmpeg reads an enabled track as the default one, and writes only the default one enabled
_MP3_OBJECT_TYPES = {0x69, 0x6B}  # ISO/IEC 14496-1 objectTypeIndication: MPEG-2 and MPEG-1 audio (MP3)


class NotMp4(ValueError):
    """No moov box to read: `truncated` when the file starts as an MP4 (ftyp) but ends before its moov box."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class AudioTrack:
    """One audio track as the file declares it. (Plain classes here: dataclasses cost each task ~10 ms.)"""

    __slots__ = ("track_id", "stream_index", "enabled", "codec", "sample_rate", "channels", "declared_seconds")

    def __init__(self, track_id: int, stream_index: int, enabled: bool, codec: str, sample_rate: int, channels: int,
                 declared_seconds: float | None) -> None:
        self.track_id = track_id
        self.stream_index = stream_index  # ffmpeg's index for this track's stream (streams are numbered in box order)
        self.enabled = enabled
        self.codec = codec  # sample entry fourcc, e.g. "mp4a", "ac-3", "Opus", "alac"; "mp3" for MPEG audio in mp4a
        self.sample_rate = sample_rate
        self.channels = channels
        self.declared_seconds = declared_seconds  # None when the file does not declare it (fragmented, written live)

    def __repr__(self) -> str:
        return f"AudioTrack({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"


class Mp4Info:
    """The audio tracks and whether the movie is fragmented."""

    __slots__ = ("tracks", "fragmented")

    def __init__(self, tracks: list[AudioTrack] | None = None, fragmented: bool = False) -> None:
        self.tracks = tracks if tracks is not None else []
        self.fragmented = fragmented

    def chosen(self) -> AudioTrack | None:
        """The track to convert: the one marked default (enabled), else the first."""
        for track in self.tracks:
            if track.enabled:
                return track
        return self.tracks[0] if self.tracks else None


def _boxes(fh: BinaryIO, start: int, end: int):
    """(type, payload start, payload end) of each box between start and end; stops at a box cut short."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        body = pos + 8
        if size == 1:
            large = fh.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            return
        yield kind, body, pos + size
        pos += size


def _read(fh: BinaryIO, at: int, n: int) -> bytes:
    fh.seek(at)
    data = fh.read(n)
    if len(data) < n:
        raise NotMp4("a box is cut short")
    return data


def _full_box(fh: BinaryIO, at: int) -> tuple[int, int]:
    version_flags = struct.unpack(">I", _read(fh, at, 4))[0]
    return version_flags >> 24, version_flags & 0xFFFFFF


def _mdhd(fh: BinaryIO, at: int) -> tuple[int, int]:
    """(timescale, duration) of a media header."""
    version, _ = _full_box(fh, at)
    if version == 1:
        return struct.unpack(">IQ", _read(fh, at + 4 + 16, 12))
    return struct.unpack(">II", _read(fh, at + 4 + 8, 8))


def _mvhd_timescale(fh: BinaryIO, at: int) -> int:
    version, _ = _full_box(fh, at)
    return struct.unpack(">I", _read(fh, at + 4 + (16 if version == 1 else 8), 4))[0]


def _tkhd(fh: BinaryIO, at: int) -> tuple[int, bool]:
    """(track id, enabled) of a track header."""
    version, flags = _full_box(fh, at)
    track_id = struct.unpack(">I", _read(fh, at + 4 + (16 if version == 1 else 8), 4))[0]
    return track_id, bool(flags & _TKHD_ENABLED)


def _elst_media_duration(fh: BinaryIO, at: int) -> int | None:
    """Sum of the edit list's non-empty segments, in the movie's timescale (None if all are empty)."""
    version, _ = _full_box(fh, at)
    count = struct.unpack(">I", _read(fh, at + 4, 4))[0]
    entry, fmt = (20, ">Qq") if version == 1 else (12, ">Ii")
    total, any_media = 0, False
    for i in range(min(count, 4096)):
        duration, media_time = struct.unpack(fmt, _read(fh, at + 8 + i * entry, struct.calcsize(fmt)))
        if media_time != -1:
            total += duration
            any_media = True
    return total if any_media else None


def _esds_object_type(fh: BinaryIO, start: int, end: int) -> int | None:
    """objectTypeIndication of the DecoderConfigDescriptor in an esds box."""
    data = _read(fh, start, min(end - start, 256))[4:]
    pos = 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        length = 0
        for _ in range(4):  # expandable size: up to 4 bytes of 7 bits
            if pos >= len(data):
                return None
            byte = data[pos]
            pos += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: ES_ID(2) flags(1) [+ optional fields]
            flags = data[pos + 2] if pos + 2 < len(data) else 0
            pos += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
            if flags & 0x40 and pos < len(data):
                pos += 1 + data[pos]
            continue
        if tag == 0x04:  # DecoderConfigDescriptor
            return data[pos] if pos < len(data) else None
        pos += length
    return None


def _sample_entry(fh: BinaryIO, stsd_start: int, stsd_end: int) -> tuple[str, int, int]:
    """(codec, sample rate, channels) of the first audio sample entry."""
    for kind, start, end in _boxes(fh, stsd_start + 8, stsd_end):
        fourcc = kind.decode("latin-1")
        channels, _, _, _, rate = struct.unpack(">HHHHI", _read(fh, start + 16, 12))
        codec = fourcc
        if kind == b"mp4a":
            for child, c_start, c_end in _boxes(fh, start + 28, end):
                if child == b"esds" and _esds_object_type(fh, c_start, c_end) in _MP3_OBJECT_TYPES:
                    codec = "mp3"
        elif kind in (b".mp3", b"ms\x00U"):
            codec = "mp3"
        return codec, rate >> 16, channels
    return "", 0, 0


def _find(fh: BinaryIO, start: int, end: int, path: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind, b_start, b_end in _boxes(fh, start, end):
        if kind == path[0]:
            return (b_start, b_end) if len(path) == 1 else _find(fh, b_start, b_end, path[1:])
    return None


def _track(fh: BinaryIO, start: int, end: int, movie_timescale: int, index: int) -> AudioTrack | None:
    track_id, enabled, edit = 0, False, None
    media = None
    for kind, b_start, b_end in _boxes(fh, start, end):
        if kind == b"tkhd":
            track_id, enabled = _tkhd(fh, b_start)
        elif kind == b"edts":
            elst = _find(fh, b_start, b_end, (b"elst",))
            edit = _elst_media_duration(fh, elst[0]) if elst else None
        elif kind == b"mdia":
            media = (b_start, b_end)
    if media is None:
        return None
    hdlr = _find(fh, media[0], media[1], (b"hdlr",))
    if hdlr is None or _read(fh, hdlr[0] + 8, 4) != b"soun":
        return None
    mdhd = _find(fh, media[0], media[1], (b"mdhd",))
    timescale, duration = _mdhd(fh, mdhd[0]) if mdhd else (0, 0)
    stsd = _find(fh, media[0], media[1], (b"minf", b"stbl", b"stsd"))
    codec, rate, channels = _sample_entry(fh, *stsd) if stsd else ("", 0, 0)
    declared = None
    if edit and movie_timescale:
        declared = edit / movie_timescale
    elif duration and timescale:
        declared = duration / timescale
    return AudioTrack(track_id, index, enabled, codec, rate, channels, declared)


def read_mp4(path: str) -> Mp4Info:
    """The audio an MP4 declares. Raises NotMp4 when there is no moov box to read (not an MP4, or cut short)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        moov, starts_as_mp4 = None, False
        for kind, start, end in _boxes(fh, 0, size):
            starts_as_mp4 = starts_as_mp4 or kind == b"ftyp"
            if kind == b"moov":
                moov = (start, end)
                break
        if moov is None:
            raise NotMp4("no moov box", truncated=starts_as_mp4)
        info = Mp4Info()
        movie_timescale, fragment_duration, index = 0, None, 0
        traks: list[tuple[int, int, int]] = []
        for kind, start, end in _boxes(fh, *moov):
            if kind == b"mvhd":
                movie_timescale = _mvhd_timescale(fh, start)
            elif kind == b"trak":
                traks.append((start, end, index))
                index += 1
            elif kind == b"mvex":
                info.fragmented = True
                mehd = _find(fh, start, end, (b"mehd",))
                if mehd:
                    version, _ = _full_box(fh, mehd[0])
                    fmt = ">Q" if version == 1 else ">I"
                    fragment_duration = struct.unpack(fmt, _read(fh, mehd[0] + 4, struct.calcsize(fmt)))[0]
        for start, end, stream_index in traks:
            track = _track(fh, start, end, movie_timescale, stream_index)
            if track is None:
                continue
            if info.fragmented:
                # In a fragmented file the moov declares only what it holds itself; the whole length, if at all,
                # is in the movie extends header (mehd).
                track.declared_seconds = (fragment_duration / movie_timescale
                                          if fragment_duration and movie_timescale else None)
            info.tracks.append(track)
        return info
