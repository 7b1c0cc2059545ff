"""What a user may tell a distribution-head engine besides the grey: point hints, a reference
photo's palette and the decoding temperature, turned into the graph's extra inputs.

A colour-model-v2 artefact (export/deploy.py) takes, beside `gray`:

    hint_ab      float32 [N,2,R,R]  a*, b* (CIELAB units) at hinted render-size pixels, else 0
    hint_mask    float32 [N,1,R,R]  1 where a hint is, else 0
    global_hint  float32 [N,Q+1]    an a*b* histogram over the Q bins + a "given" flag (optional input)
    temperature  float32 [1]        the annealed mean's T

All zeros (and the default temperature) is automatic colouring. Users give
points as (x, y, a, b) in the input image's own pixels; `rasterise_hints`
puts each on a small square at render size, as training simulated clicks.
A reference photo becomes its lightness-free a*b* histogram over the same
bins (`reference_histogram`). This module is numpy only: runtime/ never
imports torch.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from retint.errors import EngineError

HINT_AB_NAME = "hint_ab"
HINT_MASK_NAME = "hint_mask"
GLOBAL_HINT_NAME = "global_hint"
TEMPERATURE_NAME = "temperature"
CONTROL_NAMES = (HINT_AB_NAME, HINT_MASK_NAME, GLOBAL_HINT_NAME, TEMPERATURE_NAME)

# A hint covers (2 * this + 1)^2 render-size pixels: the middle of the patch
# sizes training simulated (1 to 7 pixels).
HINT_HALF_WIDTH = 1
# a* and b* of a hint are clipped to this (the bins' reach).
HINT_AB_LIMIT = 110.0
# A reference photo is shrunk to this side before its histogram is taken.
REFERENCE_SIDE = 128
TEMPERATURE_RANGE = (0.01, 10.0)

Hint = tuple[float, float, float, float]  # x, y (input pixels), a*, b* (CIELAB)


@dataclass(frozen=True)
class ColourBins:
    """The a*b* bins of an artefact (from its metadata), and its default temperature."""

    centres: np.ndarray  # float32 [Q,2]
    default_temperature: float
    global_hint: bool  # whether the graph takes a global hint input

    @property
    def count(self) -> int:
        """How many a*b* bins the distribution head predicts over."""
        return int(self.centres.shape[0])


def bins_of(colour_bins: dict) -> ColourBins | None:
    """The bins an artefact's `colour_bins` metadata describes (None when empty: a regression)."""
    if not colour_bins:
        return None
    try:
        centres = np.asarray(colour_bins["centres"], np.float32).reshape(-1, 2)
        return ColourBins(centres=centres, default_temperature=float(colour_bins["default_temperature"]),
                          global_hint=bool(colour_bins.get("global_hint", False)))
    except (KeyError, TypeError, ValueError) as error:
        raise EngineError(f"malformed colour_bins metadata: {error}") from error


@dataclass(frozen=True)
class ColourControls:
    """The extra inputs of one batch, ready to feed."""

    hint_ab: np.ndarray
    hint_mask: np.ndarray
    global_hint: np.ndarray | None
    temperature: np.ndarray

    def feeds(self) -> dict[str, np.ndarray]:
        """Input name -> array, for the inputs this graph has, in the graph's input order
        (export/deploy.control_examples)."""
        feeds = {HINT_AB_NAME: self.hint_ab, HINT_MASK_NAME: self.hint_mask}
        if self.global_hint is not None:
            feeds[GLOBAL_HINT_NAME] = self.global_hint
        feeds[TEMPERATURE_NAME] = self.temperature
        return feeds

    @staticmethod
    def from_feeds(feeds: dict[str, np.ndarray]) -> "ColourControls":
        """The inverse of `feeds`."""
        return ColourControls(feeds[HINT_AB_NAME], feeds[HINT_MASK_NAME], feeds.get(GLOBAL_HINT_NAME),
                              feeds[TEMPERATURE_NAME])

    def part(self, start: int, stop: int) -> "ColourControls":
        """The controls of images start..stop of the batch."""
        return ColourControls(self.hint_ab[start:stop], self.hint_mask[start:stop],
                              None if self.global_hint is None else self.global_hint[start:stop],
                              self.temperature)


def check_temperature(temperature: float) -> float:
    """The temperature as a float, or EngineError when it is outside TEMPERATURE_RANGE."""
    low, high = TEMPERATURE_RANGE
    if not (low <= float(temperature) <= high):
        raise EngineError(f"temperature {temperature} is outside {low}..{high}")
    return float(temperature)


