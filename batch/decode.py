"""Decode one input file to what the engine and the encoder need.

Pillow reads the file (opened read-only, once): header checks first (format,
size against --max-pixels, before any pixel is decoded), then the colour
probe, then the grey pixels. JPEGs decode straight to grey (libjpeg's Y
channel via `draft`), and their colour probe is a reduced-scale DCT decode.
A large PNG or strip-organised TIFF is read a band of rows at a time
(`png_strips`, `tiff_strips`), each band converted to grey straight into the
one uint8 full-resolution plane (and, for a colour mode, reduced into the
colour probe), so its decode costs about one byte a pixel, not Pillow's
whole image and its conversions; a reference photo's is reduced band by
band to its thumbnail.
EXIF orientation is applied, so the output has the displayed width and
height; the EXIF block (minus orientation) and an RGB ICC profile are kept
for the output. 16-bit inputs are scaled to 8 bits (outputs are 8-bit);
palette images are expanded; an alpha channel is kept. 32-bit float images
(TIFF) are read on their nominal 0..1 scale; one with values outside it has
no known scale and fails, never a black "ok". A multi-page file colours its
first page and says so. Warnings Pillow raises while reading a file become
notes on that file's manifest line instead of anonymous lines on stderr.
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from retint.batch.png_strips import exif_without_decoding, png_strips
from retint.batch.tiff_strips import tiff_strips
from retint.batch.tone import COLOUR_SPREAD_THRESHOLD, PROBE_SIDE, is_colour, tone_spread

# retint checks the pixel count itself (--max-pixels), from the header.
Image.MAX_IMAGE_PIXELS = None

SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "TIFF", "BMP", "WEBP", "GIF", "AVIF", "HEIF"}
# A PNG text chunk may be large (scanners write whole logs into zTXt): Pillow's 1 MB default
# refused such valid files as "truncated or corrupt". The total stays bounded (MAX_TEXT_MEMORY).
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, 16 * 1024 * 1024)
PngImagePlugin.MAX_TEXT_MEMORY = max(PngImagePlugin.MAX_TEXT_MEMORY, 64 * 1024 * 1024)
ORIENTATION_TAG = 0x0112
TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# A TIFF's "EXIF" is its own IFD, layout tags included; only these describe the photo.
DESCRIPTIVE_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)  # description, make,
# model, software, date, artist, copyright


Decoded = TypeVar("Decoded")

# Float images are nominally 0..1; allow rounding noise either side.
FLOAT_RANGE_SLACK = 1e-3
# From this many pixels a PNG or TIFF is decoded by strips (see the module doc); smaller ones
# whole, which is faster (one pass of Pillow's decoder instead of two).
STRIP_DECODE_PIXELS = 16_000_000


def heif_support() -> bool:
    """True when pillow-heif is installed (its opener is then registered with Pillow)."""
    global _heif_checked
    if _heif_checked is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_checked = True
        except Exception:  # not installed, or a broken install: HEIC inputs then fail with the reason
            _heif_checked = False
    return _heif_checked


_heif_checked: bool | None = None


class DecodeFailure(Exception):
    """This file cannot be coloured; the message is the manifest's reason."""


class UnreadableImage(DecodeFailure):
    """Not an image this tool reads: empty, unknown or unsupported format, truncated or corrupt."""


class ImageTooLarge(DecodeFailure):
    """More pixels than the limit allows (judged from the header, before any pixel is decoded)."""


class AlreadyColour(Exception):
    """The file is a colour photo (see retint.batch.tone)."""


