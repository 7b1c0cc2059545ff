"""Colour photos on disk, without torch: find them, decode one (a grey or unreadable file is a
status, never a crash) and resize one whole for scoring. Training's data (`model/data.py`) and
`colorize-bench quality`, which scores an ONNX or TensorRT engine where torch is not installed,
share them.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from retint.media import IMAGE_SUFFIXES

STATUS_OK = 0
STATUS_UNREADABLE = 1
STATUS_GREY = 2

# A photo whose channels differ by less than this (mean over pixels, in
# 0..255 levels) is taken as grey: it teaches nothing about colour.
GREY_MEAN_CHANNEL_SPREAD = 1.0


def find_images(folders: tuple[str, ...] | list[str]) -> list[Path]:
    """Every image file below the given folders (or the files themselves), sorted."""
    found: set[Path] = set()
    for entry in folders:
        root = Path(entry)
        if root.is_file():
            if root.suffix.lower() in IMAGE_SUFFIXES:
                found.add(root)
            continue
        for directory, _, names in os.walk(root, followlinks=False):
            for name in names:
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    found.add(Path(directory) / name)
    return sorted(found)


def decode_colour(path: Path) -> tuple[np.ndarray | None, int]:
    """RGB uint8 [H,W,3] and STATUS_OK, or (None, why not)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None, STATUS_UNREADABLE
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.shape[0] < 2 or image.shape[1] < 2:
        return None, STATUS_UNREADABLE
    probe = image[:: max(1, image.shape[0] // 128), :: max(1, image.shape[1] // 128)].astype(np.int16)
    spread = (np.abs(probe[..., 0] - probe[..., 1]) + np.abs(probe[..., 1] - probe[..., 2])).mean()
    if spread < GREY_MEAN_CHANNEL_SPREAD:
        return None, STATUS_GREY
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), STATUS_OK


def resize_for_validation(image: np.ndarray, size: int) -> np.ndarray:
    """The whole photo resized to size x size (what the model card reports on)."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
