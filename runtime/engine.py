"""The engine interface shared by every backend: spec, input checks, batching.

`Engine.colorize(gray)` takes uint8 grey images as [N,1,H,W], [N,H,W] or
[H,W] and returns uint8 RGB [N,H,W,3]. Batches larger than the artefact's
`max_batch` are split and run in pieces; sides outside [min_side, max_side]
are refused with an `EngineError`. A distribution-head artefact (colour
model v2) also takes point hints, a reference photo and a temperature
(`colour_controls`); without them it colours automatically.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retint.errors import EngineError
from retint.runtime.colour_controls import ColourBins, ColourControls, Hint, colour_controls
from retint.runtime.metadata import ArtefactMetadata, SizeLimits


@dataclass(frozen=True)
class EngineSpec:
    path: Path
    backend: str  # "onnxruntime", "openvino" or "tensorrt": what runs the generator
    provider: str  # e.g. "CPUExecutionProvider", "CUDAExecutionProvider", "TensorRT 10.12"
    precision: str  # "fp32", "fp16" or "bf16": the generator's arithmetic ("unknown" without metadata)
    render_size: int
    limits: SizeLimits
    metadata: ArtefactMetadata | None
    reason: str = ""  # why this backend and precision (auto's choice, a gate, the CPU)
    # alpha of the artefact's calibrated intervals (colorize(..., with_uncertainty=True)); None without a head.
    uncertainty_alpha: float | None = None
    mute_uncertain: bool = False  # chroma shrunk toward grey where the interval is wide
    # A distribution-head model's bins (it takes hints, a reference and a temperature); None for a regression.
    colour_bins: ColourBins | None = None

    def as_dict(self) -> dict[str, str]:
        """What summaries, manifests and the server's /v1/spec say of the engine that ran."""
        return {"backend": self.backend, "precision": self.precision, "provider": self.provider,
                "reason": self.reason, "description": self.describe(),
                "uncertainty_alpha": self.uncertainty_alpha, "mute_uncertain": self.mute_uncertain}

    @property
    def temperature(self) -> float | None:
        """A distribution-head engine's temperature (its calls' default); None for a regression."""
        return self.colour_bins.default_temperature if self.colour_bins is not None else None

    def describe(self) -> str:
        """One line for summaries and manifests: backend, precision, provider and why (and a
        colour model v2 engine's temperature)."""
        why = f"; {self.reason}" if self.reason else ""
        temperature = f", temperature {self.temperature:g}" if self.temperature is not None else ""
        return f"{self.backend} {self.precision}{temperature} ({self.provider}{why})"


def as_batch(gray: np.ndarray, limits: SizeLimits) -> np.ndarray:
    """Check a grey input and return it as a contiguous uint8 [N,1,H,W] array."""
    if not isinstance(gray, np.ndarray):
        raise EngineError(f"expected a numpy array of grey pixels, got {type(gray).__name__}")
    if gray.dtype != np.uint8:
        raise EngineError(f"expected uint8 grey pixels, got {gray.dtype}")
    if gray.ndim == 2:
        gray = gray[None, None]
    elif gray.ndim == 3:
        gray = gray[:, None]
    elif gray.ndim != 4 or gray.shape[1] != 1:
        raise EngineError(f"expected a grey image shaped [H,W], [N,H,W] or [N,1,H,W], got {list(gray.shape)}")
    if gray.size == 0:
        raise EngineError(f"empty input of shape {list(gray.shape)}")
    height, width = gray.shape[2:]
    if not limits.admits(height, width):
        raise EngineError(
            f"image of {width}x{height} is outside this engine's limits: each side must be "
            f"{limits.min_side}..{limits.max_side} pixels")
    return np.ascontiguousarray(gray)


class Engine:
    """Base class: subclasses implement `_run` on one batch of at most max_batch."""

    spec: EngineSpec

    def colorize(self, gray: np.ndarray, with_uncertainty: bool = False, *,
                 hints: Sequence[Sequence[Hint]] | None = None, temperature: float | None = None,
                 reference: np.ndarray | None = None):
        """rgb uint8 [N,H,W,3]; with_uncertainty: (rgb, ab_interval float32 [N,H,W,4] = a_low,
        a_high, b_low, b_high in CIELAB units, calibrated at spec.uncertainty_alpha).

        Distribution-head engines only: `hints`, one list per image of (x, y, a, b) points (x, y
        in the input's pixels, a and b in CIELAB); `reference`, a uint8 RGB photo whose palette
        guides every image of the batch; `temperature`, the annealed mean's T (lower: bolder,
        mode-seeking colours; default: the artefact's). None of them: automatic colouring."""
        batch = as_batch(gray, self.spec.limits)
        controls = self.controls_for(batch, hints, temperature, reference)
        if with_uncertainty and self.spec.uncertainty_alpha is None:
            raise EngineError(f"{self.spec.path.name} has no uncertainty head (export-trt writes "
                              "NAME.interval.onnx from a checkpoint made by colorize-uncertainty)")
        step = self.spec.limits.max_batch

        def run(start: int):
            part = batch[start: start + step]
            if with_uncertainty:
                return self._run_with_interval(part)
            return self._run(part, None if controls is None else controls.part(start, start + step))

        if batch.shape[0] <= step:
            return run(0)
        parts = [run(start) for start in range(0, batch.shape[0], step)]
        if with_uncertainty:
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return np.concatenate(parts)

    def controls_for(self, batch: np.ndarray, hints: Sequence[Sequence[Hint]] | None = None,
                     temperature: float | None = None, reference: np.ndarray | None = None) -> ColourControls | None:
        """The extra inputs of a distribution-head engine for `batch` (automatic where nothing is
        given); None for a regression engine, which refuses hints, references and temperatures."""
        bins = self.spec.colour_bins
        if bins is None:
            given = [name for name, value in (("hints", hints), ("temperature", temperature),
                                              ("reference", reference)) if value is not None]
            if given:
                raise EngineError(f"{self.spec.path.name} predicts one colour per pixel (a regression model): "
                                  f"it takes no {', '.join(given)}; colour model v2 artefacts do")
            return None
        return colour_controls(bins, batch.shape[0], batch.shape[2:], self.spec.render_size, hints, temperature,
                               reference)

    def _automatic_unless(self, batch: np.ndarray, controls: ColourControls | None) -> ColourControls | None:
        """`controls`, or automatic ones where a distribution-head engine was given none."""
        return controls if controls is not None else self.controls_for(batch)

    def _run(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        """One batch of at most max_batch; `controls` None is automatic colouring."""
        raise NotImplementedError

    # Set by backends.open_engine where the artefact has an interval stage and this engine runs
    # the fused graph: opens the artefact's stages on ONNX Runtime. The fused graph has no
    # interval output because ONNX Runtime computes every output on every call, asked for or
    # not, and plain colorize must cost no more.
    open_uncertainty_stages: Callable[[], "Engine"] | None = None
    _uncertainty_stages: "Engine | None" = None
    _uncertainty_lock = threading.Lock()

    def _run_with_interval(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._uncertainty_stages is None:
            with self._uncertainty_lock:
                if self._uncertainty_stages is None:
                    if self.open_uncertainty_stages is None:
                        raise EngineError(f"{self.spec.path.name}: its interval stage cannot run here")
                    self._uncertainty_stages = self.open_uncertainty_stages()
        return self._uncertainty_stages._run_with_interval(batch)

    def _close_uncertainty_stages(self) -> None:
        if self._uncertainty_stages is not None:
            self._uncertainty_stages.close()
            self._uncertainty_stages = None

    def close(self) -> None:
        """Release the backend's resources; the engine is unusable afterwards."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
