"""A reference photo's palette, on every model: which colours the photo's world has, by lightness.

A reference (a colour photo of the same place and time) is shrunk to a
thumbnail of at most REFERENCE_SIDE a side (`reference_thumbnail`) and its
pixels gathered into a hundred or two (L*, a*, b*) bins, each with its share of
the pixels (`Palette`). Two uses:

- models without a global-hint input (the bundled regression model, a v2
  model trained without one): each pixel of the model's a*b* grid takes the
  palette's colour for its lightness, the bins weighted by a kernel over L*
  and by how near their a*b* are to the model's own guess there, so that of
  the reference's colours at that lightness the model's choice among them
  wins (grass and sky of one lightness stay apart); where the reference has
  few pixels of that lightness the model keeps more of its own colour
  (`Palette.apply`);
- suggestions at a clicked point: the palette's colour families at the
  pixel's lightness (`Palette.families`).

A v2 model with a global-hint input takes the reference as its trained
input instead: the share of the thumbnail's pixels nearest each of the
model's a*b* bins (`reference_histogram`). Every setting below was chosen by
measurement on training photos (benchmarks/README.md, "Guides on every
model"). numpy and OpenCV only.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from retint.errors import EngineError
from retint.runtime.guides.propagation import level_index, lightness_kernel

# A reference photo is shrunk to this side before its palette (or histogram) is taken.
REFERENCE_SIDE = 128
# The palette's bins: L* and a*b* steps.
BIN_LIGHTNESS = 8.0
BIN_AB = 10.0
# The kernel over L* (CIELAB units): bins this far from a pixel's lightness count e^-0.5 as much.
LIGHTNESS_WIDTH = 5.0
# The kernel over a*b* around the model's guess: a bin this far from it counts e^-0.5 as much.
MODEL_AB_WIDTH = 20.0
# A pixel takes the palette's colour in full where the reference has at least about this share of its
# pixels near that lightness (weight = density / (density + this)).
DENSITY_KNEE = 0.02
# The palette is applied on a grid of at most this side, then upsampled to the model's (128 scored
# the same and cost twice as much).
PALETTE_SIDE = 64
# Palettes (and histograms) of recent references are kept, known by a digest of their thumbnail.
PALETTES_KEPT = 8


def check_reference(reference_rgb: object) -> np.ndarray:
    """The reference as uint8 RGB [H,W,3]; EngineError for anything else."""
    if not isinstance(reference_rgb, np.ndarray) or reference_rgb.dtype != np.uint8 \
            or reference_rgb.ndim != 3 or reference_rgb.shape[2] != 3 or min(reference_rgb.shape[:2]) < 1:
        raise EngineError("a reference must be a uint8 RGB image shaped [H,W,3]")
    return reference_rgb


def reference_thumbnail(reference_rgb: np.ndarray) -> np.ndarray:
    """A reference photo (uint8 RGB [H,W,3]) shrunk to at most REFERENCE_SIDE a side: all that its
    palette and histogram read, so a caller may keep this instead of the photo."""
    height, width = reference_rgb.shape[:2]
    scale = min(1.0, REFERENCE_SIDE / max(height, width))
    if scale >= 1.0:
        return reference_rgb
    return cv2.resize(reference_rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


def _thumbnail_lab(reference_rgb: np.ndarray) -> np.ndarray:
    small = np.ascontiguousarray(reference_thumbnail(check_reference(reference_rgb)))
    return cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _digest(reference_rgb: np.ndarray, *extra: bytes) -> bytes:
    small = np.ascontiguousarray(reference_thumbnail(check_reference(reference_rgb)))
    return hashlib.blake2b(repr(small.shape).encode() + small.tobytes() + b"".join(extra), digest_size=16).digest()


class _Kept:
    """A small thread-safe LRU of values computed from a reference (a batch gives every call the
    same reference: its palette is taken once, not once per call)."""

    def __init__(self) -> None:
        self._values: OrderedDict[bytes, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes):
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key: bytes, value: object) -> None:
        with self._lock:
            self._values[key] = value
            while len(self._values) > PALETTES_KEPT:
                self._values.popitem(last=False)


_palettes = _Kept()
_histograms = _Kept()


@dataclass(frozen=True, eq=False)
class Palette:
    """A reference's colours: bins of (L*, a*, b*) [S,3] (their pixels' mean) and each bin's share of
    the reference's pixels [S]."""

    colours: np.ndarray
    shares: np.ndarray

    @staticmethod
    def of(reference_rgb: np.ndarray) -> "Palette":
        """The palette of a reference photo (uint8 RGB), computed once per reference (kept by digest)."""
        key = _digest(reference_rgb)
        kept = _palettes.get(key)
        if kept is not None:
            return kept  # type: ignore[return-value]
        lab = _thumbnail_lab(reference_rgb)
        keys = np.stack([np.round(lab[:, 0] / BIN_LIGHTNESS), np.round(lab[:, 1] / BIN_AB),
                         np.round(lab[:, 2] / BIN_AB)], axis=1).astype(np.int32)
        _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        colours = np.zeros((len(counts), 3), np.float64)
        np.add.at(colours, inverse, lab)
        palette = Palette((colours / counts[:, None]).astype(np.float32), (counts / len(lab)).astype(np.float32))
        _palettes.put(key, palette)
        return palette

    @cached_property
    def _by_level(self) -> np.ndarray:
        """[LIGHTNESS_LEVELS, S]: each bin's share weighted by the kernel over L* at L* 0, 1, ..., 100."""
        return (lightness_kernel(self.colours[:, 0], LIGHTNESS_WIDTH) * self.shares[None]).astype(np.float32)

    @cached_property
    def _chroma(self) -> np.ndarray:
        """The bins' a*b* [S,2], contiguous (a strided view makes numpy's matrix products ten times slower)."""
        return np.ascontiguousarray(self.colours[:, 1:])

    def apply(self, ab: np.ndarray, lightness: np.ndarray) -> np.ndarray:
        """The model's a*b* [2,r,r] guided by the palette (module doc), `lightness` [r,r] in L*."""
        side_y, side_x = lightness.shape
        small = (min(side_x, PALETTE_SIDE), min(side_y, PALETTE_SIDE))
        resized = small != (side_x, side_y)

        def shrink(plane: np.ndarray) -> np.ndarray:
            plane = plane.astype(np.float32)
            return cv2.resize(plane, small, interpolation=cv2.INTER_AREA) if resized else plane

        by_lightness = self._by_level[level_index(shrink(lightness).reshape(-1))]  # [P,S]
        model = np.stack([shrink(ab[0]).reshape(-1), shrink(ab[1]).reshape(-1)], axis=1)  # [P,2]
        chroma = self._chroma
        # |model - bin|^2 as |model|^2 - 2 model.bin + |bin|^2: a matrix product, not a [P,S,2] array.
        distance = (model ** 2).sum(1, keepdims=True) - 2.0 * model @ chroma.T + (chroma ** 2).sum(1)[None]
        kernel = by_lightness * np.exp(-0.5 / MODEL_AB_WIDTH ** 2 * np.maximum(distance, 0.0))
        total = kernel.sum(1, keepdims=True)
        guided = kernel @ chroma / np.maximum(total, 1e-12)
        density = by_lightness.sum(1, keepdims=True)
        # Where no bin is near the model's guess (the kernel sums to ~0), the model keeps its colour.
        weight = np.where(total > 1e-12, density / (density + DENSITY_KNEE), 0.0)
        out = (weight * guided + (1.0 - weight) * model).T.reshape(2, small[1], small[0])
        if resized:
            out = np.stack([cv2.resize(plane, (side_x, side_y), interpolation=cv2.INTER_LINEAR) for plane in out])
        return out.astype(np.float32)

    def families_at(self, lightness: float) -> tuple[np.ndarray, np.ndarray]:
        """(a*b* [S,2], weight [S]): the palette's colours and how much each counts at this L* (for
        `suggestions.colour_families`), weights summing to 1 (all zero where no bin is near)."""
        weights = np.exp(-0.5 * ((lightness - self.colours[:, 0]) / LIGHTNESS_WIDTH) ** 2) * self.shares
        total = float(weights.sum())
        return self.colours[:, 1:], (weights / total if total > 1e-12 else weights)


def reference_histogram(reference_rgb: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """A reference photo (uint8 RGB [H,W,3]) -> a global-hint model's input [Q+1]: the share of its
    thumbnail's pixels nearest each of the model's a*b* bins `centres` [Q,2], and the flag 1."""
    key = _digest(reference_rgb, np.ascontiguousarray(centres, np.float32).tobytes())
    kept = _histograms.get(key)
    if kept is not None:
        return kept.copy()  # type: ignore[attr-defined]
    ab = _thumbnail_lab(reference_rgb)[:, 1:]
    # The nearest bin by |c|^2 - 2 ab.c (|ab|^2 is the same for every bin): a matrix product, where
    # the pairwise differences would build a [pixels, bins, 2] array.
    distances = (centres ** 2).sum(1)[None] - 2.0 * ab @ centres.T
    counts = np.bincount(distances.argmin(1), minlength=len(centres)).astype(np.float32)
    histogram = np.concatenate([counts / counts.sum(), [1.0]]).astype(np.float32)
    _histograms.put(key, histogram)
    return histogram.copy()
