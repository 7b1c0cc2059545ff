"""The hint format users write (JSON) and the colours they are shown (runtime/guides/hints.py)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from retint.runtime.guides.hints import (MAX_HINTS_PER_IMAGE, HintError, hex_to_ab, hint_from_json, hints_as_json,
                                  hints_from_json, lab_to_hex, lab_to_rgb)


def test_rgb_and_ab_hints_read_to_the_same_chroma():
    a, b = hex_to_ab("#b04a32")
    assert a > 20 and b > 20  # a brick red: red and yellow
    assert hint_from_json({"x": 3, "y": 4, "rgb": "#b04a32"}) == (3.0, 4.0, a, b)
    assert hint_from_json({"x": 3.5, "y": 0, "a": -20, "b": 7.25}) == (3.5, 0.0, -20.0, 7.25)


def test_a_colour_survives_the_round_trip_through_lab():
    for hex_colour in ("#b04a32", "#2f6fb5", "#3c8a3c", "#808080"):
        rgb = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        import cv2
        lab = cv2.cvtColor(np.array([[rgb]], np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
        back = lab_to_rgb(*map(float, lab))
        assert max(abs(x - y) for x, y in zip(back, rgb)) <= 1
        assert lab_to_hex(*map(float, lab)).lower() in {hex_colour, *(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in [back])}


@pytest.mark.parametrize("bad, words", [
    (5, "expected an object"),
    ({"x": 1, "y": 2}, "expected the keys"),
    ({"x": 1, "y": 2, "a": 1, "b": 2, "rgb": "#000000"}, "expected the keys"),
    ({"x": 1, "y": 2, "rgb": "red"}, "#rrggbb"),
    ({"x": "1", "y": 2, "a": 1, "b": 2}, "x must be a finite number"),
    ({"x": 1, "y": True, "a": 1, "b": 2}, "y must be a finite number"),
    ({"x": 1, "y": 2, "a": float("nan"), "b": 2}, "a must be a finite number"),
])
def test_a_bad_hint_is_one_line_naming_it(bad, words):
    with pytest.raises(HintError) as caught:
        hints_from_json([{"x": 0, "y": 0, "a": 0, "b": 0}, bad])
    message = str(caught.value)
    assert message.startswith("hints[1]") and words in message and "\n" not in message


def test_too_many_hints_and_not_a_list_are_refused():
    with pytest.raises(HintError, match="expected a list"):
        hints_from_json({"x": 1})
    with pytest.raises(HintError, match="more than"):
        hints_from_json([{"x": 0, "y": 0, "a": 0, "b": 0}] * (MAX_HINTS_PER_IMAGE + 1))


def test_fuzzed_json_is_read_or_refused_with_a_hint_error():
    """Seeded, bounded: whatever JSON arrives, the parser answers a list of hints or one HintError."""
    generator = random.Random(7)
    atoms = [0, -1, 2.5, 1e308, "", "#00ff00", "#zzzzzz", None, True, [], {}]
    keys = ["x", "y", "a", "b", "rgb", "z"]
    for _ in range(500):
        items = [{generator.choice(keys): generator.choice(atoms) for _ in range(generator.randint(0, 5))}
                 for _ in range(generator.randint(0, 3))]
        text = json.dumps(items)
        try:
            hints = hints_from_json(json.loads(text))
        except HintError as error:
            assert "\n" not in str(error)
        else:
            assert json.loads(json.dumps(hints_as_json(hints))) == hints_as_json(hints)


def test_an_integer_too_large_for_a_float_is_one_hint_error():
    """Python's json reads 1 followed by 400 zeros as an exact int; float() of it overflows."""
    huge = json.loads("1" + "0" * 400)
    with pytest.raises(HintError, match="x must be a finite number") as caught:
        hints_from_json([{"x": huge, "y": 1, "a": 0, "b": 0}])
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 120
