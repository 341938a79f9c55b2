"""Output presets: how each one encodes, whether an MP3 track may be copied, loudness and channel rules."""

from __future__ import annotations


class Preset:
    """One way to make the MP3. (A plain class: dataclasses would cost every task ~10 ms of imports.)"""

    __slots__ = ("encode", "copy_mp3", "mono", "loudness", "sample_rate")

    def __init__(self, encode: tuple[str, ...], *, copy_mp3: bool = False, mono: bool = False, loudness: str = "",
                 sample_rate: int = 0) -> None:
        self.encode = encode  # libmp3lame options: VBR -q:a (0 best .. 9 smallest) or a constant bitrate
        self.copy_mp3 = copy_mp3  # an input track that is already MP3 is copied as it is (lossless, fast)
        self.mono = mono
        self.loudness = loudness  # an EBU R128 target for ffmpeg's loudnorm, e.g. "I=-16:TP=-1.5:LRA=11"
        self.sample_rate = sample_rate  # 0: what the encoder picks nearest to the input's


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
