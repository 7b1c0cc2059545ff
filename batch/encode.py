"""Encode a coloured image in its output format, with the input's metadata.

JPEG, PNG and WebP outputs carry the input's EXIF (minus the orientation,
which the pixels already have); they and TIFF carry its RGB ICC profile; PNG,
TIFF and WebP keep the alpha channel; JPEG and BMP cannot hold one.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from retint.batch.decode import DecodedImage

# The one output-format table of colorize-batch's --format and colorize-serve's ?format=:
# a named format's suffix; "keep" writes the input's own format where retint writes it.
SUFFIX_OF_OUTPUT_FORMAT = {"jpg": ".jpg", "png": ".png"}
OUTPUT_FORMATS = ("keep", *SUFFIX_OF_OUTPUT_FORMAT)
# What retint writes: a suffix's Pillow format (its media type is image/<format>).
FORMAT_OF_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
                    ".bmp": "BMP", ".webp": "WEBP"}
# A decoded upload's Pillow format -> the suffix "keep" writes it under (uploads have no trusted name).
SUFFIX_OF_INPUT_FORMAT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "TIFF": ".tif", "BMP": ".bmp",
                          "WEBP": ".webp"}
ALPHA_FORMATS = {"PNG", "TIFF", "WEBP"}
EXIF_FORMATS = {"JPEG", "PNG", "WEBP"}
ICC_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}


def output_suffix(output_format: str, input_suffix: str) -> str:
    """The output's suffix: the named format's, else ("keep") the input's own where retint writes
    that format; GIF, AVIF and HEIC inputs are written as PNG (lossless, and it holds their alpha)."""
    if output_format in SUFFIX_OF_OUTPUT_FORMAT:
        return SUFFIX_OF_OUTPUT_FORMAT[output_format]
    return input_suffix if input_suffix.lower() in FORMAT_OF_SUFFIX else ".png"


def suffix_of_input_format(pillow_format: str | None) -> str:
    """The suffix an upload of this Pillow format keeps (".gif" and the like: not one retint
    writes, so `output_suffix` makes it PNG)."""
    return SUFFIX_OF_INPUT_FORMAT.get(pillow_format or "", f".{(pillow_format or 'unknown').lower()}")


def media_type(suffix: str) -> str:
    """The HTTP media type of an output written under `suffix`."""
    return f"image/{FORMAT_OF_SUFFIX[suffix.lower()].lower()}"


def encode(rgb: np.ndarray | Image.Image, decoded: DecodedImage, suffix: str, quality: int) -> bytes:
    """`rgb` (uint8 [H,W,3], or an RGB image: a large photo's tiles are composed into one, and it
    may get `decoded`'s alpha in place) encoded in the format `suffix` names, carrying `decoded`'s
    alpha, EXIF and ICC profile where that format holds them; `quality` applies to JPEG and WebP."""
    image_format = FORMAT_OF_SUFFIX[suffix.lower()]
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb, "RGB")
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
