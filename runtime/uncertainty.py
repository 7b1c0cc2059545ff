"""Per-pixel colour intervals at run time: full-size maps, widths, and muting uncertain chroma.

The artefact's interval stage (`NAME.interval.onnx`, see export/deploy.py)
gives, at render size, a_low, a_high, b_low, b_high in CIELAB units: calibrated
so that on photos like its calibration set at most a fraction alpha of the
pixels has its true (a, b) outside (the artefact's `uncertainty` metadata
says alpha, lambda and the sources). Everything here is numpy and OpenCV.

Width, everywhere in retint, is the interval's width averaged over a and b:
((a_high - a_low) + (b_high - b_low)) / 2, in CIELAB units.
"""

from __future__ import annotations

import cv2
import numpy as np

# A pixel whose interval is wider than this is "wide": the manifest's wide_fraction counts
# them and --mute-uncertain shrinks their chroma. 40 CIELAB units is about the distance from
# grey to a clearly coloured sky or lawn (the held-out truths' mean chroma is about 20).
WIDE_INTERVAL = 40.0
# The heat map's colour scale: width 0 (sure) to this many units (or more) is
# dark blue -> green -> yellow (OpenCV's viridis).
HEAT_MAP_MAX_WIDTH = 80.0


def interval_width(interval: np.ndarray, channels_last: bool = False) -> np.ndarray:
    """[N,4,h,w] (or [N,h,w,4] with channels_last) -> width [N,h,w], float32."""
    if channels_last:
        a_low, a_high, b_low, b_high = (interval[..., i] for i in range(4))
    else:
        a_low, a_high, b_low, b_high = (interval[:, i] for i in range(4))
    return ((a_high - a_low) + (b_high - b_low)) * np.float32(0.5)


def upsample_interval(interval: np.ndarray, height: int, width: int) -> np.ndarray:
    """Render-size [N,4,R,R] -> full-size [N,H,W,4] float32, bilinear with half-pixel centres
    (what the compose stage does to the chroma, so interval and colour line up)."""
    return np.stack([cv2.resize(np.ascontiguousarray(item.transpose(1, 2, 0)), (width, height),
                                interpolation=cv2.INTER_LINEAR) for item in interval])


def mute_uncertain(ab: np.ndarray, interval: np.ndarray, wide: float = WIDE_INTERVAL) -> np.ndarray:
    """Chroma [N,2,R,R] scaled toward grey where the interval is wider than `wide`: by wide / width.

    Where the model cannot tell green grass from brown earth, it says less, not something
    wrong; narrow intervals (sky, foliage the model is sure of) keep their colour."""
    width = interval_width(interval)
    factor = np.minimum(np.float32(1.0), np.float32(wide) / np.maximum(width, np.float32(1e-6)))
    return (ab * factor[:, None]).astype(np.float32)


def width_summary(width: np.ndarray, wide: float = WIDE_INTERVAL) -> dict[str, float]:
    """What a manifest line says of one photo's uncertainty."""
    return {"mean_width": round(float(width.mean()), 3),
            "wide_fraction": round(float((width > wide).mean()), 4), "wide_threshold": wide}


def heat_map(width: np.ndarray) -> np.ndarray:
    """Width [H,W] -> BGR uint8 [H,W,3] heat map on the documented scale (for cv2.imencode)."""
    levels = np.clip(width * (255.0 / HEAT_MAP_MAX_WIDTH), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS)
