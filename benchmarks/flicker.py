"""Flicker index of a coloured video, and colour distance between two outputs.

Flicker index = mean over consecutive frame pairs of |delta ab| (CIE Lab,
averaged over a and b) on the pixels whose grey value changed by less than 2
levels: where the picture stands still, the colour should too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """A video's frames as RGB arrays (only the first `limit` when given), decoded with PyAV."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return frames


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def flicker_index(coloured: list[np.ndarray], grey: list[np.ndarray]) -> float:
    """`coloured` RGB frames and the grey frames they were made from, same length."""
    total, count = 0.0, 0
    previous_ab = _lab(coloured[0])[..., 1:]
    for index in range(1, len(coloured)):
        ab = _lab(coloured[index])[..., 1:]
        still = np.abs(grey[index].astype(np.int16) - grey[index - 1].astype(np.int16)) < 2
        if still.any():
            total += float(np.abs(ab - previous_ab).mean(axis=-1)[still].mean())
            count += 1
        previous_ab = ab
    return total / max(count, 1)


def mean_ciede2000(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """Mean CIEDE2000 between two lists of RGB frames (scikit-image)."""
    from skimage.color import deltaE_ciede2000

    values = [deltaE_ciede2000(_lab(a).astype(np.float64), _lab(b).astype(np.float64)).mean()
              for a, b in zip(first, second)]
    return float(np.mean(values))
