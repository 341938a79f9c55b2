"""Output presets: how each one encodes, whether an MP3 track may be copied, loudness and channel rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One way to make the MP3."""

    encode: tuple[str, ...]  # libmp3lame options: VBR -q:a (0 best .. 9 smallest) or a constant bitrate
    copy_mp3: bool = False  # an input track that is already MP3 is copied as it is (lossless, fast)
    mono: bool = False
    loudness: str = ""  # an EBU R128 target for ffmpeg's loudnorm, e.g. "I=-16:TP=-1.5:LRA=11"
    sample_rate: int = 0  # 0: what the encoder picks nearest to the input's


PRESETS: dict[str, Preset] = {
    # The default keeps what the input has: an MP3 track is copied, anything else becomes VBR ~190 kbit/s.
    "standard": Preset(("-q:a", "2"), copy_mp3=True),
    "high": Preset(("-q:a", "0")),  # VBR ~245 kbit/s
    "small": Preset(("-q:a", "6")),  # VBR ~115 kbit/s
    "cbr128": Preset(("-b:a", "128k")),
    "cbr320": Preset(("-b:a", "320k")),
    # Speech: -16 LUFS integrated, true peak <= -1.5 dBTP (two-pass loudnorm), mono 64 kbit/s at 44.1 kHz.
    "podcast": Preset(("-b:a", "64k"), mono=True, loudness="I=-16:TP=-1.5:LRA=11", sample_rate=44100),
}