@dataclass
class DecodedImage:
    gray: np.ndarray  # uint8 [H, W], displayed orientation
    alpha: np.ndarray | None
    exif: bytes | None
    icc: bytes | None
    input_format: str
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the decoded image."""
        return self.gray.shape[0], self.gray.shape[1]


_warnings_of_this_thread = threading.local()
_routing_installed = False
_routing_lock = threading.Lock()


def _route_warnings_to_notes() -> None:
    """Once per process: a warning raised while a decode runs on this thread goes to its notes.

    `warnings.catch_warnings` is not thread-safe (it swaps process-wide
    state), and decodes run in a thread pool; a thread-local list is.
    """
    global _routing_installed
    with _routing_lock:
        if _routing_installed:
            return
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            notes = getattr(_warnings_of_this_thread, "notes", None)
            if notes is None:
                return shown(message, category, filename, lineno, file, line)
            text = f"warning: {str(message).splitlines()[0] if str(message) else category.__name__}"
            if text not in notes:
                notes.append(text)

        warnings.showwarning = show
        # Every file's warnings, not only the first file's (the default shows each once).
        warnings.filterwarnings("always", module=r"PIL(\..*)?$")
        _routing_installed = True


def describe_exception(error: BaseException) -> str:
    """An unexpected exception as a manifest reason: its type and the first line of its message."""
    first_line = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def open_regular_file(path: Path, listed: bool = True) -> int:
    """A read-only descriptor on `path`, which must be a regular file when opened.

    The listing saw a regular file, but it may have been swapped since (for a
    FIFO, whose open would block until a writer came, or a device): the open
    never blocks (O_NONBLOCK, which regular files ignore), and the open
    descriptor itself is examined, so a swap between a check and the open
    cannot slip through. `listed` False: a file the user named (a hints file,
    a reference photo), which no listing saw.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise DecodeFailure(f"cannot read the file ({error.strerror or error})") from error
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        os.close(fd)
        raise DecodeFailure(f"cannot read the file ({error.strerror or error})") from error
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise DecodeFailure(not_a_regular_file(mode) + (": it was replaced after the folder was listed"
                                                        if listed else ""))
    return fd


def not_a_regular_file(mode: int) -> str:
    """What a file of this st_mode is, where a regular file was wanted: "not a regular file but a FIFO"."""
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    return "not a regular file but " + next((kind for is_kind, kind in kinds if is_kind(mode)), "a special file")


