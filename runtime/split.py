"""The colouriser run as its three stages: lightness -> generator -> compose.

Two uses: a backend that runs the generator elsewhere (OpenVINO) while ONNX
Runtime does the full-resolution maths, and video smoothing, which averages
the predicted chroma over frames between `predict` and `compose`. The
stages are the fused graph's own parts (export/deploy.py), gated as a chain
against PyTorch at export.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from retint.errors import EngineError
from retint.runtime.colour_controls import ColourControls
from retint.runtime.engine import Engine, EngineSpec, as_batch
from retint.runtime.metadata import AB_NAME, INPUT_NAME, INTERVAL_NAME, LIGHTNESS_NAME, LOGITS_NAME
from retint.runtime.uncertainty import mute_uncertain, upsample_interval

# lightness [N,1,R,R] and a distribution head's controls (None for a regression) -> ab [N,2,r,r]
Generator = Callable[[np.ndarray, ColourControls | None], np.ndarray]
Compose = Callable[[np.ndarray, np.ndarray], np.ndarray]  # gray [N,1,H,W], ab [N,2,r,r] -> rgb [N,H,W,3]


class StagedEngine(Engine):
    """predict(gray) -> ab [N,2,R,R] float32; compose(gray, ab) -> rgb [N,H,W,3] uint8; colorize = both.

    `lightness` and `interval` (the uncertainty head, optional) are ONNX
    Runtime sessions; `generator` and `compose` are callables with a
    `close()`, on ONNX Runtime or OpenVINO; `distribution` (a distribution
    head's, optional) opens its ONNX Runtime session on first use. With `spec.mute_uncertain`, the
    chroma is shrunk toward grey where the interval is wide, before compose
    (and before any smoothing of `predict`'s output).
    """

    def __init__(self, lightness, generator: Generator, compose: Compose, spec: EngineSpec, interval=None,
                 distribution=None):
        super().__init__(spec)
        self._lightness = lightness
        self._generator = generator
        self._compose = compose
        self._interval = interval
        self._open_distribution = distribution
        self._distribution = None
        self._distribution_lock = threading.Lock()

    def predict(self, gray: np.ndarray, *, reference: np.ndarray | None = None) -> np.ndarray:
        """ab [N,2,r,r] (r: the generator's output size): automatic colouring, or guided by the palette
        of `reference` (a uint8 RGB photo; distribution-head engines with a global-hint input)."""
        batch = as_batch(gray, self.spec.limits)
        return self._predict(batch, None if reference is None else self.controls_for(batch, reference=reference))

    def compose(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """Grey + ab (from `predict`, perhaps smoothed) -> rgb uint8 [N,H,W,3]."""
        return self._compose(as_batch(gray, self.spec.limits), np.ascontiguousarray(ab, np.float32))

    def _lightness_and_ab(self, batch: np.ndarray,
                          controls: ColourControls | None = None) -> tuple[np.ndarray, np.ndarray]:
        lightness = self._lightness.run([LIGHTNESS_NAME], {INPUT_NAME: batch})[0]
        return lightness, self._generator(lightness, self._automatic_unless(batch, controls))

    def _predict(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        if self.spec.mute_uncertain:
            ab, interval = self._ab_and_interval(batch, controls)
            return mute_uncertain(ab, interval)
        return self._lightness_and_ab(batch, controls)[1]

    def _ab_and_interval(self, batch: np.ndarray, controls: ColourControls | None) -> tuple[np.ndarray, np.ndarray]:
        """ab and its calibrated interval [N,4,r,r]: a distribution head's both from its
        distribution stage (float32 on ONNX Runtime), a regression's from its interval stage."""
        if self._open_distribution is not None:
            ab, interval, _ = self._run_distribution(batch, controls)
            return ab, interval
        lightness, ab = self._lightness_and_ab(batch, controls)
        return ab, self._interval.run([INTERVAL_NAME], {LIGHTNESS_NAME: lightness, AB_NAME: ab})[0]

    def _run_distribution(self, batch: np.ndarray, controls: ColourControls | None) -> list[np.ndarray]:
        """The distribution stage's [ab, interval, logits] for the batch."""
        with self._distribution_lock:
            if self._distribution is None and self._open_distribution is not None:
                self._distribution = self._open_distribution()
            session = self._distribution
        automatic = self._automatic_unless(batch, controls)
        if session is None or automatic is None:
            raise EngineError(f"{self.spec.path.name} has no distribution stage")
        lightness = self._lightness.run([LIGHTNESS_NAME], {INPUT_NAME: batch})[0]
        feeds = {LIGHTNESS_NAME: lightness, **automatic.feeds()}
        return session.run([AB_NAME, INTERVAL_NAME, LOGITS_NAME], feeds)

    def _logits(self, batch: np.ndarray, controls: ColourControls | None) -> np.ndarray:
        if self._open_distribution is None:
            return super()._logits(batch, controls)
        return self._run_distribution(batch, controls)[2]

    def _run_with_interval(self, batch: np.ndarray,
                           controls: ColourControls | None = None) -> tuple[np.ndarray, np.ndarray]:
        ab, interval = self._ab_and_interval(batch, controls)
        if self.spec.mute_uncertain:
            ab = mute_uncertain(ab, interval)
        return self._compose(batch, ab), upsample_interval(interval, *batch.shape[2:])

    def _run(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        return self._compose(batch, self._predict(batch, controls))

    def close(self) -> None:
        """Close the generator and compose stages (OpenVINO holds compiled models)."""
        for stage in (self._generator, self._compose):
            close = getattr(stage, "close", None)
            if close is not None:
                close()
        # ONNX Runtime sessions end with their last reference.
        self._lightness = self._interval = self._distribution = None
        super().close()
