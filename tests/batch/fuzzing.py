"""Seeded mutation fuzzing of the five input formats colorize-batch reads, and its hints file.

Each format starts from a small valid file made here (never from disk
outside the test), then gets one or more mutations: generic ones (bit
flips, overwritten runs, truncation, duplicated slices, "interesting"
32-bit values) and structure-aware ones that get past the first integrity
check, so that the decoder's deeper code runs on damaged data:

- JPEG: its EXIF block's IFD entries get another type (ASCII where a
  RATIONAL belongs, and so on), another count or an offset past the end;
- PNG: a chunk's data is damaged and its CRC recomputed, chunks are
  duplicated, dropped or added (a zTXt, a huge iCCP);
- TIFF: IFD entries get another type, count or value;
- WebP: RIFF chunk payloads and sizes, and the EXIF chunk's IFD entries;
- video: a small H.264 Matroska file, damaged past its header;
- the --hints file (JSON): extreme numbers, deep nesting, repeated or
  absolute keys, bytes that are not UTF-8, and the generic damage.

Everything is a pure function of its seed, so a failure names the seed that
reproduces it.
"""

from __future__ import annotations

import io
import json
import random
import re
import struct
import zlib
from fractions import Fraction
from typing import Callable

import numpy as np
from PIL import Image

from imagemaker import grey_photo

FORMATS = ("jpeg", "png", "tiff", "webp", "video")
SUFFIX = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "video": ".mkv"}
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000)


def _exif(seed: int) -> bytes:
    """An EXIF block with every common value type, and sub-IFDs (Exif, GPS)."""
    exif = Image.Exif()
    exif[0x010F] = "RetintCam"  # Make, ASCII
    exif[0x0110] = f"Model {seed}"  # Model, ASCII
    exif[0x0112] = 1 + seed % 8  # Orientation, SHORT
    exif[0x011A] = 300.0  # XResolution, RATIONAL
    exif[0x011B] = 300.0
    exif[0x0128] = 2  # ResolutionUnit
    exif[0x0131] = "a scanner"
    exif[0x0132] = "2001:02:03 04:05:06"
    exif.get_ifd(0x8769)[0x9003] = "1950:01:01 00:00:00"  # DateTimeOriginal
    exif.get_ifd(0x8769)[0x829A] = 0.01  # ExposureTime
    exif.get_ifd(0x8825)[0x0001] = "N"  # GPSLatitudeRef
    return exif.tobytes()


def base_files(seed: int = 0) -> dict[str, bytes]:
    """One small valid file per format."""
    grey = Image.fromarray(grey_photo(24, 32, seed + 1))
    files: dict[str, bytes] = {}

    buffer = io.BytesIO()
    grey.save(buffer, format="JPEG", quality=80, exif=_exif(seed))
    files["jpeg"] = buffer.getvalue()

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a scan")
    info.add_text("Comment", "compressed comment " * 8, zip=True)
    info.add_itxt("Description", "an international text", lang="en", tkey="Description")
    buffer = io.BytesIO()
    grey.convert("LA").save(buffer, format="PNG", pnginfo=info, dpi=(300, 300), exif=_exif(seed))
    files["png"] = buffer.getvalue()

    buffer = io.BytesIO()
    grey.save(buffer, format="TIFF", compression="tiff_lzw", dpi=(300, 300),
              tiffinfo={0x010E: "a description", 0x0131: "a scanner", 0x013B: "an artist"})
    files["tiff"] = buffer.getvalue()

    buffer = io.BytesIO()
    grey.convert("RGB").save(buffer, format="WEBP", lossless=seed % 2 == 0, quality=70, exif=_exif(seed))
    files["webp"] = buffer.getvalue()

    files["video"] = small_video(seed)
    return files


