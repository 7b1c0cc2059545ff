"""One reference photo of a colorize-batch run, as read at the start: what every input it guides
carries (`naming.PlannedOutput.reference`) and its manifest line records (`batch/reference.py`
reads and assigns them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ReferencePhoto:
    """One reference file, as read at the start: its path, its bytes' sha256, its thumbnail."""

    path: str  # absolute, as the user's path resolved at the start
    sha256: str
    pixels: bytes = field(repr=False)  # the thumbnail, uint8 RGB, row-major
    shape: tuple[int, int] = (0, 0)  # the thumbnail's (height, width)

    def rgb(self) -> np.ndarray:
        """The thumbnail, uint8 RGB [h,w,3]: what the engine's `reference=` takes."""
        return np.frombuffer(self.pixels, np.uint8).reshape(*self.shape, 3)

    @property
    def identity(self) -> tuple[str, str]:
        """(sha256, path): how a Ray work unit names it (`ReferenceTable.photos`)."""
        return self.sha256, self.path

    def recorded(self) -> dict[str, str]:
        """What a manifest line records of it."""
        return {"path": self.path, "sha256": self.sha256}
