"""Colour hints as users write them (JSON in; CIELAB and sRGB out), checked against an image and
rasterised into a model's hint planes.

One wording of the hint format, shared by `colorize-batch --hints`, the
HTTP API and the web page:

    {"x": 120, "y": 48, "a": 35.0, "b": 20.5}      a*, b* in CIELAB units
    {"x": 120, "y": 48, "rgb": "#b04a32"}          an sRGB colour: its a*, b* are the hint

x and y are in the input image's own pixels (0 at the top-left pixel's
corner). A hint is chroma only: the photo keeps its own lightness, so an
`rgb` hint gives the a*b* of that colour and its lightness is dropped.
Colours shown to users (suggestions' swatches) are taken at the pixel's own
lightness, which is what the coloured photo will show there. Whether a hint
lies inside its image is checked where the image is known (`checked_hints`);
a model that takes hint planes gets them from `rasterise_hints`, and every
model gets them spread over its colours (`propagation`). numpy and OpenCV
only.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import cv2
import numpy as np

from retint.errors import EngineError, InputError

# More hints than this for one image is a request no person clicked; it is refused.
MAX_HINTS_PER_IMAGE = 256
_HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")
_KEYS_AB = {"x", "y", "a", "b"}
_KEYS_RGB = {"x", "y", "rgb"}
# A model's hint planes cover (2 * this + 1)^2 render-size pixels per hint: the middle of the patch
# sizes training simulated (1 to 7 pixels).
HINT_HALF_WIDTH = 1
# a* and b* of a hint are clipped to this (a distribution model's bins' reach, and beyond sRGB's).
HINT_AB_LIMIT = 110.0

Hint = tuple[float, float, float, float]  # x, y (input pixels), a*, b* (CIELAB)


class HintError(InputError):
    """A hint that cannot be read; its message is one line naming the hint and what is wrong."""


def hex_to_ab(text: str) -> tuple[float, float]:
    """"#rrggbb" (sRGB) -> its (a*, b*) in CIELAB units; HintError when it is not one."""
    match = _HEX_COLOUR.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise HintError(f"a hint's rgb must be a colour written #rrggbb, got {text!r}")
    value = match.group(1)
    rgb = np.array([[[int(value[i:i + 2], 16) for i in (0, 2, 4)]]], np.float32) / 255.0
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0]
    return float(lab[1]), float(lab[2])


def lab_to_hex(lightness: float, a: float, b: float) -> str:
    """A CIELAB colour -> "#rrggbb" sRGB (out-of-gamut channels clipped)."""
    return "#" + "".join(f"{channel:02x}" for channel in lab_to_rgb(lightness, a, b))


def lab_to_rgb(lightness: float, a: float, b: float) -> tuple[int, int, int]:
    """A CIELAB colour -> sRGB uint8 (r, g, b), out-of-gamut channels clipped."""
    lab = np.array([[[lightness, a, b]]], np.float32)
    rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0, 0] * 255.0 + 0.5, 0, 255)
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def grey_lightness(grey_level: int) -> float:
    """CIELAB L* of a grey pixel (its own lightness, which the coloured photo keeps)."""
    value = np.full((1, 1, 3), float(grey_level) / 255.0, np.float32)
    return float(cv2.cvtColor(value, cv2.COLOR_RGB2Lab)[0, 0, 0])


def hint_from_json(item: object, where: str = "hint") -> Hint:
    """One hint as JSON (see the module doc) -> (x, y, a, b); HintError naming `where` otherwise.
    Whether x, y fall inside the image is checked where the image is known (`checked_hints`)."""
    if not isinstance(item, dict):
        raise HintError(f"{where}: expected an object like {{\"x\": 10, \"y\": 20, \"rgb\": \"#aa3322\"}}, "
                        f"got {type(item).__name__}")
    keys = set(item)
    if keys != _KEYS_AB and keys != _KEYS_RGB:
        raise HintError(f"{where}: expected the keys x, y and either a, b or rgb; got {', '.join(sorted(keys))}")
    x, y = (_number(item[key], f"{where}: {key}") for key in ("x", "y"))
    if "rgb" in item:
        try:
            a, b = hex_to_ab(item["rgb"])
        except HintError as error:
            raise HintError(f"{where}: {error}") from None
    else:
        a, b = (_number(item[key], f"{where}: {key}") for key in ("a", "b"))
    return x, y, a, b


def hints_from_json(value: object, where: str = "hints") -> list[Hint]:
    """A JSON list of hints -> [(x, y, a, b), ...]; HintError naming the first bad one."""
    if not isinstance(value, list):
        raise HintError(f"{where}: expected a list of hints, got {type(value).__name__}")
    if len(value) > MAX_HINTS_PER_IMAGE:
        raise HintError(f"{where}: {len(value)} hints, more than the {MAX_HINTS_PER_IMAGE} one image may have")
    return [hint_from_json(item, f"{where}[{index}]") for index, item in enumerate(value)]


def hints_as_json(hints: Sequence[Hint]) -> list[dict[str, float]]:
    """(x, y, a, b) hints -> their canonical JSON (what a manifest records), rounded to 1/1000."""
    return [{"x": round(x, 3), "y": round(y, 3), "a": round(a, 3), "b": round(b, 3)} for x, y, a, b in hints]


def finite_number(value: object) -> float | None:
    """A JSON number as a finite float, or None for anything else: a bool, a string, NaN, infinity,
    or an integer too large for a float (Python's json reads 1 and 400 zeros as an exact int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number(value: object, where: str) -> float:
    number = finite_number(value)
    if number is None:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise HintError(f"{where} must be a finite number, got {shown}")
    return number


def checked_hints(hints: Sequence[Sequence[Sequence[float]]], count: int,
                  image_size: tuple[int, int]) -> tuple[tuple[Hint, ...], ...]:
    """Per image of a batch of `count` images of `image_size` (height, width), its hints as (x, y, a, b)
    floats inside the image, a*b* clipped to HINT_AB_LIMIT; EngineError naming the first bad one."""
    if len(hints) != count:
        raise EngineError(f"hints: expected one list per image ({count}), got {len(hints)}")
    height, width = image_size
    return tuple(tuple(_checked_point(point, width, height) for point in points) for points in hints)


def _checked_point(point: Sequence[float], width: int, height: int) -> Hint:
    try:
        x, y, a, b = (float(value) for value in point)
    except (TypeError, ValueError, OverflowError) as error:
        raise EngineError(f"a hint must be (x, y, a, b) numbers, got {point!r}") from error
    if not all(np.isfinite((x, y, a, b))):
        raise EngineError(f"a hint must hold finite numbers, got {point!r}")
    if not (0 <= x < width and 0 <= y < height):
        raise EngineError(f"hint at ({x:g}, {y:g}) is outside the {width}x{height} image")
    return x, y, float(np.clip(a, -HINT_AB_LIMIT, HINT_AB_LIMIT)), float(np.clip(b, -HINT_AB_LIMIT, HINT_AB_LIMIT))


def grid_cell(x: float, y: float, image_size: tuple[int, int], side: int) -> tuple[int, int]:
    """(row, column) of the side x side grid (render size, or a head's) that holds the input pixel
    (x, y) of an image of `image_size` (height, width)."""
    height, width = image_size
    return (min(side - 1, max(0, int((y + 0.5) * side / height))),
            min(side - 1, max(0, int((x + 0.5) * side / width))))


def rasterise_hints(hints: Sequence[Sequence[Hint]] | None, image_size: tuple[int, int], count: int,
                    render_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points per image -> a model's hint planes (hint_ab [N,2,R,R], hint_mask [N,1,R,R]): each hint on
    a square of HINT_HALF_WIDTH around its cell, as training simulated clicks. `image_size` is
    (height, width) of the inputs; `hints` has one list per image (or is None: no hints)."""
    hint_ab = np.zeros((count, 2, render_size, render_size), np.float32)
    hint_mask = np.zeros((count, 1, render_size, render_size), np.float32)
    if hints is None:
        return hint_ab, hint_mask
    for index, points in enumerate(checked_hints(hints, count, image_size)):
        for x, y, a, b in points:
            row, column = grid_cell(x, y, image_size, render_size)
            top, left = max(0, row - HINT_HALF_WIDTH), max(0, column - HINT_HALF_WIDTH)
            bottom, right = row + HINT_HALF_WIDTH + 1, column + HINT_HALF_WIDTH + 1
            hint_ab[index, 0, top:bottom, left:right] = a
            hint_ab[index, 1, top:bottom, left:right] = b
            hint_mask[index, 0, top:bottom, left:right] = 1.0
    return hint_ab, hint_mask