def small_video(seed: int, frames: int = 4, size: tuple[int, int] = (32, 32),
                container_format: str = "matroska") -> bytes:
    """A tiny H.264 file (moving block on noise), size = (width, height), Matroska unless told."""
    import av

    rng = np.random.default_rng(seed)
    width, height = size
    buffer = io.BytesIO()
    container = av.open(buffer, "w", format=container_format)
    video = container.add_stream("libx264", rate=10)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.options = {"preset": "ultrafast", "tune": "zerolatency"}
    for index in range(frames):
        grey = (rng.random((height, width)) * 60 + 80).astype(np.uint8)
        grey[4:12, index * 4:index * 4 + 8] = 230
        frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, -1), format="rgb24")
        frame.pts, frame.time_base = index, Fraction(1, 10)
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    container.close()
    return buffer.getvalue()


# Generic mutations ---------------------------------------------------------------------------

def flip_bits(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)


def overwrite_run(data: bytearray, rng: random.Random) -> None:
    start = rng.randrange(len(data))
    length = rng.randint(1, 32)
    data[start:start + length] = bytes(rng.randrange(256) for _ in range(min(length, len(data) - start)))


def truncate(data: bytearray, rng: random.Random) -> None:
    del data[rng.randrange(1, len(data)):]


def duplicate_slice(data: bytearray, rng: random.Random) -> None:
    start = rng.randrange(len(data))
    piece = data[start:start + rng.randint(1, 256)]
    at = rng.randrange(len(data))
    data[at:at] = piece


def interesting_value(data: bytearray, rng: random.Random) -> None:
    if len(data) < 8:
        return
    position = rng.randrange(len(data) - 4)
    data[position:position + 4] = struct.pack(rng.choice((">I", "<I")), rng.choice(INTERESTING))


GENERIC: tuple[Callable[[bytearray, random.Random], None], ...] = (
    flip_bits, overwrite_run, truncate, duplicate_slice, interesting_value)


# Structure-aware mutations -------------------------------------------------------------------

def _ifd_entries(data: bytes | bytearray, tiff_start: int) -> list[tuple[int, str]]:
    """(absolute offset of each 12-byte IFD entry, byte order) of the TIFF structure at tiff_start,
    following IFD0, its next IFD and the Exif/GPS pointers (bounded)."""
    header = bytes(data[tiff_start:tiff_start + 8])
    if len(header) < 8:
        return []
    if header[:2] == b"II":
        order = "<"
    elif header[:2] == b"MM":
        order = ">"
    else:
        return []
    entries: list[tuple[int, str]] = []
    pending = [struct.unpack(order + "I", header[4:8])[0]]
    visited: set[int] = set()
    while pending and len(visited) < 8:
        offset = pending.pop()
        start = tiff_start + offset
        if offset in visited or start + 2 > len(data):
            continue
        visited.add(offset)
        (count,) = struct.unpack(order + "H", bytes(data[start:start + 2]))
        for index in range(min(count, 64)):
            entry = start + 2 + 12 * index
            if entry + 12 > len(data):
                break
            entries.append((entry, order))
            tag, kind, _, value = struct.unpack(order + "HHII", bytes(data[entry:entry + 12]))
            if tag in (0x8769, 0x8825) and kind in (4, 13):
                pending.append(value)
        next_at = start + 2 + 12 * min(count, 64)
        if next_at + 4 <= len(data):
            (following,) = struct.unpack(order + "I", bytes(data[next_at:next_at + 4]))
            if following:
                pending.append(following)
    return entries


def mutate_ifd_entry(data: bytearray, rng: random.Random, tiff_start: int) -> bool:
    """Give one IFD entry a wrong type, count or value; False when there is none to find."""
    entries = _ifd_entries(data, tiff_start)
    if not entries:
        return False
    entry, order = rng.choice(entries)
    field = rng.randrange(4)
    if field == 0:  # the type: any of TIFF's 12 (or an unknown one), usually not the right one
        data[entry + 2:entry + 4] = struct.pack(order + "H", rng.choice([*range(1, 14), 0, 14, 0xFFFF]))
    elif field == 1:  # the count
        data[entry + 4:entry + 8] = struct.pack(order + "I", rng.choice([0, 1, 2, 3, 255, 100_000, 0xFFFFFFFF]))
    elif field == 2:  # the value or offset
        data[entry + 8:entry + 12] = struct.pack(order + "I", rng.choice(INTERESTING))
    else:  # the tag itself: a known tag with the entry's (wrong) type and value
        data[entry:entry + 2] = struct.pack(order + "H", rng.choice(
            [0x0100, 0x0101, 0x0102, 0x0103, 0x0106, 0x0111, 0x0112, 0x0115, 0x0116, 0x0117, 0x011A, 0x0128,
             0x0140, 0x0152, 0x8769, 0x8825, 0x8773, 0x9003, 0xA005]))
    return True


