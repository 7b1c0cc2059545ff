"""Is an image already in colour? Sepia, cyanotype, split-toned, faded and yellowed prints count as monochrome.

A toned print has one colour per lightness: the toner, the paper's
yellowing or the fading of an albumen print gives the highlights one tint
and the shadows another, but two pixels of equal lightness share a colour.
A colour photo does not: at one lightness it holds a red door and a green
leaf. So, on the image shrunk to at most 64 px (which also averages away
grain and JPEG chroma noise), the pixels are put into 16 bands of CIE L*,
each band's median a*b* is its tint, and each pixel's distance from its
band's tint is measured. The statistic is the 99th percentile of those
distances (Lab units): below `COLOUR_SPREAD_THRESHOLD` the image is
monochrome, to be coloured.

`colorize-bench tone` measures the rule through colorize-batch's own decode
path on real colour photos, real toned prints and tonings of the photos;
the figures, and how they compare with the previous rule, are in the
README ("The tone rule"). The threshold sits just above the highest print.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOUR_SPREAD_THRESHOLD = 6.0
PROBE_SIDE = 64
LIGHTNESS_BANDS = 16


def tone_spread(rgb: np.ndarray) -> float:
    """The statistic above for an RGB uint8 image [H,W,3]."""
    height, width = rgb.shape[:2]
    scale = PROBE_SIDE / max(height, width)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    bands = np.clip((lab[:, 0] * (LIGHTNESS_BANDS / 100.0)).astype(np.int64), 0, LIGHTNESS_BANDS - 1)
    ab = lab[:, 1:].astype(np.float64)
    tint = np.zeros((LIGHTNESS_BANDS, 2))
    for band in np.unique(bands):
        tint[band] = np.median(ab[bands == band], axis=0)
    distance = np.hypot(*(ab - tint[bands]).T)
    return float(np.percentile(distance, 99))


def is_colour(rgb: np.ndarray) -> bool:
    """Whether the image is a colour photo rather than a monochrome or toned print: its tone spread
    reaches COLOUR_SPREAD_THRESHOLD."""
    return tone_spread(rgb) >= COLOUR_SPREAD_THRESHOLD
