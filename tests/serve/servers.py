"""Helpers for the serve tests: photos as file bytes, and how colourful an answer is."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encoded(pixels: np.ndarray, image_format: str = "JPEG", mode: str | None = None, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def colourfulness(data: bytes) -> float:
    """Mean max-minus-min over the RGB channels: 0 for a grey image."""
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())
