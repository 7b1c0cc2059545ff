"""Synthetic but photo-like test images, made on the fly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def learnable_colour_image(size: int, seed: int) -> np.ndarray:
    """RGB uint8 whose colour is a fixed function of its lightness
    (dark -> blue, bright -> orange), so a model can learn it quickly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    t = (np.sin(6 * x + rng.uniform(0, 6)) + np.cos(5 * y + rng.uniform(0, 6))) / 4 + 0.5
    t = cv2.GaussianBlur(t.astype(np.float32), (5, 5), 1)
    rgb = np.stack([t**0.7, t * 0.8, (1 - t) * 0.9 + 0.05 * t], -1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def natural_like_image(height: int, width: int, seed: int) -> np.ndarray:
    """RGB uint8 with smooth colour regions, edges and texture, like a photo."""
    rng = np.random.default_rng(seed)
    low = rng.random((max(2, height // 32), max(2, width // 32), 3)).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(max(2, min(height, width) // 10), max(3, min(height, width) // 3)))
        cv2.circle(image, centre, radius, rng.random(3).tolist(), -1)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def grey_photo(height: int, width: int, seed: int = 1) -> np.ndarray:
    """A photo-like grey uint8 image: `natural_like_image` without its colour."""
    return np.asarray(Image.fromarray(natural_like_image(height, width, seed)).convert("L"))


def write_rgb(path: Path, rgb: np.ndarray, params: list[int] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params or []):
        raise RuntimeError(f"could not write {path}")
    return path


def learnable_dataset(folder: Path, count: int = 16, size: int = 64) -> Path:
    for index in range(count):
        write_rgb(folder / f"img{index:02d}.png", learnable_colour_image(size, index))
    return folder


def grey_photos(folder: Path, names: dict[str, int], size: tuple[int, int] = (48, 64)) -> Path:
    """Grey PNGs at `folder`/name (sub-folders made), each `grey_photo` of its seed; `folder`."""
    for name, seed in names.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / name), grey_photo(*size, seed))
    return folder
