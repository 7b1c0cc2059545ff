"""How videos are coloured and encoded: the one record of each, shared by the batch's config,
the video pipeline and the writer (PyAV is not needed to hold them)."""

from __future__ import annotations

from dataclasses import dataclass

from retint.runtime import VIDEO_BATCH


@dataclass(frozen=True)
class EncoderOptions:
    """How coloured video is encoded (--codec, --crf, --preset)."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"


@dataclass(frozen=True)
class VideoOptions:
    """How one video is coloured: its encoder, frames per engine call, smoothing, the stall limit."""

    encoder: EncoderOptions = EncoderOptions()
    batch_size: int = VIDEO_BATCH
    temporal_smoothing: float = 0.0
    stall_seconds: float | None = None  # no frame for this long: the video fails (--timeout-per-input)
