"""The colouriser run as its three stages: lightness -> generator -> compose.

Three uses: a backend that runs the generator elsewhere (OpenVINO) while ONNX
Runtime does the full-resolution maths; guides (`runtime.guides`: hints and
a reference's palette), applied to the generator's chroma before the
compose; and video smoothing, which averages the predicted chroma over
frames between `predict` and `compose`. The stages are the fused graph's own
parts (export/deploy.py), gated as a chain against PyTorch at export.
"""

from __future__ import annotations

import threading
from typing import Callable

import cv2
import numpy as np

from retint.errors import EngineError
from retint.runtime.colour_controls import ColourControls
from retint.runtime.engine import Engine, EngineSpec, as_batch
from retint.runtime.guides.apply import BatchGuides
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
        of `reference` (a uint8 RGB photo: a global-hint model's input, or the palette after any other
        model's generator)."""
        batch = as_batch(gray, self.spec.limits)
        if reference is None:
            return self._predict(batch)
        controls = self.controls_for(batch, reference=reference)
        guides = self.guides_for(batch, reference=reference)
        if guides is None:
            return self._predict(batch, controls)
        _, ab, _ = self._guided_ab(batch, controls, guides, with_interval=False)
        return ab

    def compose(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """Grey + ab (from `predict`, perhaps smoothed) -> rgb uint8 [N,H,W,3]."""
        return self._compose(as_batch(gray, self.spec.limits), np.ascontiguousarray(ab, np.float32))

    def _lightness_and_ab(self, batch: np.ndarray,
                          controls: ColourControls | None = None) -> tuple[np.ndarray, np.ndarray]:
        lightness = self._lightness.run([LIGHTNESS_NAME], {INPUT_NAME: batch})[0]
        return lightness, self._generator(lightness, self._automatic_unless(batch, controls))

    def _predict(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        if self.spec.mute_uncertain:
            _, ab, interval = self._ab_and_interval(batch, controls)
            return mute_uncertain(ab, interval)
        return self._lightness_and_ab(batch, controls)[1]

    def _ab_and_interval(self, batch: np.ndarray,
                         controls: ColourControls | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lightness, ab, its calibrated interval [N,4,r,r]): a distribution head's interval from its
        distribution stage (float32 on ONNX Runtime; its ab too where it is the generator's size, else
        the generator's ab, guided up from the head's, and the interval resized to it), a
        regression's from its interval stage."""
        if self._open_distribution is not None:
            ab, interval, _, lightness = self._run_distribution(batch, controls, with_lightness=True)
            if ab.shape[-2:] == lightness.shape[-2:]:
                return lightness, ab, interval
            ab = self._generator(lightness, self._automatic_unless(batch, controls))
            return lightness, ab, _resized(interval, ab.shape[-2:])
        lightness, ab = self._lightness_and_ab(batch, controls)
        return lightness, ab, self._interval.run([INTERVAL_NAME], {LIGHTNESS_NAME: lightness, AB_NAME: ab})[0]

    def _guided_ab(self, batch: np.ndarray, controls: ColourControls | None, guides: BatchGuides,
                   with_interval: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(lightness, the guided ab, the model's own interval where asked or muting needs it): the
        generator's chroma (muted where unsure, with --mute-uncertain), then the guides."""
        interval = None
        if with_interval or self.spec.mute_uncertain:
            lightness, ab, interval = self._ab_and_interval(batch, controls)
            if self.spec.mute_uncertain:
                ab = mute_uncertain(ab, interval)
        else:
            lightness, ab = self._lightness_and_ab(batch, controls)
        return lightness, guides.apply(ab, lightness), interval

    def _run_guided(self, batch: np.ndarray, controls: ColourControls | None, guides: BatchGuides,
                    with_interval: bool):
        _, ab, interval = self._guided_ab(batch, controls, guides, with_interval)
        rgb = self._compose(batch, ab)
        if with_interval:
            assert interval is not None  # asked for above
            return rgb, upsample_interval(interval, *batch.shape[2:])
        return rgb

    def _run_distribution(self, batch: np.ndarray, controls: ColourControls | None,
                          with_lightness: bool = False) -> list[np.ndarray]:
        """The distribution stage's [ab, interval, logits] for the batch (and the lightness, last)."""
        with self._distribution_lock:
            if self._distribution is None and self._open_distribution is not None:
                self._distribution = self._open_distribution()
            session = self._distribution
        automatic = self._automatic_unless(batch, controls)
        if session is None or automatic is None:
            raise EngineError(f"{self.spec.model_name} has no distribution stage")
        lightness = self._lightness.run([LIGHTNESS_NAME], {INPUT_NAME: batch})[0]
        feeds = {LIGHTNESS_NAME: lightness, **automatic.feeds()}
        outputs = session.run([AB_NAME, INTERVAL_NAME, LOGITS_NAME], feeds)
        return [*outputs, lightness] if with_lightness else outputs

    def _logits(self, batch: np.ndarray, controls: ColourControls | None) -> np.ndarray:
        if self._open_distribution is None:
            return super()._logits(batch, controls)
        return self._run_distribution(batch, controls)[2]

    def _run_with_interval(self, batch: np.ndarray,
                           controls: ColourControls | None = None) -> tuple[np.ndarray, np.ndarray]:
        _, ab, interval = self._ab_and_interval(batch, controls)
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


def _resized(interval: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An interval [N,4,h,w] resized (bilinear, half-pixel centres) to `size` (height, width)."""
    height, width = size
    return np.stack([np.stack([cv2.resize(np.ascontiguousarray(plane), (width, height), interpolation=cv2.INTER_LINEAR)
                               for plane in item]) for item in interval]).astype(np.float32)