def read_regular_file(path: Path, listed: bool = True, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (see `open_regular_file`); DecodeFailure otherwise.
    With a `limit`, at most `limit` + 1 bytes: more than `limit` says the file is larger."""
    fd = open_regular_file(path, listed)
    try:
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read() if limit is None else stream.read(limit + 1)
    except OSError as error:
        if error.errno == errno.EAGAIN:  # only a non-regular file says this; kept for clarity
            raise DecodeFailure("not a regular file") from error
        raise DecodeFailure(f"cannot read the file ({error.strerror or error})") from error
    finally:
        os.close(fd)


def decode(path: Path, max_pixels: int, include_colour: bool) -> DecodedImage:
    """Decode the file at `path` (read once, never opened for writing); see `decode_bytes`."""
    if path.suffix.lower() in (".heic", ".heif") and not heif_support():
        raise UnreadableImage("unsupported format: HEIC/HEIF needs pillow-heif (pip install pillow-heif)")
    return decode_bytes(read_regular_file(path), max_pixels, include_colour)


def decode_bytes(data: bytes, max_pixels: int, include_colour: bool) -> DecodedImage:
    """Decode an image file's bytes; raises `DecodeFailure` (or a subclass) with a one-line reason."""
    _route_warnings_to_notes()
    notes: list[str] = []
    _warnings_of_this_thread.notes = notes
    try:
        decoded = _decode_checked(data, max_pixels, include_colour)
    finally:
        _warnings_of_this_thread.notes = None
    decoded.notes.extend(notes)
    return decoded


def _decode_checked(data: bytes, max_pixels: int, include_colour: bool) -> DecodedImage:
    return _as_decode_failures(data, lambda: _decode_bytes(data, max_pixels, include_colour))


def _as_decode_failures(data: bytes, decode_step: Callable[[], Decoded]) -> Decoded:
    """`decode_step()` on non-empty `data`, whatever Pillow raises turned into UnreadableImage."""
    if not data:
        raise UnreadableImage("empty file (0 bytes)")
    try:
        return decode_step()
    except (DecodeFailure, AlreadyColour):
        raise
    except UnidentifiedImageError as error:
        raise UnreadableImage("not an image this tool reads (unknown or corrupt header)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadableImage(f"truncated or corrupt image data ({describe_exception(error)})") from error
    except Exception as error:
        # Damaged files make Pillow raise almost anything (TypeError, KeyError,
        # struct.error, IndexError...): each is this file's failure, never the run's.
        raise UnreadableImage(f"cannot decode it ({describe_exception(error)})") from error


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _open_within_limits(data: bytes, max_pixels: int) -> Image.Image:
    """The image in `data`, opened (no pixel decoded yet), in a supported format and within the
    pixel limit, judged from the header."""
    image = _open(data)
    if image.format not in SUPPORTED_FORMATS:
        raise UnreadableImage(f"unsupported format {image.format}")
    width, height = image.size
    if width * height > max_pixels:
        # Three significant figures: "--max-pixels 1000" must not read as "0 MP".
        raise ImageTooLarge(f"{width}x{height} is {width * height / 1e6:.3g} MP, over --max-pixels "
                            f"{max_pixels} ({max_pixels / 1e6:.3g} MP)")
    if width * height >= STRIP_DECODE_PIXELS:
        exif_without_decoding(image, data)  # decoded by strips: never whole, not even for its EXIF
    return image


def decode_palette_photo(data: bytes, max_pixels: int, side: int) -> np.ndarray:
    """A reference photo's pixels, uint8 RGB [H,W,3] as displayed, for its palette: the same formats,
    header pixel limit, EXIF orientation and first page as `decode_bytes`, any mode decoded as RGB
    (16-bit scaled to 8 bits), and a JPEG decoded at the smallest DCT scale that keeps `side` a
    side (only a thumbnail is kept: a 50 MP reference costs no 150 MB decode). Raises
    DecodeFailure (or a subclass) with a one-line reason."""
    heif_support()  # a phone's HEIC reference opens where pillow-heif is installed
    return _as_decode_failures(data, lambda: _palette_pixels(data, max_pixels, side))


def _palette_pixels(data: bytes, max_pixels: int, side: int) -> np.ndarray:
    image = _open_within_limits(data, max_pixels)
    image.draft("RGB", (side, side))  # JPEG only: both sides stay >= side
    # Reduced by a whole factor that keeps both sides >= side, as the draft does for a JPEG; a large
    # PNG or TIFF strip by strip, so that only the reduced photo is ever held.
    factor = max(1, min(image.size) // side)
    strips = _strips(data, image, factor)
    if strips is None:
        rgb = _as_rgb(image).reduce(factor)
    else:
        rgb = Image.fromarray(np.concatenate([np.asarray(_as_rgb(strip).reduce(factor)) for strip in strips]))
    transpose = TRANSPOSE_FOR_ORIENTATION.get(_orientation(image))
    return np.asarray(rgb.transpose(transpose) if transpose is not None else rgb, dtype=np.uint8)


def _as_rgb(image: Image.Image) -> Image.Image:
    """A photo (or a strip of one) as RGB; 16-bit values scaled to 8 bits; no copy of one already RGB."""
    if image.mode in SIXTEEN_BIT_MODES:
        return Image.fromarray((np.asarray(image, np.float64) / 257.0).clip(0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "RGB":
        image.load()
        return image
    return image.convert("RGB")


def palette_refusal(rgb: np.ndarray) -> str:
    """Why a reference photo (uint8 RGB) cannot give a palette, or '': a black-and-white or toned
    one has greys (or one tint) to give, and colouring towards it is the mistake of a wrong file,
    not a choice (`batch.tone`'s rule, as for the inputs themselves)."""
    spread = tone_spread(rgb)
    if spread >= COLOUR_SPREAD_THRESHOLD:
        return ""
    return (f"a black-and-white or toned photo (tone spread {spread:.1f}, colour from "
            f"{COLOUR_SPREAD_THRESHOLD:g}): a reference gives its colours, so it must be a colour photo")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation to apply; 1 (as stored) when it is missing or damaged."""
    try:
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return orientation if isinstance(orientation, int) else 1


def _decode_bytes(data: bytes, max_pixels: int, include_colour: bool) -> DecodedImage:
    image = _open_within_limits(data, max_pixels)
    notes: list[str] = []
    exif_bytes, orientation = _exif_without_orientation(image, notes)
    icc = image.info.get("icc_profile")
    # An output is RGB: a grey (or CMYK) profile would mislabel it.
    icc = icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None
    pages = getattr(image, "n_frames", 1)
    if pages > 1:
        kind = "page" if image.format == "TIFF" else "frame"
        notes.append(f"{kind} 1 of {pages} coloured (the others are not)")

    gray, alpha = _pixels(image, data, include_colour, notes)
    transpose = TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if transpose is not None:
        gray = transposed(gray, transpose)
        alpha = transposed(alpha, transpose) if alpha is not None else None
    return DecodedImage(gray=gray, alpha=alpha, exif=exif_bytes, icc=icc,
                        input_format=str(image.format), notes=notes)  # a supported one


def transposed(pixels: np.ndarray, transpose: Image.Transpose) -> np.ndarray:
    """`pixels` ([H,W] or [H,W,C]) as Pillow's `Image.transpose(transpose)` would give them, contiguous."""
    flips = {Image.Transpose.FLIP_LEFT_RIGHT: pixels[:, ::-1], Image.Transpose.FLIP_TOP_BOTTOM: pixels[::-1],
             Image.Transpose.ROTATE_180: pixels[::-1, ::-1], Image.Transpose.ROTATE_90: np.rot90(pixels, 1),
             Image.Transpose.ROTATE_270: np.rot90(pixels, -1), Image.Transpose.TRANSPOSE: np.swapaxes(pixels, 0, 1),
             Image.Transpose.TRANSVERSE: np.swapaxes(pixels[::-1, ::-1], 0, 1)}
    return np.ascontiguousarray(flips[transpose])


def _exif_without_orientation(image: Image.Image, notes: list[str]) -> tuple[bytes | None, int]:
    """(the EXIF block to copy, or None; the orientation to apply).

    Damaged metadata must not cost the photo: EXIF that cannot be read or
    written back (a value of the wrong type, a bad offset) is left out of
    the output, with a note, and the photo is coloured all the same.
    """
    try:
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:
        orientation = 1
    if not isinstance(orientation, int):
        orientation = 1  # a damaged orientation entry: show the pixels as stored
    try:
        return _exif_or_raise(image), orientation
    except Exception as error:
        notes.append(f"EXIF not copied: it is damaged ({describe_exception(error)})")
        return None, orientation


def _exif_or_raise(image: Image.Image) -> bytes | None:
    exif = image.getexif()
    if image.format == "TIFF":
        kept = Image.Exif()
        for tag in DESCRIPTIVE_TAGS:
            if tag in exif:
                kept[tag] = exif[tag]
        exif = kept
    elif ORIENTATION_TAG in exif:
        del exif[ORIENTATION_TAG]
    return exif.tobytes() if len(exif) else None


def jpeg_colour_probe(data: bytes) -> np.ndarray:
    """The RGB pixels the tone rule judges a colour JPEG by: a DCT decode at the
    smallest scale that still gives it its probe size (much cheaper than a full decode)."""
    probe = _open(data)
    scale = PROBE_SIDE / max(probe.size)
    probe.draft("RGB", (max(1, math.ceil(probe.size[0] * scale)), max(1, math.ceil(probe.size[1] * scale))))
    return np.asarray(probe.convert("RGB"))


def _colour_check(rgb: np.ndarray, include_colour: bool) -> None:
    if not include_colour and is_colour(rgb):
        raise AlreadyColour()


def _float_pixels(values: np.ndarray, notes: list[str]) -> Image.Image:
    """A 32-bit float image on its nominal 0..1 scale, as 8-bit grey."""
    if not np.isfinite(values).all():
        raise DecodeFailure("32-bit float image with NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < -FLOAT_RANGE_SLACK or high > 1 + FLOAT_RANGE_SLACK:
        raise DecodeFailure(f"32-bit float image with values {low:g}..{high:g}, outside the nominal 0..1: "
                            f"no known scale to 8 bits")
    notes.append("32-bit float input (0..1) written as 8-bit")
    return Image.fromarray(np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8), "L")


def _pixels(image: Image.Image, data: bytes, include_colour: bool,
            notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey uint8 [H,W], alpha uint8 [H,W] or None), as stored (before the EXIF orientation)."""
    mode = image.mode
    if image.format in ("JPEG", "MPO"):
        if mode not in ("L", "1"):
            _colour_check(jpeg_colour_probe(data), include_colour)
        if mode in ("L", "RGB", "YCbCr"):
            image.draft("L", image.size)  # decode the Y channel only
        return _as_array(image if image.mode == "L" else image.convert("L")), None
    strips = _strips(data, image, _probe_factor(image))
    if strips is not None:
        return _pixels_by_strips(image, strips, include_colour, notes)
    source, alpha, rgb = _prepared(image, notes)
    if rgb is not None:
        _colour_check(np.asarray(rgb), include_colour)
    return (_as_array(source if source.mode == "L" else source.convert("L")),
            None if alpha is None else _as_array(alpha))


def _as_array(image: Image.Image) -> np.ndarray:
    """An L image's pixels, uint8 [H,W]."""
    image.load()  # no convert(): a copy of a 150 MP plane is 150 MB more at the peak
    return np.asarray(image, dtype=np.uint8)


def _strips(data: bytes, image: Image.Image, rows_multiple: int) -> Iterator[Image.Image] | None:
    """A large PNG's or TIFF's bands of rows (each but the last a multiple of `rows_multiple` high),
    or None where the image is small or cannot be read by bands (it is then decoded whole)."""
    if image.width * image.height < STRIP_DECODE_PIXELS:
        return None
    if image.format == "PNG":
        return png_strips(data, image, rows_multiple)
    if image.format == "TIFF":
        return tiff_strips(data, image, rows_multiple)
    return None


def _probe_factor(image: Image.Image) -> int:
    """The whole factor a large image's strips are reduced by for the colour probe: a few times the side
    the tone rule reads (it shrinks the probe to PROBE_SIDE itself)."""
    return max(1, max(image.size) // (4 * PROBE_SIDE))


def _pixels_by_strips(image: Image.Image, strips, include_colour: bool,
                      notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """`_pixels` of a large PNG or TIFF, a strip at a time: one uint8 plane for the grey (and the alpha),
    the colour probe reduced as the strips pass."""
    width, height = image.size
    gray = np.empty((height, width), np.uint8)
    alpha: np.ndarray | None = None
    probe: list[np.ndarray] = []
    top = 0
    for strip in strips:
        source, strip_alpha, rgb = _prepared(strip, notes)
        bottom = top + strip.height
        if rgb is not None and not include_colour:
            probe.append(np.asarray(rgb.reduce(_probe_factor(image))))
        gray[top:bottom] = np.asarray(source if source.mode == "L" else source.convert("L"))
        if strip_alpha is not None:
            alpha = np.empty((height, width), np.uint8) if alpha is None else alpha
            alpha[top:bottom] = np.asarray(strip_alpha)
        top = bottom
    if probe:
        _colour_check(np.concatenate(probe), include_colour)
    return gray, alpha


def _note(notes: list[str], note: str) -> None:
    if note not in notes:  # once per file, not once per strip
        notes.append(note)


def _prepared(image: Image.Image, notes: list[str]) -> tuple[Image.Image, Image.Image | None, Image.Image | None]:
    """(the image the grey is taken from: L, or RGB for a colour mode; alpha L or None; the RGB the
    tone rule judges, None for a grey mode) of a non-JPEG image, or a strip of one."""
    mode = image.mode
    if mode == "F":
        return _float_pixels(np.asarray(image, dtype=np.float32), notes), None, None
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float32)
        _note(notes, "16-bit input written as 8-bit")
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L"), None, None
    if mode == "L":
        return image, None, None
    if mode == "1":
        return image.convert("L"), None, None
    if mode == "LA":
        grey, alpha = image.split()
        return grey, alpha, None
    has_alpha = mode in ("RGBA", "PA") or (mode == "P" and "transparency" in image.info)
    if mode == "P":
        _note(notes, "palette input written as RGB")
    if mode == "RGB":
        return image, None, image
    rgba = image.convert("RGBA") if has_alpha else image.convert("RGB")
    rgb = rgba.convert("RGB") if has_alpha else rgba
    return rgb, (rgba.getchannel("A") if has_alpha else None), rgb
