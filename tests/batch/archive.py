"""Build a test archive of photos on the fly, with every kind of bad input."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from retint.batch.manifest import read_manifest

from imagemaker import grey_photo, natural_like_image

CAMERA_MODEL_TAG = 0x0110
ORIENTATION_TAG = 0x0112


def photo(path: Path, seed: int = 1, size=(48, 64), **save) -> Path:
    """A grey photo (size = height, width) saved at `path` with Pillow's `save` options."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey_photo(*size, seed)).save(path, **save)
    return path


def entries_by_name(output: Path) -> dict[str, dict]:
    """The manifest lines of the run in `output`, by their source's file name."""
    entries, _ = read_manifest(output)
    return {os.path.basename(entry["source"]): entry for entry in entries}


def sepia(grey: np.ndarray) -> np.ndarray:
    tone = np.array([1.0, 0.82, 0.62])
    return np.clip(grey[..., None] * tone + np.array([18, 8, 0]), 0, 255).astype(np.uint8)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def build_archive(root: Path) -> dict[str, dict]:
    """Write the archive; returns {relative path: expectations}."""
    expected: dict[str, dict] = {}

    def save(relative: str, image: Image.Image, status: str = "ok", **kwargs) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **kwargs)
        expected[relative] = {"status": status, "size": image.size}

    save("plain.jpg", Image.fromarray(grey_photo(120, 160, 1)), quality=92)
    save("nested/deeper/upper.JPG", Image.fromarray(grey_photo(96, 64, 2)))
    save("nested/grey.png", Image.fromarray(grey_photo(80, 100, 3)))
    save("nested/scan.tif", Image.fromarray(grey_photo(64, 90, 4)))
    save("nested/scan.bmp", Image.fromarray(grey_photo(70, 50, 5)))
    save("nested/scan.webp", Image.fromarray(grey_photo(60, 60, 6)), lossless=True)
    save("rgb-grey.png", Image.fromarray(grey_photo(120, 160, 1)).convert("RGB"))
    save("toned/sepia.jpg", Image.fromarray(sepia(grey_photo(100, 140, 7))), quality=95)
    save("colour/photo.jpg", Image.fromarray(natural_like_image(100, 140, 8)), status="skipped-colour",
         quality=95)

    alpha = Image.fromarray(grey_photo(64, 64, 9)).convert("LA")
    alpha.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))))
    save("alpha.png", alpha)
    expected["alpha.png"]["alpha"] = np.asarray(alpha.getchannel("A"))

    sixteen = (grey_photo(50, 70, 10).astype(np.uint16) * 257)
    deep = Image.fromarray(sixteen)  # uint16 -> mode I;16
    assert deep.mode == "I;16"
    save("deep16.png", deep)
    expected["deep16.png"]["gray"] = (sixteen / 257).round().astype(np.uint8)

    palette = Image.fromarray(grey_photo(40, 60, 11)).convert("P")
    save("palette.png", palette)

    # A camera JPEG stored sideways: orientation 6 = rotate 90 degrees clockwise to display.
    stored = Image.fromarray(grey_photo(60, 100, 12)).convert("RGB")  # 100 wide, 60 high as stored
    exif = Image.Exif()
    exif[CAMERA_MODEL_TAG] = "RetintCam 1"
    exif[ORIENTATION_TAG] = 6
    save("camera/rotated.jpg", stored, exif=exif.tobytes(), icc_profile=srgb_icc(), quality=95)
    expected["camera/rotated.jpg"]["size"] = (60, 100)  # displayed: 60 wide, 100 high

    big = Image.new("L", (2000, 1200), 90)
    save("huge.png", big, status="failed")
    expected["huge.png"]["reason"] = "max-pixels"

    for relative, content, reason in (
        ("bad/empty.jpg", b"", "empty"),
        ("bad/text.jpg", b"this is not a JPEG, just text\n" * 20, "not an image"),
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
        expected[relative] = {"status": "failed", "reason": reason}

    whole = io.BytesIO()
    Image.fromarray(grey_photo(200, 200, 13)).save(whole, format="JPEG", quality=95)
    (root / "bad" / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    expected["bad/truncated.jpg"] = {"status": "failed", "reason": "truncated"}

    portable = io.BytesIO()
    Image.fromarray(grey_photo(30, 30, 14)).save(portable, format="PPM")
    (root / "bad" / "animation.webp").write_bytes(portable.getvalue())  # a PPM under another name
    expected["bad/animation.webp"] = {"status": "failed", "reason": "unsupported format PPM"}

    (root / "notes.txt").write_text("ignored: not an image suffix")
    return expected
