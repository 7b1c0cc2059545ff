"""README's guides pictures: grey | automatic | 5 hints (or a reference) | the original, of one colour photo.

    python scripts/guides_picture.py PHOTO OUT.jpg [--width 320] [--hints 5] [--seed 0]
    python scripts/guides_picture.py PHOTO OUT.jpg --reference OTHER_PHOTO

The photo is resized to `--width`, made grey from its own Lab L, coloured by the bundled model
automatically and with `--hints` true-colour hints (seeded random pixels of chroma 10 or more, the
mean a*b* of the 5x5 patch around each, as `colorize-bench quality --hints` takes them); each hint
is marked by a small ring on the third panel. With `--reference`, the third panel is coloured with
that photo's palette instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from retint.runtime import load_engine


def true_hints(rgb: np.ndarray, count: int, seed: int) -> list[tuple[float, float, float, float]]:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    patch = cv2.blur(lab[..., 1:], (5, 5))
    rows, columns = np.nonzero(np.hypot(lab[..., 1], lab[..., 2]) >= 10)
    chosen = np.random.default_rng(seed).choice(len(rows), size=min(count, len(rows)), replace=False)
    return [(float(columns[k]), float(rows[k]), float(patch[rows[k], columns[k], 0]), float(patch[rows[k], columns[k], 1]))
            for k in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--hints", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", type=Path, default=None, help="a colour photo: its palette, not hints")
    arguments = parser.parse_args()
    bgr = cv2.imread(str(arguments.photo), cv2.IMREAD_COLOR)
    height = round(bgr.shape[0] * arguments.width / bgr.shape[1])
    rgb = cv2.cvtColor(cv2.resize(bgr, (arguments.width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    lightness = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0]
    grey_lab = np.stack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=-1)
    grey = np.clip(cv2.cvtColor(grey_lab, cv2.COLOR_Lab2RGB)[..., 0] * 255 + 0.5, 0, 255).astype(np.uint8)
    hints = true_hints(rgb, arguments.hints, arguments.seed) if arguments.reference is None else []
    with load_engine() as engine:
        automatic = engine.colorize(grey)[0]
        if arguments.reference is not None:
            reference = cv2.cvtColor(cv2.imread(str(arguments.reference), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            hinted = engine.colorize(grey, reference=reference)[0].copy()
        else:
            hinted = engine.colorize(grey, hints=[hints])[0].copy()
    for x, y, _, _ in hints:
        cv2.circle(hinted, (int(x), int(y)), 5, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.circle(hinted, (int(x), int(y)), 6, (0, 0, 0), 1, cv2.LINE_AA)
    gap = np.full((height, 4, 3), 255, np.uint8)
    panels = [np.repeat(grey[..., None], 3, axis=2), automatic, hinted, rgb]
    sheet = np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1)
    cv2.imwrite(str(arguments.output), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