def _exif_start(data: bytes | bytearray) -> int | None:
    """Where the TIFF header of an embedded EXIF block begins."""
    at = bytes(data).find(b"Exif\x00\x00")
    if at >= 0:
        return at + 6
    for marker in (b"MM\x00*", b"II*\x00"):
        at = bytes(data).find(marker)
        if at >= 0:
            return at
    return None


def png_chunks(data: bytes | bytearray) -> list[tuple[int, int, bytes]]:
    """(offset, data length, type) of each chunk."""
    chunks, offset = [], 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", bytes(data[offset:offset + 4]))
        chunks.append((offset, length, bytes(data[offset + 4:offset + 8])))
        offset += 12 + length
    return chunks


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def mutate_png(data: bytearray, rng: random.Random) -> None:
    """Damage a chunk behind a valid CRC, or add, drop or duplicate chunks."""
    chunks = png_chunks(data)
    if not chunks:
        flip_bits(data, rng)
        return
    offset, length, kind = rng.choice(chunks)
    action = rng.randrange(5)
    if action == 0 and length:  # damage the payload, recompute the CRC
        payload = bytearray(data[offset + 8:offset + 8 + length])
        rng.choice(GENERIC[:2])(payload, rng)
        data[offset:offset + 12 + length] = _png_chunk(kind, bytes(payload))
    elif action == 1:  # a wrong length (the CRC then lands elsewhere)
        data[offset:offset + 4] = struct.pack(">I", rng.choice(INTERESTING))
    elif action == 2:  # duplicate the chunk (two IHDRs, two PLTEs...)
        data[offset:offset] = data[offset:offset + 12 + length]
    elif action == 3 and kind != b"IHDR":  # drop it
        del data[offset:offset + 12 + length]
    else:  # add an ancillary chunk after IHDR: big text, a damaged profile, EXIF with wrong types
        extra = rng.choice([
            _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"x" * rng.choice([10, 1 << 16]))),
            _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(bytes(rng.randrange(256) for _ in range(200)))),
            _png_chunk(b"eXIf", bytes(_damaged_exif(rng))),
            _png_chunk(b"pHYs", bytes(rng.randrange(256) for _ in range(rng.choice([9, 3, 20])))),
            _png_chunk(b"tIME", bytes(rng.randrange(256) for _ in range(7))),
        ])
        at = 8 + 12 + png_chunks(data)[0][1]
        data[at:at] = extra


def _damaged_exif(rng: random.Random) -> bytearray:
    block = bytearray(_exif(rng.randrange(100))[6:])  # the TIFF structure, without "Exif\0\0"
    for _ in range(rng.randint(1, 3)):
        mutate_ifd_entry(block, rng, 0)
    return block


def riff_chunks(data: bytes | bytearray) -> list[tuple[int, int]]:
    """(offset, payload length) of each chunk of a RIFF (WebP) file."""
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        (length,) = struct.unpack("<I", bytes(data[offset + 4:offset + 8]))
        chunks.append((offset, length))
        offset += 8 + length + (length & 1)
    return chunks


def mutate_webp(data: bytearray, rng: random.Random) -> None:
    if rng.random() < 0.4:
        start = _exif_start(data)
        if start is not None and mutate_ifd_entry(data, rng, start):
            return
    chunks = riff_chunks(data)
    if not chunks:
        flip_bits(data, rng)
        return
    offset, length = rng.choice(chunks)
    if rng.random() < 0.5 and length and offset + 8 < len(data):
        position = offset + 8 + rng.randrange(min(length, len(data) - offset - 8))
        data[position] ^= 1 << rng.randrange(8)
    else:
        data[offset + 4:offset + 8] = struct.pack("<I", rng.choice(INTERESTING))


