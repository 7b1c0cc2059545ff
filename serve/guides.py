"""What a request may add to the grey photo, read from its form fields: hints, a temperature, a
reference photo, points to suggest colours at and how many suggestions; and what this engine can take.

    hints        a JSON list as `retint.runtime.guides.hints` reads it:
                 [{"x": 120, "y": 48, "a": 35, "b": 20}, {"x": 10, "y": 9, "rgb": "#b04a32"}]
    temperature  a number (the annealed mean's T; lower: bolder colours)
    reference    a file: a colour photo whose palette guides the colours (reference.py)
    points       a JSON list of [x, y] or {"x": .., "y": ..} (POST /suggest)
    k            a whole number of suggestions per point (POST /suggest)

x and y are in the uploaded image's own pixels, as it is displayed (EXIF
orientation applied), 0 at the top-left pixel's corner. A field that cannot
be read is a 400 `Rejected` with one line naming it; whether a point lies
inside the image, and whether this engine takes them at all, is judged by
the engine's own checks once the image is decoded (`Engine.check_guides`,
colouriser.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, BinaryIO, Mapping

from retint.errors import EngineError
from retint.runtime import EngineSpec
from retint.runtime.guides.hints import MAX_HINTS_PER_IMAGE, Hint, HintError, finite_number, hints_from_json
from retint.runtime.guides.suggestions import MAX_SUGGESTIONS, check_count
from retint.serve.reference import reference_upload
from retint.serve.rejected import Rejected

# More points than this in one /suggest request is not a person clicking; it is refused.
MAX_POINTS = 64
DEFAULT_SUGGESTIONS = 5
# A form field longer than this is not a hint list a person made (256 hints fit in ~20 KB).
MAX_FIELD_CHARACTERS = 64 * 1024


@dataclass(frozen=True)
class Guides:
    """A request's hints (None: automatic colouring), temperature (None: the engine's) and
    reference photo's file (None: no reference; decoded on the pool, colouriser.py)."""

    hints: tuple[Hint, ...] | None = None
    temperature: float | None = None
    reference: BinaryIO | None = None

    @property
    def per_image(self) -> list[list[Hint]] | None:
        """The hints as `Engine.colorize` takes them: one list for the one image, or None."""
        return None if self.hints is None else [list(self.hints)]


def capabilities(spec: EngineSpec) -> dict[str, Any]:
    """What GET /v1/spec says the engine can be guided by, so the page shows only what works (the
    engine's `capabilities`, runtime/capabilities.py): hints and a reference photo (every model
    whose stages lie beside it), suggestions from the model's own distribution (`suggest`) or, with
    a reference, from its palette (`suggest_from_reference`), the uncertainty map (calibrated
    intervals), and the temperature's default and range (None for a regression model)."""
    model = spec.capabilities
    temperatures = model.temperature_range
    return {"hints": model.guides, "reference": model.guides, "suggest": model.suggests,
            "suggest_from_reference": model.guides, "uncertainty": model.intervals,
            "temperature": model.default_temperature, "temperature_range": list(temperatures) if temperatures else None,
            "max_hints": MAX_HINTS_PER_IMAGE, "max_points": MAX_POINTS, "max_suggestions": MAX_SUGGESTIONS}


def read_guides(form: Mapping[str, Any], max_upload_bytes: int, takes_temperature: bool = True) -> Guides:
    """The optional `hints`, `temperature` and `reference` fields; an empty hint list is no hints; a
    reference is held to the photo's `max_upload_bytes`. Where the route `takes_temperature` not
    (suggestions are the model's own probabilities), one is a 400."""
    hints = None
    text = _text_field(form, "hints")
    if text is not None:
        try:
            hints = tuple(hints_from_json(_json_field("hints", text), "hints"))
        except HintError as error:
            raise Rejected(400, str(error)) from None
    temperature = None
    text = _text_field(form, "temperature")
    if text is not None and not takes_temperature:
        raise Rejected(400, "temperature: suggestions are the model's own probabilities; they take no temperature")
    if text is not None:
        try:
            temperature = float(text)
        except ValueError:
            raise Rejected(400, f"temperature must be a number, got {_shown(text)}") from None
        if not math.isfinite(temperature):
            raise Rejected(400, f"temperature must be a finite number, got {_shown(text)}")
    return Guides(hints or None, temperature, reference_upload(form, max_upload_bytes))


def read_points(form: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The required `points` field: [[x, y], ...] or [{"x": .., "y": ..}, ...], 1 to MAX_POINTS."""
    text = _text_field(form, "points")
    if text is None:
        raise Rejected(400, "expected the points to suggest colours at in the field 'points', "
                            "e.g. [[120, 48]] (x, y in the image's pixels)")
    value = _json_field("points", text)
    if not isinstance(value, list) or not value:
        raise Rejected(400, f"points: expected a non-empty list like [[120, 48]], got {_shown(text)}")
    if len(value) > MAX_POINTS:
        raise Rejected(400, f"points: {len(value)} points, more than the {MAX_POINTS} one request may have")
    return [_point(item, f"points[{index}]") for index, item in enumerate(value)]


def read_count(form: Mapping[str, Any]) -> int:
    """The optional `k` field: suggestions per point (default DEFAULT_SUGGESTIONS)."""
    text = _text_field(form, "k")
    if text is None:
        return DEFAULT_SUGGESTIONS
    try:
        return check_count(int(text.strip()))
    except ValueError:
        raise Rejected(400, f"k must be a whole number from 1 to {MAX_SUGGESTIONS}, got {_shown(text)}") from None
    except EngineError as error:
        raise Rejected(400, str(error)) from None


def _point(item: object, where: str) -> tuple[float, float]:
    if isinstance(item, dict) and set(item) == {"x", "y"}:
        x, y = item["x"], item["y"]
    elif isinstance(item, list) and len(item) == 2:
        x, y = item
    else:
        raise Rejected(400, f"{where}: expected [x, y] or {{\"x\": .., \"y\": ..}}, got {json.dumps(item)[:80]}")
    numbers = []
    for name, value in (("x", x), ("y", y)):
        number = finite_number(value)
        if number is None:
            raise Rejected(400, f"{where}: {name} must be a finite number, got {json.dumps(value)[:40]}")
        numbers.append(number)
    return numbers[0], numbers[1]


def _text_field(form: Mapping[str, Any], name: str) -> str | None:
    """A form field's text; None when absent or blank; 400 when it is a file or too long."""
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(400, f"'{name}' must be a form field, not a file")
    if len(value) > MAX_FIELD_CHARACTERS:
        raise Rejected(400, f"'{name}' is longer than {MAX_FIELD_CHARACTERS} characters")
    return value if value.strip() else None


def _json_field(name: str, text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:
        raise Rejected(400, f"{name}: nested too deeply") from None
    except ValueError as error:
        raise Rejected(400, f"{name}: not JSON ({str(error).splitlines()[0]})") from None


def _shown(text: str) -> str:
    """A field's text as an error message quotes it: one line, at most 40 characters."""
    return json.dumps(text if len(text) <= 40 else text[:40] + "...")
