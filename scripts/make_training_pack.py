"""Shrink training folders into a small pack for a short GPU lease.

    python scripts/make_training_pack.py photos=CORPUS/photos materials=CORPUS/materials \
        objects=CORPUS/objects -o PACK --leave-out gcompris-explore_monuments --leave-out tuxpaint

Each NAME=FOLDER becomes PACK/NAME. Photos keep their file names (so --holdout
prefixes still work) with their longest side at most --max-side, re-encoded
as JPEG; images with an alpha channel stay PNG (cut-outs for --paste-objects)
at most --cut-out-side. Photos (in the folder named photos) whose name starts
with a --leave-out prefix are not copied: held-out sources never travel with the training data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(2, round(width * scale)), max(2, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="NAME=FOLDER")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--cut-out-side", type=int, default=256)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--side-of", action="append", default=[], metavar="NAME=SIDE",
                        help="another --max-side for one folder (textures compress poorly)")
    parser.add_argument("--leave-out", action="append", default=[],
                        help="a held-out source's name prefix, left out of the folder named photos")
    arguments = parser.parse_args()
    sides = {name: int(side) for name, _, side in (item.partition("=") for item in arguments.side_of)}
    total = 0
    for spec in arguments.folders:
        name, _, folder = spec.partition("=")
        target = arguments.output / name
        target.mkdir(parents=True, exist_ok=True)
        kept = left = 0
        for path in sorted(Path(folder).iterdir()):
            if path.suffix.lower() not in SUFFIXES:
                continue
            if name == "photos" and any(path.name.startswith(prefix) for prefix in arguments.leave_out):
                left += 1
                continue
            image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if image is None:
                continue
            if image.ndim == 3 and image.shape[2] == 4:
                ok, data = cv2.imencode(".png", shrink(image, arguments.cut_out_side), [cv2.IMWRITE_PNG_COMPRESSION, 9])
                out = target / (path.stem + ".png")
            else:
                ok, data = cv2.imencode(".jpg", shrink(image, sides.get(name, arguments.max_side)),
                                        [cv2.IMWRITE_JPEG_QUALITY, arguments.quality])
                out = target / (path.stem + ".jpg")
            if ok:
                data.tofile(out)
                total += data.size
                kept += 1
        print(f"{name}: {kept} files, {left} left out")
    print(f"{total / 1e6:.1f} MB in {arguments.output}")


if __name__ == "__main__":
    main()