def mutate(kind: str, original: bytes, seed: int) -> bytes:
    """One mutated file of this format, a pure function of `seed`."""
    rng = random.Random(f"{kind}-{seed}")
    data = bytearray(original)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if not data:
            break
        aware = rng.random() < 0.6
        if kind == "jpeg" and aware:
            start = _exif_start(data)
            if start is None or not mutate_ifd_entry(data, rng, start):
                flip_bits(data, rng)
        elif kind == "tiff" and aware:
            if not mutate_ifd_entry(data, rng, 0):
                flip_bits(data, rng)
        elif kind == "png" and aware:
            mutate_png(data, rng)
        elif kind == "webp" and aware:
            mutate_webp(data, rng)
        elif kind == "video" and aware:
            # Past the EBML header, where the clusters (the frames) are.
            position = rng.randrange(min(200, len(data) - 1), len(data))
            data[position:position + 8] = bytes(rng.randrange(256) for _ in range(8))
        else:
            rng.choice(GENERIC)(data, rng)
    return bytes(data)


# The --hints file -----------------------------------------------------------------------------

# Numbers that JSON allows and a float does not hold, or Python's json refuses to read (over
# 4300 digits): each must be one refusal line, read the way the HTTP API reads it.
HINT_NUMBERS = ("0", "-0", "1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "9" * 400, "9" * 5000,
                "1" + "0" * 4300, "0." + "1" * 5000, "12345678901234567890", "true", "null", "\"12\"", "[]", "{}")


def hints_file(seed: int) -> bytes:
    """A valid --hints file: hints per photo (a*b* and rgb), an entry object, folder references."""
    rng = random.Random(f"hints-{seed}")
    entries: dict[str, object] = {}
    for index in range(rng.randint(1, 5)):
        hints = [{"x": rng.randint(0, 63), "y": rng.randint(0, 47), "a": round(rng.uniform(-60, 60), 2),
                  "b": round(rng.uniform(-60, 60), 2)} if rng.random() < 0.5 else
                 {"x": rng.randint(0, 63), "y": rng.randint(0, 47), "rgb": f"#{rng.randrange(2 ** 24):06x}"}
                 for _ in range(rng.randint(0, 4))]
        entries[f"album{index % 2}/photo{index}.png"] = hints if rng.random() < 0.7 else \
            {"hints": hints, "reference": f"references/ref{index}.jpg"}
    entries["album0/"] = {"reference": "references/album.jpg"}
    entries["album1/"] = {"reference": None}
    return json.dumps(entries, indent=rng.choice((None, 2))).encode()


def mutate_hints(original: bytes, seed: int) -> bytes:
    """One mutated hints file: generic byte damage, or a JSON-aware change that still parses (a number
    replaced by an extreme one, a value nested deep, a key repeated or made absolute, non-UTF-8 bytes)."""
    rng = random.Random(f"hints-mutant-{seed}")
    data = bytearray(original)
    for _ in range(rng.choice((1, 1, 2, 3))):
        choice = rng.random()
        numbers = [match.span() for match in re.finditer(rb"-?\d+(\.\d+)?", data)]
        if choice < 0.45 and numbers:
            start, end = rng.choice(numbers)
            data[start:end] = rng.choice(HINT_NUMBERS).encode()
        elif choice < 0.55:
            depth = rng.choice((10, 1000, 100_000))
            position = data.find(b"[")
            if position >= 0:
                data[position:position + 1] = b"[" * depth + b"[" + b"]" * depth + b","
        elif choice < 0.7:
            keys = [match.group() for match in re.finditer(rb'"[^"]*": ', data)]
            if keys:
                key = rng.choice(keys)
                replacement = rng.choice((key + b"[], " + key, b'"/abs/a.png": ', b'"../a.png": ', b'"./a.png": ',
                                          b'"": ', b'"a/": [{"x": 1, "y": 2, "a": 3, "b": 4}], ' + key))
                position = data.find(key)
                data[position:position + len(key)] = replacement
        elif choice < 0.75:
            position = rng.randrange(len(data) + 1)
            data[position:position] = bytes([rng.choice((0xFF, 0xC3, 0x80, 0xED, 0x00))])
        elif data:
            rng.choice(GENERIC)(data, rng)
    return bytes(data)
