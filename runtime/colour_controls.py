"""A distribution-head graph's extra inputs: point hints as planes, a reference photo's histogram
and the decoding temperature (the guides themselves, on every model, are `runtime.guides`').

A colour-model-v2 artefact (export/deploy.py) takes, beside `gray`:

    hint_ab      float32 [N,2,R,R]  a*, b* (CIELAB units) at hinted render-size pixels, else 0
    hint_mask    float32 [N,1,R,R]  1 where a hint is, else 0
    global_hint  float32 [N,Q+1]    an a*b* histogram over the Q bins + a "given" flag (optional input)
    temperature  float32 [1]        the annealed mean's T

All zeros (and the default temperature) is automatic colouring. Users give
points as (x, y, a, b) in the input image's own pixels;
`guides.hints.rasterise_hints` puts each on a small square at render size, as
training simulated clicks. A reference photo becomes its lightness-free a*b*
histogram over the same bins (`guides.palette.reference_histogram`). This
module is numpy only: runtime/ never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from retint.errors import EngineError
from retint.runtime.guides.hints import Hint, rasterise_hints
from retint.runtime.guides.palette import reference_histogram

HINT_AB_NAME = "hint_ab"
HINT_MASK_NAME = "hint_mask"
GLOBAL_HINT_NAME = "global_hint"
TEMPERATURE_NAME = "temperature"
CONTROL_NAMES = (HINT_AB_NAME, HINT_MASK_NAME, GLOBAL_HINT_NAME, TEMPERATURE_NAME)

TEMPERATURE_RANGE = (0.01, 10.0)


@dataclass(frozen=True)
class ColourBins:
    """The a*b* bins of an artefact (from its metadata), and its default temperature."""

    centres: np.ndarray  # float32 [Q,2]
    default_temperature: float
    global_hint: bool  # whether the graph takes a global hint input

    @property
    def count(self) -> int:
        """How many a*b* bins the distribution head predicts over."""
        return int(self.centres.shape[0])


def bins_of(colour_bins: dict) -> ColourBins | None:
    """The bins an artefact's `colour_bins` metadata describes (None when empty: a regression)."""
    if not colour_bins:
        return None
    try:
        centres = np.asarray(colour_bins["centres"], np.float32).reshape(-1, 2)
        return ColourBins(centres=centres, default_temperature=float(colour_bins["default_temperature"]),
                          global_hint=bool(colour_bins.get("global_hint", False)))
    except (KeyError, TypeError, ValueError) as error:
        raise EngineError(f"malformed colour_bins metadata: {error}") from error


@dataclass(frozen=True)
class ColourControls:
    """The extra inputs of one batch, ready to feed."""

    hint_ab: np.ndarray
    hint_mask: np.ndarray
    global_hint: np.ndarray | None
    temperature: np.ndarray

    def feeds(self) -> dict[str, np.ndarray]:
        """Input name -> array, for the inputs this graph has, in the graph's input order
        (export/deploy.control_examples)."""
        feeds = {HINT_AB_NAME: self.hint_ab, HINT_MASK_NAME: self.hint_mask}
        if self.global_hint is not None:
            feeds[GLOBAL_HINT_NAME] = self.global_hint
        feeds[TEMPERATURE_NAME] = self.temperature
        return feeds

    @staticmethod
    def from_feeds(feeds: dict[str, np.ndarray]) -> "ColourControls":
        """The inverse of `feeds`."""
        return ColourControls(feeds[HINT_AB_NAME], feeds[HINT_MASK_NAME], feeds.get(GLOBAL_HINT_NAME),
                              feeds[TEMPERATURE_NAME])

    def part(self, start: int, stop: int) -> "ColourControls":
        """The controls of images start..stop of the batch."""
        return ColourControls(self.hint_ab[start:stop], self.hint_mask[start:stop],
                              None if self.global_hint is None else self.global_hint[start:stop],
                              self.temperature)


def check_temperature(temperature: float) -> float:
    """The temperature as a float, or EngineError when it is outside TEMPERATURE_RANGE."""
    low, high = TEMPERATURE_RANGE
    if not (low <= float(temperature) <= high):
        raise EngineError(f"temperature {temperature} is outside {low}..{high}")
    return float(temperature)


def colour_controls(bins: ColourBins, count: int, image_size: tuple[int, int], render_size: int,
                    hints: Sequence[Sequence[Hint]] | None = None, temperature: float | None = None,
                    reference: np.ndarray | None = None) -> ColourControls:
    """The extra inputs for a batch of `count` images of `image_size` (height, width); a `reference`
    is the global hint's where the graph takes one (a graph without one takes its palette after the
    generator: `runtime.guides`)."""
    hint_ab, hint_mask = rasterise_hints(hints, image_size, count, render_size)
    global_hint = None
    if bins.global_hint:
        global_hint = np.zeros((count, bins.count + 1), np.float32)
        if reference is not None:
            global_hint[:] = reference_histogram(reference, bins.centres)
    value = check_temperature(bins.default_temperature if temperature is None else temperature)
    return ColourControls(hint_ab, hint_mask, global_hint, np.array([value], np.float32))
