"""Old-photo damage for grey training inputs (numpy and OpenCV only, no torch).

A colouriser trained on clean photos fails on cracked, stained and faded old
ones, so `colorize-train --degrade P` damages each training input with
probability P, and `colorize-bench quality --damaged-inputs` damages its grey inputs
the same way with a fixed seed. Only the grey input is damaged: the target
stays the clean chroma.

The damage follows "Bringing Old Photos Back to Life" (Wan et al. 2020):
Gaussian blur (sigma 1-5), Gaussian / speckle / salt-and-pepper noise,
downscaling to 1/2-1 and back, JPEG at quality 40-100, applied in random
order; to those we add film grain, scratches, dust, and fading to low
contrast with lifted blacks.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

# sRGB -> linear, and the Rec. 709 / sRGB luminance weights (Y of D65 XYZ).
_LUMINANCE_WEIGHTS = np.array((0.2126729, 0.7151522, 0.0721750), dtype=np.float32)
# Each kind of damage is applied with this probability once an input is chosen.
DAMAGE_PROBABILITY = 0.5


def grey_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H,W,3] -> the uint8 grey g whose (g, g, g) has the photo's Lab L.

    Lab L depends on luminance Y alone, and the grey (g, g, g) has luminance
    linear(g), so g is Y encoded with the sRGB curve: the grey photograph of
    the same scene as the engine will read it.
    """
    values = rgb.astype(np.float32) / 255.0
    linear = np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)
    luminance = linear @ _LUMINANCE_WEIGHTS
    encoded = np.where(luminance <= 0.0031308, 12.92 * luminance,
                       1.055 * np.power(np.maximum(luminance, 0.0031308), 1.0 / 2.4) - 0.055)
    return np.floor(np.clip(encoded, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(1.0, 5.0)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)


def _noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # Gaussian
        return image + rng.normal(0.0, rng.uniform(2.0, 15.0), image.shape).astype(np.float32)
    if kind == 1:  # speckle: multiplicative
        return image * (1.0 + rng.normal(0.0, rng.uniform(0.03, 0.15), image.shape)).astype(np.float32)
    noisy = image.copy()  # salt and pepper
    amount = rng.uniform(0.001, 0.02)
    hits = rng.random(image.shape)
    noisy[hits < amount / 2] = 0.0
    noisy[hits > 1.0 - amount / 2] = 255.0
    return noisy


def _rescale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape
    factor = rng.uniform(0.5, 1.0)
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = int(rng.integers(40, 101))
    ok, encoded = cv2.imencode(".jpg", _to_uint8(image), (cv2.IMWRITE_JPEG_QUALITY, quality))
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) if ok else image


def _grain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Film grain: clumped noise, strongest in the mid-tones."""
    grain = rng.normal(0.0, 1.0, image.shape).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), sigmaX=rng.uniform(0.5, 1.2))
    grain /= max(float(grain.std()), 1e-6)
    midtones = 1.0 - np.abs(image / 127.5 - 1.0)
    return image + grain * rng.uniform(3.0, 12.0) * (0.3 + 0.7 * midtones)


def _scratches(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few long thin light or dark lines, mostly near-vertical as on film and prints."""
    height, width = image.shape
    marked = image.copy()
    for _ in range(int(rng.integers(1, 6))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.normal(np.pi / 2, 0.3) if rng.random() < 0.7 else rng.uniform(0, np.pi)
        length = rng.uniform(0.2, 1.0) * max(height, width)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        level = float(rng.uniform(200, 255) if rng.random() < 0.7 else rng.uniform(0, 50))
        cv2.line(marked, (int(x0), int(y0)), (int(x1), int(y1)), level, thickness=int(rng.integers(1, 3)),
                 lineType=cv2.LINE_AA)
    return marked


def _dust(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Specks and small blotches, light or dark."""
    height, width = image.shape
    marked = image.copy()
    for _ in range(int(rng.integers(5, 60))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        level = float(rng.uniform(210, 255) if rng.random() < 0.6 else rng.uniform(0, 40))
        cv2.ellipse(marked, centre, axes, float(rng.uniform(0, 180)), 0, 360, level, -1, cv2.LINE_AA)
    return marked


def _fade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Low contrast with lifted blacks (and slightly dimmed whites)."""
    black = rng.uniform(20.0, 80.0)
    white = rng.uniform(200.0, 250.0)
    return black + image * (white - black) / 255.0


# The Wan et al. degradations, taken in random order, then the print damage.
_MIXED: tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], ...] = (_blur, _noise, _rescale, _jpeg)
_PRINT: tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], ...] = (_fade, _grain, _scratches, _dust)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)


def degrade_grey(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 grey [H,W] -> a damaged uint8 grey of the same size.

    Each kind of damage is applied with probability `DAMAGE_PROBABILITY`;
    at least one always is.
    """
    image = grey.astype(np.float32)
    mixed = [step for step in _MIXED if rng.random() < DAMAGE_PROBABILITY]
    printed = [step for step in _PRINT if rng.random() < DAMAGE_PROBABILITY]
    if not mixed and not printed:
        everything = _MIXED + _PRINT
        mixed = [everything[int(rng.integers(len(everything)))]]
    for index in rng.permutation(len(mixed)):
        image = np.clip(mixed[index](image, rng), 0.0, 255.0)
    for step in printed:
        image = np.clip(step(image, rng), 0.0, 255.0)
    return _to_uint8(image)
