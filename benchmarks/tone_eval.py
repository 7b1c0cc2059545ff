"""How often the tone rule errs, on a labelled set: colour photos, real prints, and tonings of the photos.

Every file is classified the way colorize-batch does it (`retint.batch.decode.decode`,
the same colour probe), so the rates are the product's. The synthetic
prints (`retint.benchmarks.toning`) are one toning per colour photo, in turn,
from a fixed seed, written as JPEGs to a folder (kept with `keep`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from retint.batch.decode import AlreadyColour, DecodeFailure, decode, jpeg_colour_probe
from retint.batch.tone import tone_spread
from retint.benchmarks.toning import TONINGS, tone
from retint.errors import InputError
from retint.media import IMAGE_SUFFIXES

TONING_SEED = 0


def _images(folders: tuple[Path, ...]) -> list[Path]:
    paths = sorted(p for folder in folders for p in Path(folder).rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return paths


def _probe(path: Path) -> np.ndarray:
    """The pixels colorize-batch's tone rule sees for this file (its reduced JPEG decode included)."""
    data = path.read_bytes()
    with Image.open(path) as image:
        if image.format in ("JPEG", "MPO"):
            return jpeg_colour_probe(data)
        return np.asarray(image.convert("RGB"))


def taken_for_colour(path: Path) -> bool | None:
    """What colorize-batch decides for this file: True colour (skipped), False monochrome, None unreadable."""
    try:
        decode(path, max_pixels=400_000_000, include_colour=False)
    except AlreadyColour:
        return True
    except DecodeFailure:
        return None
    return False


def write_tonings(colour_photos: list[Path], folder: Path) -> list[Path]:
    """One toning per colour photo, taken from TONINGS in turn with a fixed seed, written as JPEGs
    into `folder`; their paths."""
    rng = np.random.default_rng(TONING_SEED)
    written = []
    for index, path in enumerate(colour_photos):
        toning = TONINGS[index % len(TONINGS)]
        rgb = np.asarray(Image.open(path).convert("RGB"))
        target = folder / f"{toning}--{path.stem}.jpg"
        Image.fromarray(tone(rgb, toning, rng)).save(target, quality=95)
        written.append(target)
    return written


def tone_report(colour: tuple[Path, ...], prints: tuple[Path, ...], tonings: bool = True,
                keep: Path | None = None) -> dict:
    """How often the tone rule errs on the colour photos, the real prints and (with `tonings`) tonings
    of the photos: counts and error rate per group, and each misjudged file with its statistic."""
    colour_photos = _images(colour)
    real_prints = _images(prints)
    if not colour_photos and not real_prints:
        raise InputError("no images found in the --colour or --prints folders")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(keep) if keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        synthetic = write_tonings(colour_photos, folder) if tonings else []
        groups = {"colour photos": (colour_photos, True), "real prints": (real_prints, False),
                  "synthetic prints": (synthetic, False)}
        report: dict = {"groups": {}, "errors": []}
        for name, (paths, truth) in groups.items():
            wrong, unreadable = 0, 0
            for path in paths:
                decided = taken_for_colour(path)
                if decided is None:
                    unreadable += 1
                elif decided != truth:
                    wrong += 1
                    report["errors"].append({"group": name, "file": str(path),
                                             "statistic": round(tone_spread(_probe(path)), 3)})
            counted = len(paths) - unreadable
            report["groups"][name] = {"files": len(paths), "unreadable": unreadable, "wrong": wrong,
                                      "error_rate": wrong / counted if counted else None,
                                      "expected": "colour" if truth else "monochrome"}
    return report
