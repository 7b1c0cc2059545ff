"""Old-print tonings of a colour photo, for measuring the tone rule (`colorize-bench tone`).

Each turns a photo into a monochrome print whose colour depends only on its
lightness, as real toned prints do: sepia, cyanotype, split-toned (cool
shadows, warm highlights), faded (lifted blacks, low contrast, a warm cast)
and yellowed paper. The strength of each is drawn from a seeded generator,
and every print is JPEG-compressed like a scan, so the set is the same on
every run.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

TONINGS = ("sepia", "cyanotype", "split-toned", "faded", "yellowed")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def _blend(y: np.ndarray, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Colour = dark..light along the lightness y (0..1), per channel."""
    return dark[None, None] + (light - dark)[None, None] * y[..., None]


def tone(rgb: np.ndarray, toning: str, rng: np.random.Generator) -> np.ndarray:
    """A toned print (uint8 RGB) of `rgb`; see the module doc."""
    y = _luminance(rgb)
    strength = rng.uniform(0.6, 1.2)
    if toning == "sepia":
        tint = np.array([1.0, 0.85, 0.66]) ** strength
        out = _blend(y, np.array([20, 12, 5]) * strength, 255 * tint)
    elif toning == "cyanotype":
        out = _blend(y, np.array([10, 35, 80]), np.array([225, 238, 250]) * (1 - 0.05 * strength))
    elif toning == "split-toned":
        shadow = np.array([25, 30, 55]) * strength  # cool shadows
        highlight = np.array([255, 240, 205])  # warm highlights
        out = _blend(y ** 1.1, shadow, highlight)
    elif toning == "faded":
        lifted = 0.22 + 0.6 * y  # lifted blacks, low contrast
        out = _blend(lifted, np.array([0, 0, 0]), np.array([255, 238, 215]) ** 1.0) * (0.95 + 0.05 * strength)
    elif toning == "yellowed":
        paper = np.array([250, 236, 180])  # yellowed paper, strongest in the highlights
        ink = np.array([35, 28, 20])
        out = _blend(y ** (0.9 + 0.2 * strength), ink, paper)
    else:
        raise ValueError(f"unknown toning {toning!r}; one of {', '.join(TONINGS)}")
    noisy = out + rng.normal(0, 2.0, out.shape)  # grain
    toned = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(toned).save(buffer, format="JPEG", quality=int(rng.integers(75, 95)))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
