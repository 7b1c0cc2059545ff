"""A non-interlaced PNG read a strip of rows at a time.

Pillow decodes a PNG whole: a 150-megapixel RGB scan costs 600 MB in
Pillow's memory before a single row can be converted or reduced. Here the
zlib stream is inflated a strip at a time, and each strip's filtered rows
are unfiltered by Pillow's own decoder: they are wrapped in a small PNG
whose first row is the previous strip's last row, unfiltered (filter type
None), so that the Up, Average and Paeth filters of the strip's first row
see the row they refer to. That small PNG is declared 8-bit with the same
bytes per pixel as the original (the unit those filters work in), so its
decode gives the raw row bytes, which become a strip of the original's own
mode through Pillow's unpacker for that format: the strips are what
Pillow's whole decode would give, row for row (tests check every format).

Interlaced PNGs (Adam7) and 16-bit RGB or RGBA ones (six and eight bytes a
pixel, which no 8-bit PNG format has) are not read this way:
`png_strips` answers None for them and the caller decodes the whole image.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Iterator

from PIL import Image, PngImagePlugin

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples a pixel
# An 8-bit PNG colour type for each byte count a pixel: its decode returns the raw row bytes.
RAW_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
STRIP_BYTES = 2 * 1024 * 1024  # the raw row bytes inflated and unfiltered at once


def png_strips(data: bytes, image: Image.Image, rows_multiple: int = 1,
               strip_bytes: int = STRIP_BYTES) -> Iterator[Image.Image] | None:
    """Strips of `image` (opened from `data`, not loaded), top to bottom, each an Image in
    `image.mode` with its palette and transparency; every strip but the last is a multiple of
    `rows_multiple` rows high. None where this PNG cannot be read by strips (see the module doc).
    A truncated or corrupt stream raises OSError or zlib.error while the strips are taken."""
    if image.format != "PNG" or getattr(image, "n_frames", 1) > 1:
        return None
    header = _header(data)
    if header is None:
        return None
    width, height, bit_depth, colour_type, interlace = header
    mode_and_raw = PngImagePlugin._MODES.get((bit_depth, colour_type))
    if interlace or colour_type not in CHANNELS or mode_and_raw is None or (image.mode, image.size) != (
            mode_and_raw[0], (width, height)):
        return None
    pixel_bytes = max(1, bit_depth * CHANNELS[colour_type] // 8)
    if pixel_bytes not in RAW_COLOUR_TYPE:
        return None
    row_bytes = (width * CHANNELS[colour_type] * bit_depth + 7) // 8
    rows = max(rows_multiple, strip_bytes // (row_bytes + 1) // rows_multiple * rows_multiple)
    return _strips(data, image, mode_and_raw[1], row_bytes, pixel_bytes, rows)


def _header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from IHDR, or None."""
    if not data.startswith(SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, bit_depth, colour_type, interlace


def _chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(type, data) of each chunk, in order, up to IEND."""
    view = memoryview(data)
    offset = len(SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset: offset + 8])
        start = offset + 8
        if kind == b"IEND":
            return
        yield kind, view[start: start + length]
        offset = start + length + 4  # data and CRC


def _idat_payloads(data: bytes) -> Iterator[memoryview]:
    """The IDAT chunks' data, in order (the zlib stream of the default image)."""
    return (payload for kind, payload in _chunks(data) if kind == b"IDAT")


def exif_without_decoding(image: Image.Image, data: bytes) -> None:
    """Let `image.getexif()` answer without decoding the pixels: Pillow's PNG plugin decodes the
    whole image to find an eXIf chunk written after the pixel data; here the chunks are scanned
    for it instead (text chunks after the pixel data, which only a whole decode reads, are then
    not seen)."""
    if image.format == "PNG" and "exif" not in image.info:
        image.info["exif"] = next((payload.tobytes() for kind, payload in _chunks(data) if kind == b"eXIf"), b"")


def _write_chunk(stream: io.BytesIO, kind: bytes, payload: bytes) -> None:
    stream.write(struct.pack(">I", len(payload)) + kind)
    stream.write(payload)
    stream.write(struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind))))


def _unfiltered(filtered: list[bytes], previous: bytes | None, row_bytes: int, pixel_bytes: int) -> memoryview:
    """Raw row bytes of the `filtered` rows (each a filter byte and row_bytes), unfiltered by
    Pillow; `previous` is the raw row above the first (None for the image's first row)."""
    stream = b"".join(filtered if previous is None else [b"\x00", previous, *filtered])
    height = len(stream) // (row_bytes + 1)
    small = io.BytesIO()
    small.write(SIGNATURE)
    _write_chunk(small, b"IHDR", struct.pack(">IIBBBBB", row_bytes // pixel_bytes, height, 8,
                                             RAW_COLOUR_TYPE[pixel_bytes], 0, 0, 0))
    _write_chunk(small, b"IDAT", zlib.compress(stream, 0))
    del stream
    _write_chunk(small, b"IEND", b"")
    small.seek(0)
    raw = memoryview(Image.open(small).tobytes())
    return raw if previous is None else raw[row_bytes:]


def _strips(data: bytes, image: Image.Image, rawmode: str, row_bytes: int, pixel_bytes: int,
            rows_per_strip: int) -> Iterator[Image.Image]:
    width, height = image.size
    inflater = zlib.decompressobj()
    payloads = _idat_payloads(data)
    pending = b""
    previous: bytes | None = None
    done = 0
    while done < height:
        rows = min(rows_per_strip, height - done)
        wanted = rows * (row_bytes + 1)
        parts = [pending[:wanted]]
        have = len(parts[0])
        pending = pending[wanted:]
        while have < wanted:
            source = inflater.unconsumed_tail or next(payloads, None)
            # Output zlib holds back (max_length) comes first, even once the input is all read.
            chunk = inflater.decompress(source or b"", wanted - have)
            if not chunk and source is None:
                raise OSError(f"image file is truncated ({done + have // (row_bytes + 1)} of {height} rows)")
            parts.append(chunk)
            have += len(chunk)
        raw = _unfiltered(parts, previous, row_bytes, pixel_bytes)
        del parts
        previous = raw[-row_bytes:].tobytes()
        strip = Image.frombytes(image.mode, (width, rows), raw, "raw", rawmode)
        if image.mode == "P" and image.palette is not None:
            strip.putpalette(image.palette.tobytes(), image.palette.mode)
        if "transparency" in image.info:
            strip.info["transparency"] = image.info["transparency"]
        done += rows
        yield strip
