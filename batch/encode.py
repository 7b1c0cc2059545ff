"""Encode a coloured image in its output format, with the input's metadata.

JPEG, PNG and WebP outputs carry the input's EXIF (minus the orientation,
which the pixels already have); they and TIFF carry its RGB ICC profile; PNG,
TIFF and WebP keep the alpha channel; JPEG and BMP cannot hold one.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from retint.batch.decode import DecodedImage

FORMAT_OF_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
                    ".bmp": "BMP", ".webp": "WEBP"}
ALPHA_FORMATS = {"PNG", "TIFF", "WEBP"}
EXIF_FORMATS = {"JPEG", "PNG", "WEBP"}
ICC_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}


def output_suffix(input_path: Path, output_format: str) -> str:
    """The output's suffix: --format's, else the input's own where retint writes that format
    (GIF, AVIF and HEIC inputs are written as PNG: lossless, and it holds their alpha)."""
    if output_format == "jpg":
        return ".jpg"
    if output_format == "png" or input_path.suffix.lower() not in FORMAT_OF_SUFFIX:
        return ".png"
    return input_path.suffix


def encode(rgb: np.ndarray, decoded: DecodedImage, suffix: str, quality: int) -> bytes:
    image_format = FORMAT_OF_SUFFIX[suffix.lower()]
    image = Image.fromarray(rgb, "RGB")
    if decoded.alpha is not None and image_format in ALPHA_FORMATS:
        image.putalpha(Image.fromarray(decoded.alpha, "L"))
    options: dict = {}
    if decoded.exif and image_format in EXIF_FORMATS:
        options["exif"] = decoded.exif
    if decoded.icc and image_format in ICC_FORMATS:
        options["icc_profile"] = decoded.icc
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = quality
    if image_format == "TIFF":
        options["compression"] = "tiff_lzw"
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()