def rasterise_hints(hints: Sequence[Sequence[Hint]] | None, image_size: tuple[int, int], count: int,
                    render_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points per image -> (hint_ab [N,2,R,R], hint_mask [N,1,R,R]). `image_size` is (height, width)
    of the inputs; `hints` has one list per image (or is None: no hints)."""
    hint_ab = np.zeros((count, 2, render_size, render_size), np.float32)
    hint_mask = np.zeros((count, 1, render_size, render_size), np.float32)
    if hints is None:
        return hint_ab, hint_mask
    if len(hints) != count:
        raise EngineError(f"hints: expected one list per image ({count}), got {len(hints)}")
    height, width = image_size
    for index, points in enumerate(hints):
        for point in points:
            x, y, a, b = _checked_point(point, width, height)
            column = min(render_size - 1, max(0, int((x + 0.5) * render_size / width)))
            row = min(render_size - 1, max(0, int((y + 0.5) * render_size / height)))
            top, left = max(0, row - HINT_HALF_WIDTH), max(0, column - HINT_HALF_WIDTH)
            bottom, right = row + HINT_HALF_WIDTH + 1, column + HINT_HALF_WIDTH + 1
            hint_ab[index, 0, top:bottom, left:right] = np.clip(a, -HINT_AB_LIMIT, HINT_AB_LIMIT)
            hint_ab[index, 1, top:bottom, left:right] = np.clip(b, -HINT_AB_LIMIT, HINT_AB_LIMIT)
            hint_mask[index, 0, top:bottom, left:right] = 1.0
    return hint_ab, hint_mask


def _checked_point(point: Sequence[float], width: int, height: int) -> Hint:
    try:
        x, y, a, b = (float(value) for value in point)
    except (TypeError, ValueError) as error:
        raise EngineError(f"a hint must be (x, y, a, b) numbers, got {point!r}") from error
    if not all(np.isfinite((x, y, a, b))):
        raise EngineError(f"a hint must hold finite numbers, got {point!r}")
    if not (0 <= x < width and 0 <= y < height):
        raise EngineError(f"hint at ({x:g}, {y:g}) is outside the {width}x{height} image")
    return x, y, a, b


def reference_thumbnail(reference_rgb: np.ndarray) -> np.ndarray:
    """A reference photo (uint8 RGB [H,W,3]) shrunk to at most REFERENCE_SIDE a side: all that its
    histogram reads, so a caller may keep this instead of the photo (the histogram is the same)."""
    height, width = reference_rgb.shape[:2]
    scale = min(1.0, REFERENCE_SIDE / max(height, width))
    if scale >= 1.0:
        return reference_rgb
    return cv2.resize(reference_rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


def reference_histogram(reference_rgb: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """A reference photo (uint8 RGB [H,W,3]) -> its global hint [Q+1]: the share of its pixels
    nearest each bin, and the flag 1."""
    if not isinstance(reference_rgb, np.ndarray) or reference_rgb.dtype != np.uint8 \
            or reference_rgb.ndim != 3 or reference_rgb.shape[2] != 3 or min(reference_rgb.shape[:2]) < 1:
        raise EngineError("a reference must be a uint8 RGB image shaped [H,W,3]")
    small = np.ascontiguousarray(reference_thumbnail(reference_rgb))
    key = hashlib.blake2b(repr(small.shape).encode() + small.tobytes()
                          + np.ascontiguousarray(centres, np.float32).tobytes(), digest_size=16).digest()
    with _histogram_lock:
        cached = _histograms.get(key)
        if cached is not None:
            _histograms.move_to_end(key)
            return cached.copy()
    ab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)[:, 1:]
    # The nearest bin by |c|^2 - 2 ab.c (|ab|^2 is the same for every bin): a matrix product, where
    # the pairwise differences would build a [pixels, bins, 2] array.
    distances = (centres ** 2).sum(1)[None] - 2.0 * ab @ centres.T
    counts = np.bincount(distances.argmin(1), minlength=len(centres)).astype(np.float32)
    histogram = np.concatenate([counts / counts.sum(), [1.0]]).astype(np.float32)
    with _histogram_lock:
        _histograms[key] = histogram
        while len(_histograms) > REFERENCE_HISTOGRAMS_KEPT:
            _histograms.popitem(last=False)
    return histogram.copy()


# A batch gives every call the same reference photo: its histogram is taken once (the photo is
# known by a digest of its thumbnail's pixels), not once per call (benchmarks/README.md,
# "Reference palette", has the cost of both).
REFERENCE_HISTOGRAMS_KEPT = 8
_histograms: OrderedDict[bytes, np.ndarray] = OrderedDict()
_histogram_lock = threading.Lock()


def guide_refusal(model_name: str, bins: ColourBins | None, given: Sequence[str]) -> str:
    """Why the model named `model_name` (its bins: None for a regression model) cannot take the
    guides `given` ("hints", "temperature", "reference"), or '': the one wording of that refusal
    for the engine, colorize-batch and colorize-serve."""
    if not given:
        return ""
    if bins is None:
        return (f"{model_name} predicts one colour per pixel (a regression model): it takes no "
                f"{', '.join(given)}; colour model v2 artefacts do")
    if "reference" in given and not bins.global_hint:
        return (f"{model_name} has no global-hint input (trained with --no-global-hint): it takes no reference "
                f"photo")
    return ""


def colour_controls(bins: ColourBins, count: int, image_size: tuple[int, int], render_size: int,
                    hints: Sequence[Sequence[Hint]] | None = None, temperature: float | None = None,
                    reference: np.ndarray | None = None) -> ColourControls:
    """The extra inputs for a batch of `count` images of `image_size` (height, width)."""
    hint_ab, hint_mask = rasterise_hints(hints, image_size, count, render_size)
    global_hint = None
    if bins.global_hint:
        global_hint = np.zeros((count, bins.count + 1), np.float32)
        if reference is not None:
            global_hint[:] = reference_histogram(reference, bins.centres)
    elif reference is not None:
        raise EngineError(guide_refusal("this engine", bins, ["reference"]))
    value = check_temperature(bins.default_temperature if temperature is None else temperature)
    return ColourControls(hint_ab, hint_mask, global_hint, np.array([value], np.float32))
