"""Colour one large photo tile by tile: its cost is its own pixels, not the engine's float planes.

The fused graph runs its colour maths in float32 over the whole photo at
once, some 30 bytes a pixel (2.5 GB for 64 MP, benchmarks/README.md), and
refuses a side over its limit (8192). A photo of more than
LARGE_PHOTO_PIXELS, or with a side over that limit, is coloured by the
engine's stages instead (`LargePhotos.colour`):

- predict: the chroma at render size R, from the photo reduced (area
  average, uint8) to at most R x PREDICT_BLOCKS a side. The lightness stage's
  own area filter then averages blocks of the reduced photo: the lightness
  of each block's mean grey instead of the mean of its lightnesses, a
  fraction of a CIELAB unit on photographs;
- compose, one tile at a time (about TILE_SIDE a side, plus a margin that
  is computed and dropped): the tile's own full-resolution grey with the
  render-size chroma resampled for that tile, so that the compose stage's
  bilinear upsampling puts on each pixel the chroma the whole photo's
  would (exactly at the render grid's knots; between them the resampled
  grid is itself a bilinear interpolation, which differs from the whole
  photo's at most by a level or so where the chroma bends);
- each tile goes straight into one Pillow RGB image, the output the encoder
  takes: the photo's grey (1 byte a pixel) and that image (4) are all that
  is ever held at full size.

Hints and uncertainty maps need the whole photo at once (they are the
fused or staged engine's whole-image calls): a photo with hints, or a run
with --uncertainty, is coloured whole, as before, within the engine's limits.
"""

from __future__ import annotations

import math
import threading
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from retint.runtime import Engine, Engines
from retint.runtime.metadata import SizeLimits
from retint.runtime.split import StagedEngine

LARGE_PHOTO_PIXELS = 12_000_000  # above this a photo is coloured by tiles
TILE_SIDE = 768  # a tile's side (the photo's sides are split evenly into about this much)
TILE_MARGIN = 16  # pixels computed on each inner side of a tile and dropped: the bilinear edge's
PREDICT_BLOCKS = 8  # the reduced photo's side, in render sizes


class LargePhotos:
    """Which photos are coloured by tiles, and colouring them (see the module doc); one at a time,
    since one photo's tiles already keep every core busy."""

    def __init__(self, staged: Callable[[], Engine], limits: SizeLimits):
        self._staged = staged
        self._engine: StagedEngine | None = None
        self.limits = limits
        self._lock = threading.Lock()

    @classmethod
    def of(cls, engines: Engines) -> "LargePhotos | None":
        """For a run's engines: None where the artefact has no stage files beside it (its large
        photos are then coloured whole, within the engine's limits)."""
        if engines.artefact.stages is None:
            return None
        main = engines.main
        return cls((lambda: main) if isinstance(main, StagedEngine) else engines.by_stages, main.spec.limits)

    def wants(self, height: int, width: int) -> bool:
        """Whether a photo of this size is coloured by tiles (its sides must still be min_side)."""
        large = height * width > LARGE_PHOTO_PIXELS or max(height, width) > self.limits.max_side
        return large and min(height, width) >= self.limits.min_side

    def colour(self, gray: np.ndarray, reference: np.ndarray | None = None) -> Image.Image:
        """The photo `gray` (uint8 [H,W]) coloured, as a Pillow RGB image; `reference` as the
        engine's `predict` takes it. Raises EngineError as the engine does."""
        with self._lock:
            if self._engine is None:
                engine = self._staged()
                assert isinstance(engine, StagedEngine)  # Engines.by_stages opens one
                self._engine = engine
            return colour_by_tiles(self._engine, gray, reference)


def colour_by_tiles(engine: StagedEngine, gray: np.ndarray, reference: np.ndarray | None = None,
                    tile_side: int = TILE_SIDE) -> Image.Image:
    """See the module doc."""
    height, width = gray.shape
    ab = engine.predict(reduced_for_predict(gray, engine.spec.render_size), reference=reference)[0]
    output = Image.new("RGB", (width, height))
    column_spans = [(span, resampling(width, span[2], span[3], ab.shape[2])) for span in _spans(width, tile_side)]
    for top, bottom, upper, lower in _spans(height, tile_side):
        rows_ab = resampled(ab, resampling(height, upper, lower, ab.shape[1]), axis=1)
        for (left, right, first, last), columns in column_spans:
            tile_ab = resampled(rows_ab, columns, axis=2)
            rgb = engine.compose(gray[upper:lower, first:last], tile_ab[None])[0]
            kept = rgb[top - upper: bottom - upper, left - first: right - first]
            output.paste(Image.fromarray(np.ascontiguousarray(kept), "RGB"), (left, top))
    return output


def reduced_for_predict(gray: np.ndarray, render_size: int) -> np.ndarray:
    """The photo area-reduced to at most render_size x PREDICT_BLOCKS a side (each side on its
    own: the lightness stage resizes each to render_size anyway)."""
    height, width = gray.shape
    most = render_size * PREDICT_BLOCKS
    if height <= most and width <= most:
        return gray
    return cv2.resize(gray, (min(width, most), min(height, most)), interpolation=cv2.INTER_AREA)


def _spans(length: int, tile_side: int) -> list[tuple[int, int, int, int]]:
    """(start, end) of each tile along a side, split evenly, and the (first, last) computed for it:
    TILE_MARGIN more on each inner side, every tile's the same length (shifted inward at the
    edges), so that the compose stage sees one shape and reuses its buffers."""
    count = max(1, math.ceil(length / tile_side))
    edges = [round(index * length / count) for index in range(count + 1)]
    computed = min(length, math.ceil(length / count) + 2 * TILE_MARGIN)
    spans = []
    for start, end in zip(edges, edges[1:]):
        first = min(max(0, start - TILE_MARGIN), length - computed)
        spans.append((start, end, first, first + computed))
    return spans


def resampling(length: int, start: int, end: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, fraction) for each of `grid` new knots: the new grid, knot i = (1 - fraction) x
    old[lower] + fraction x old[upper], is the one that a bilinear upsampling from `grid` to the
    tile [start, end) of a side of `length` pixels turns into what that of the old grid to the
    whole side gives there (half-pixel centres, edges clamped, as the compose stage's Resize)."""
    span = end - start
    knots = (np.arange(grid) + 0.5) * span / grid - 0.5  # where the tile's upsampling puts each knot
    source = np.clip((start + knots + 0.5) * grid / length - 0.5, 0, grid - 1)
    lower = np.floor(source).astype(np.int64)
    return lower, np.minimum(lower + 1, grid - 1), (source - lower).astype(np.float32)


def resampled(ab: np.ndarray, weights: tuple[np.ndarray, np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """`ab` [2, r, r] resampled along `axis` (1: rows, 2: columns) by `resampling`'s weights."""
    lower, upper, fraction = weights
    shape = [1, 1, 1]
    shape[axis] = -1
    fraction = fraction.reshape(shape)
    return (np.take(ab, lower, axis=axis) * (1 - fraction) + np.take(ab, upper, axis=axis) * fraction).astype(np.float32)
