"""A strip-organised TIFF read a band of rows at a time.

Pillow decodes a compressed TIFF whole through libtiff: a 144-megapixel RGB
scan costs 576 MB (four bytes a pixel) before a single row can be reduced.
But a TIFF stores its rows in strips, each compressed on its own (LZW,
Deflate, PackBits, JPEG with shared tables; a horizontal predictor works
within a row), so a band of strips is a small TIFF of its own: here each
band's strips are copied into a new TIFF whose directory repeats the
original's layout tags with the band's height, offsets and byte counts, and
Pillow decodes that. The band is cropped to the rows asked for, so the
strips are what Pillow's whole decode would give, row for row (tests check
every format).

Tiled TIFFs, planar (one plane per channel) ones, BigTIFF, old-style JPEG
and a TIFF stored as a single strip are not read this way: `tiff_strips`
answers None for them and the caller decodes the whole image.
"""

from __future__ import annotations

import io
import struct
from typing import Iterator

from PIL import Image, TiffImagePlugin, TiffTags

STRIP_BYTES = 2 * 1024 * 1024  # the decoded row bytes of one band, about
SAMPLE_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2}  # other modes: one byte a sample

IMAGE_WIDTH, IMAGE_LENGTH = 256, 257
STRIP_OFFSETS, ROWS_PER_STRIP, STRIP_BYTE_COUNTS = 273, 278, 279
COMPRESSION, PLANAR_CONFIGURATION, TILE_WIDTH = 259, 284, 322
OLD_STYLE_JPEG = 6
# The tags that say how the strips' bytes become pixels; the band's directory repeats them (the
# others, EXIF and ICC among them, describe the photo and are read from the original).
LAYOUT_TAGS = (
    IMAGE_WIDTH, 258, COMPRESSION, 262, 266, 277, ROWS_PER_STRIP, PLANAR_CONFIGURATION, 317, 320, 338, 339,
    347, 529, 530, 531, 532,
)  # width, bits per sample, compression, photometric, fill order, samples per pixel, rows per
# strip, planar configuration, predictor, colour map, extra samples, sample format, JPEG tables,
# YCbCr coefficients, subsampling and positioning, reference black and white


def tiff_strips(data: bytes, image: Image.Image, rows_multiple: int = 1,
                strip_bytes: int = STRIP_BYTES) -> Iterator[Image.Image] | None:
    """Bands of `image` (the first page of the TIFF in `data`, opened, not loaded), top to bottom,
    each an Image in `image.mode` with its palette; every band but the last is a multiple of
    `rows_multiple` rows high. None where this TIFF cannot be read by bands (see the module
    doc). A truncated or corrupt strip raises OSError when its band is decoded."""
    if not isinstance(image, TiffImagePlugin.TiffImageFile):
        return None
    layout = _layout(image, len(data))
    if layout is None:
        return None
    offsets, counts, rows_per_strip = layout
    width, height = image.size
    if rows_per_strip >= height:
        return None
    bytes_per_row = max(1, width * len(image.getbands()) * SAMPLE_BYTES.get(image.mode, 1))
    rows = max(rows_multiple, strip_bytes // bytes_per_row // rows_multiple * rows_multiple)
    return _bands(data, image, offsets, counts, rows_per_strip, rows)


def _layout(image: TiffImagePlugin.TiffImageFile, size: int) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """(strip offsets, strip byte counts, rows per strip) of a TIFF that can be read by bands."""
    tags = image.tag_v2
    if getattr(tags, "_bigtiff", False):
        return None
    if TILE_WIDTH in tags or tags.get(PLANAR_CONFIGURATION, 1) != 1 or tags.get(COMPRESSION, 1) == OLD_STYLE_JPEG:
        return None
    offsets, counts = tags.get(STRIP_OFFSETS), tags.get(STRIP_BYTE_COUNTS)
    if not isinstance(offsets, tuple) or not isinstance(counts, tuple) or len(offsets) != len(counts):
        return None
    rows_per_strip = int(tags.get(ROWS_PER_STRIP, image.size[1]))
    if rows_per_strip < 1 or len(offsets) != -(-image.size[1] // rows_per_strip):
        return None
    if any(offset < 0 or count < 0 or offset + count > size for offset, count in zip(offsets, counts)):
        raise OSError("image file is truncated (a strip lies beyond the end of the file)")
    return offsets, counts, rows_per_strip


def _bands(data: bytes, image: TiffImagePlugin.TiffImageFile, offsets: tuple[int, ...], counts: tuple[int, ...],
           rows_per_strip: int, rows: int) -> Iterator[Image.Image]:
    width, height = image.size
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        first, last = top // rows_per_strip, (bottom - 1) // rows_per_strip
        band_top = first * rows_per_strip
        band_height = min(height, (last + 1) * rows_per_strip) - band_top
        small = _band_tiff(data, image, offsets[first: last + 1], counts[first: last + 1], band_height)
        with Image.open(io.BytesIO(small)) as decoded:
            decoded.load()
            band = decoded.crop((0, top - band_top, width, bottom - band_top))
        if band.mode != image.mode or band.size != (width, bottom - top):
            raise OSError(f"a band of this TIFF decodes as {band.mode} {band.size}, not {image.mode}")
        yield band


def _band_tiff(data: bytes, image: TiffImagePlugin.TiffImageFile, offsets: tuple[int, ...], counts: tuple[int, ...],
               band_height: int) -> bytes:
    """A TIFF of `band_height` rows whose strips are the given strips of `data`, in the original's
    byte order (16-bit samples are stored in it) and with its layout tags."""
    source = image.tag_v2
    prefix = source.prefix
    magic = b"\x2a\x00" if prefix == b"II" else b"\x00\x2a"
    directory = TiffImagePlugin.ImageFileDirectory_v2(ifh=prefix + magic + b"\0\0\0\0")
    for tag in LAYOUT_TAGS:
        if tag in source:
            directory[tag] = source[tag]
            directory.tagtype[tag] = source.tagtype[tag]
    directory[IMAGE_LENGTH] = band_height
    directory.tagtype[IMAGE_LENGTH] = TiffTags.LONG
    relative, position = [], 0
    for count in counts:  # Pillow's writer adds the directory's end to these offsets
        relative.append(position)
        position += count
    directory[STRIP_OFFSETS] = tuple(relative)
    directory.tagtype[STRIP_OFFSETS] = TiffTags.LONG
    directory[STRIP_BYTE_COUNTS] = tuple(counts)
    directory.tagtype[STRIP_BYTE_COUNTS] = TiffTags.LONG
    header = prefix + magic + struct.pack("<I" if prefix == b"II" else ">I", 8)
    view = memoryview(data)
    return b"".join([header, directory.tobytes(8), *(view[offset: offset + count]
                                                     for offset, count in zip(offsets, counts))])
