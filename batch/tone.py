"""Is an image already in colour? Sepia and other toned scans count as monochrome.

The rule, on the image shrunk to at most 256 px: take every pixel's CIE a*b*
chroma vector, and the image's mean tint direction u (the mean of a*b*). A
toned print has one hue, so its a*b* vectors lie along u (stronger or weaker,
but the same direction); a colour photo spreads over several hues. The
statistic is the 95th percentile of each pixel's distance from that ray (its
distance across u, or its whole chroma if it points away from u). Below
`COLOUR_SPREAD_THRESHOLD` (Lab units) the image is monochrome: a grey or
toned scan, to be coloured. JPEG noise in a grey scan stays below about 2.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOUR_SPREAD_THRESHOLD = 6.0
PROBE_SIDE = 256


def tone_spread(rgb: np.ndarray) -> float:
    """The statistic above for an RGB uint8 image [H,W,3]."""
    height, width = rgb.shape[:2]
    scale = PROBE_SIDE / max(height, width)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    ab = lab[..., 1:].reshape(-1, 2).astype(np.float64)
    mean = ab.mean(axis=0)
    norm = float(np.hypot(*mean))
    if norm < 1e-6:
        distance = np.hypot(ab[:, 0], ab[:, 1])
    else:
        direction = mean / norm
        along = ab @ direction
        across = np.abs(ab[:, 0] * direction[1] - ab[:, 1] * direction[0])
        distance = np.where(along >= 0, across, np.hypot(ab[:, 0], ab[:, 1]))
    return float(np.percentile(distance, 95))


def is_colour(rgb: np.ndarray) -> bool:
    return tone_spread(rgb) >= COLOUR_SPREAD_THRESHOLD
