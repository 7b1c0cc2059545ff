"""The guides of one engine call, checked, and applied between the generator and the compose.

    lightness stage -> generator stage (fed the hint planes / global hint where the model takes
    them) -> `BatchGuides.apply` on the a*b* at the generator's size, guided by the render-size
    lightness -> compose stage (the input's full-resolution lightness kept)

`BatchGuides.of` checks a call's hints against its images (EngineError for a hint outside its
image) and takes the reference's palette, on every model (a model with a global-hint input has
had the reference's histogram as its input too: measured, the two together beat either alone);
`apply` guides each image's a*b*: the palette first, then the hints, so that a hint holds exactly
over whatever colours are there. numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from retint.runtime.guides.hints import Hint, checked_hints, grid_cell
from retint.runtime.guides.palette import Palette
from retint.runtime.guides.propagation import propagate_hints


@dataclass(frozen=True)
class BatchGuides:
    """What guides a batch's colours after the generator: each image's hints (in its own pixels) and
    the reference's palette (None: no reference)."""

    hints: tuple[tuple[Hint, ...], ...] | None
    palette: Palette | None
    image_size: tuple[int, int]  # (height, width) of the batch's images

    @staticmethod
    def of(count: int, image_size: tuple[int, int], hints: Sequence[Sequence[Sequence[float]]] | None,
           reference: np.ndarray | None) -> "BatchGuides | None":
        """The guides of a call on `count` images of `image_size`, or None for automatic colouring
        (no hints, or only empty lists, and no reference)."""
        checked = checked_hints(hints, count, image_size) if hints is not None else None
        if checked is not None and not any(checked):
            checked = None
        palette = Palette.of(reference) if reference is not None else None
        if checked is None and palette is None:
            return None
        return BatchGuides(checked, palette, image_size)

    def part(self, start: int, stop: int) -> "BatchGuides":
        """The guides of images start..stop of the batch."""
        return BatchGuides(None if self.hints is None else self.hints[start:stop], self.palette, self.image_size)

    def apply(self, ab: np.ndarray, lightness: np.ndarray) -> np.ndarray:
        """ab float32 [N,2,r,r] (the generator's) guided; `lightness` [N,1,R,R] is the lightness stage's
        output (L*/50 - 1 at render size R)."""
        guided = np.empty_like(ab, dtype=np.float32)
        side = ab.shape[-1]
        for index in range(ab.shape[0]):
            level = (lightness[index, 0].astype(np.float32) + 1.0) * 50.0
            if level.shape != ab.shape[2:]:
                level = cv2.resize(level, (ab.shape[3], ab.shape[2]), interpolation=cv2.INTER_AREA)
            colours = ab[index].astype(np.float32)
            if self.palette is not None:
                colours = self.palette.apply(colours, level)
            if self.hints is not None and self.hints[index]:
                cells = [(*grid_cell(x, y, self.image_size, side), a, b) for x, y, a, b in self.hints[index]]
                colours = propagate_hints(colours, level, cells)
            guided[index] = colours
        return guided
