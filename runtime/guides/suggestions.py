"""Suggested colours at a point: the most likely colour families, from a model's distribution or
from a reference's palette.

A colour model v2 engine predicts, per pixel, probabilities over a*b* bins
(runtime/engine.py `Engine.suggest` reads them from the artefact's
distribution stage). A model without one (the bundled regression model)
suggests from a reference photo's palette where one is given: its colours of
about the pixel's lightness, weighted by their share of the reference
(`palette_suggestions`); with neither there is nothing to suggest, and the
page offers its colour picker alone. Neighbouring colours are shades of one
colour, so the k suggestions are families: the most probable colour left,
with the probability of every colour within `FAMILY_RADIUS` of it gathered
in; the family's colour is the probability-weighted mean of its members.
Each is shown at the pixel's own lightness, which is what the photo will
show there if a user picks it. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from retint.errors import EngineError
from retint.runtime.capabilities import Capabilities
from retint.runtime.guides.hints import grey_lightness, lab_to_hex
from retint.runtime.guides.palette import Palette

# Bins within this many CIELAB units of a family's peak join it: two suggestions closer than
# this would look alike (on the 10-unit grid: the peak and its 8 neighbours).
FAMILY_RADIUS = 15.0
MAX_SUGGESTIONS = 16
# Families are gathered until less probability than this is left unassigned.
FAMILY_MASS_LEFT = 1e-3

Point = tuple[float, float]  # x, y in the input's own pixels
# Where suggestions come from (`suggestion_source`).
FROM_MODEL, FROM_PALETTE, FROM_NOTHING = "model", "reference palette", "none"


def suggestion_source(capabilities: Capabilities, reference_given: bool) -> str:
    """Where a model's suggestions come from: its own distribution where it has one, else the
    reference's palette where one is given, else nothing (the page offers its colour picker alone)."""
    if capabilities.suggests:
        return FROM_MODEL
    return FROM_PALETTE if reference_given and capabilities.guides else FROM_NOTHING


@dataclass(frozen=True)
class Suggestion:
    """One suggested colour at a point."""

    a: float  # CIELAB a*
    b: float  # CIELAB b*
    rgb: str  # "#rrggbb": this chroma at the pixel's own lightness
    # The model's probability of this colour family at the pixel, 0..1 (from a palette: the family's
    # share of the reference's pixels of about that lightness).
    probability: float

    def as_json(self) -> dict[str, float | str]:
        """{"a", "b", "rgb", "probability"}, rounded for people."""
        return {"a": round(self.a, 2), "b": round(self.b, 2), "rgb": self.rgb,
                "probability": round(self.probability, 4)}


def check_points(points: Sequence[Sequence[float]], height: int, width: int) -> list[Point]:
    """Points as (x, y) floats inside a width x height image; EngineError naming the first bad one."""
    checked = []
    for index, point in enumerate(points):
        try:
            x, y = (float(value) for value in point)
        except (TypeError, ValueError, OverflowError):
            raise EngineError(f"point {index}: expected (x, y) numbers, got {point!r}") from None
        if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height):
            raise EngineError(f"point {index}: ({x:g}, {y:g}) is outside the {width}x{height} image")
        checked.append((x, y))
    return checked


def check_count(k: int) -> int:
    """k as an int in 1..MAX_SUGGESTIONS, or EngineError."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_SUGGESTIONS:
        raise EngineError(f"k must be a whole number from 1 to {MAX_SUGGESTIONS}, got {k!r}")
    return int(k)


def probabilities_at(logits: np.ndarray, point: Point, height: int, width: int) -> np.ndarray:
    """softmax over the bins of logits [Q,r,r] at an image point, bilinearly between the head's
    pixels with half-pixel centres (as the compose upsamples the chroma): float64 [Q]."""
    side_y, side_x = logits.shape[1:]
    u = min(max((point[0] + 0.5) * side_x / width - 0.5, 0.0), side_x - 1.0)
    v = min(max((point[1] + 0.5) * side_y / height - 0.5, 0.0), side_y - 1.0)
    left, top = int(np.floor(u)), int(np.floor(v))
    right, bottom = min(left + 1, side_x - 1), min(top + 1, side_y - 1)
    fu, fv = u - left, v - top
    mixed = np.zeros(logits.shape[0], np.float64)
    for row, column, weight in ((top, left, (1 - fu) * (1 - fv)), (top, right, fu * (1 - fv)),
                                (bottom, left, (1 - fu) * fv), (bottom, right, fu * fv)):
        if weight > 0:
            values = logits[:, row, column].astype(np.float64)
            exponentials = np.exp(values - values.max())
            mixed += weight * exponentials / exponentials.sum()
    return mixed


def colour_families(probabilities: np.ndarray, centres: np.ndarray, k: int) -> list[tuple[float, float, float]]:
    """The k most probable families (a, b, probability), most probable first (see the module doc).

    Families are gathered peak by peak until almost no probability is left, then ranked by their
    mass: a broad family whose highest bin is lower than a lone bin's still comes first."""
    remaining = probabilities.astype(np.float64).copy()
    families: list[tuple[float, float, float]] = []
    while remaining.sum() > FAMILY_MASS_LEFT and len(families) < len(centres):
        peak = int(remaining.argmax())
        if remaining[peak] <= 0:
            break
        members = (((centres - centres[peak]) ** 2).sum(axis=1) <= FAMILY_RADIUS**2) & (remaining > 0)
        weights = remaining[members]
        mass = float(weights.sum())
        a, b = (weights[:, None] * centres[members]).sum(axis=0) / mass
        families.append((float(a), float(b), mass))
        remaining[members] = 0.0
    return sorted(families, key=lambda family: -family[2])[:k]


def suggestions(logits: np.ndarray, centres: np.ndarray, gray: np.ndarray, points: Sequence[Point],
                k: int) -> list[list[Suggestion]]:
    """For each point of the grey image gray [H,W], its k suggestions from logits [Q,r,r]."""
    height, width = gray.shape
    return _suggest(gray, points, lambda point, lightness: colour_families(
        probabilities_at(logits, point, height, width), centres, k))


def palette_suggestions(palette: Palette, gray: np.ndarray, points: Sequence[Point], k: int) -> list[list[Suggestion]]:
    """For each point of the grey image gray [H,W], up to k colour families of the reference's palette
    at the pixel's lightness (none where the reference has no pixel of about that lightness)."""
    def families(point: Point, lightness: float) -> list[tuple[float, float, float]]:
        colours, weights = palette.families_at(lightness)
        return colour_families(weights, colours, k) if weights.sum() > 0 else []

    return _suggest(gray, points, families)


def _suggest(gray: np.ndarray, points: Sequence[Point],
             families: Callable[[Point, float], list[tuple[float, float, float]]]) -> list[list[Suggestion]]:
    """Each point's families (a, b, probability), given the point and its pixel's L*, as suggestions
    shown at that L*."""
    answer = []
    for point in points:
        lightness = grey_lightness(int(gray[int(point[1]), int(point[0])]))
        answer.append([Suggestion(a, b, lab_to_hex(lightness, a, b), probability)
                       for a, b, probability in families(point, lightness)])
    return answer
