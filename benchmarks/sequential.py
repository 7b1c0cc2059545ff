"""The naive baseline colorize-batch is measured against (issue 4, benchmark b).

One file at a time: read it, convert with scikit-image, run the generator in
PyTorch eager mode, convert back with scikit-image, write a JPEG. Nothing
overlaps, nothing is batched. Needs torch and scikit-image (train, dev extras).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np


def colourise_sequentially(checkpoint: Path, sources: list[Path], output: Path) -> dict:
    """Colour `sources` into `output` by the naive baseline (one file at a time, nothing overlapped):
    the image count, seconds and images per second."""
    import torch
    from skimage import color

    from retint.model.checkpoint import load_generator

    generator = load_generator(checkpoint)
    render_size = generator.retint_config.render_size
    output.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    for index, path in enumerate(sources):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        rgb = np.repeat(gray[..., None], 3, axis=-1) / 255.0
        lightness = color.rgb2lab(rgb)[..., 0]
        small = cv2.resize(lightness.astype(np.float32), (render_size, render_size), interpolation=cv2.INTER_AREA)
        with torch.no_grad():
            ab = generator(torch.from_numpy(small / 50.0 - 1.0)[None, None])[0].numpy() * 110.0
        ab_full = cv2.resize(ab.transpose(1, 2, 0), (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
        coloured = color.lab2rgb(np.dstack([lightness, ab_full]))
        out = (coloured * 255.0 + 0.5).astype(np.uint8)
        cv2.imwrite(str(output / f"{index:05d}.jpg"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    seconds = time.perf_counter() - began
    return {"images": len(sources), "seconds": seconds, "images_per_second": len(sources) / seconds}
