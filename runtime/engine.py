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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retint.errors import EngineError
from retint.runtime.artefact import require_uncertainty_head
from retint.runtime.colour_controls import (ColourBins, ColourControls, Hint, check_temperature, colour_controls,
                                            guide_refusal)
from retint.runtime.metadata import ArtefactMetadata, SizeLimits
from retint.runtime.suggestions import Suggestion, check_count, check_points, suggestions


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
    # Whether `Engine.suggest` can run: a distribution head exported with its distribution stage.
    suggests: bool = False

    def as_dict(self) -> dict[str, str | float | bool | None]:
        """What summaries, manifests and the server's /v1/spec say of the engine that ran."""
        return {"backend": self.backend, "precision": self.precision, "provider": self.provider,
                "reason": self.reason, "description": self.describe(), "label": self.label(),
                "uncertainty_alpha": self.uncertainty_alpha, "mute_uncertain": self.mute_uncertain,
                "suggests": self.suggests}

    @property
    def temperature(self) -> float | None:
        """A distribution-head engine's temperature (its calls' default); None for a regression."""
        return self.colour_bins.default_temperature if self.colour_bins is not None else None

    def describe(self) -> str:
        """The whole story, once per run (a summary, the server's start line): backend, precision,
        provider and why (and a colour model v2 engine's temperature)."""
        why = f"; {self.reason}" if self.reason else ""
        return f"{self.label()} ({self.provider}{why})"

    def label(self) -> str:
        """A few words for what is repeated per item (a video's manifest line, an HTTP header):
        backend and precision (and a colour model v2 engine's temperature)."""
        temperature = f", temperature {self.temperature:g}" if self.temperature is not None else ""
        return f"{self.backend} {self.precision}{temperature}"


@dataclass(frozen=True)
class SpecFacts:
    """What the opener (`backends`) knows of an engine beyond its file, handed to the engine's
    constructor so that its spec is complete when it is built: why this backend, the uncertainty
    head's alpha, muting, and a temperature that replaces the artefact's default."""

    reason: str = ""
    uncertainty_alpha: float | None = None
    mute_uncertain: bool = False
    temperature: float | None = None
    distribution_stage: bool = False  # the artefact has NAME.distribution.onnx beside it

    def spec(self, *, path: Path, backend: str, provider: str, precision: str, render_size: int,
             limits: SizeLimits, metadata: ArtefactMetadata | None) -> EngineSpec:
        """The engine's spec: what its file says (metadata), what its runner says (provider,
        limits) and these facts."""
        bins = metadata.bins() if metadata is not None else None
        if self.temperature is not None:
            if bins is None:
                raise EngineError(f"{path.name} is a regression model: it has no temperature to set "
                                  "(colour model v2 artefacts do)")
            bins = replace(bins, default_temperature=check_temperature(self.temperature))
        return EngineSpec(path=path, backend=backend, provider=provider, precision=precision,
                          render_size=render_size, limits=limits, metadata=metadata, reason=self.reason,
                          uncertainty_alpha=self.uncertainty_alpha, mute_uncertain=self.mute_uncertain,
                          colour_bins=bins, suggests=bins is not None and self.distribution_stage)


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
    refusal = limits.refusal(height, width)
    if refusal:
        raise EngineError(refusal)
    return np.ascontiguousarray(gray)


class Engine:
    """Base class: subclasses implement `_run` on one batch of at most max_batch.

    `open_side_stages` (where the artefact has an interval or distribution stage and this engine
    runs a fused graph or plan) opens the artefact's stages on ONNX Runtime for `with_uncertainty`
    and `suggest` calls: the fused graph has no interval or distribution output because ONNX
    Runtime computes every output on every call, asked for or not, and plain colorize must cost
    no more.
    """

    def __init__(self, spec: EngineSpec, open_side_stages: Callable[[], "Engine"] | None = None):
        self.spec = spec
        self._open_side_stages = open_side_stages
        self._side_stages: Engine | None = None
        self._side_stages_lock = threading.Lock()

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
        if with_uncertainty:
            require_uncertainty_head(self.spec.path.name, self.spec.uncertainty_alpha, "with_uncertainty")
        step = self.spec.limits.max_batch

        def run(start: int):
            part = batch[start: start + step]
            part_controls = None if controls is None else controls.part(start, start + step)
            if with_uncertainty:
                return self._run_with_interval(part, part_controls)
            return self._run(part, part_controls)

        if batch.shape[0] <= step:
            return run(0)
        parts = [run(start) for start in range(0, batch.shape[0], step)]
        if with_uncertainty:
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return np.concatenate(parts)

    def suggest(self, gray: np.ndarray, points: Sequence[Sequence[float]], k: int = 5, *,
                hints: Sequence[Hint] | None = None, reference: np.ndarray | None = None) -> list[list[Suggestion]]:
        """The k most probable colours at each (x, y) point of ONE grey image [H,W] (or [1,1,H,W]),
        given the `hints` (and `reference`) already chosen: one list per point, most probable
        first (`runtime.suggestions`). Distribution-head engines whose export has a distribution
        stage; EngineError otherwise, for a point outside the image, or k outside 1..16."""
        batch = as_batch(gray, self.spec.limits)
        if batch.shape[0] != 1:
            raise EngineError(f"suggest takes one image, got {batch.shape[0]}")
        bins = self.spec.colour_bins
        if bins is None:
            raise EngineError(f"{self.spec.path.name} predicts one colour per pixel (a regression model): it has "
                              "no distribution of colours to suggest from; colour model v2 artefacts do")
        if not self.spec.suggests:
            raise EngineError(f"{self.spec.path.name}: its distribution stage (NAME.distribution.onnx, which "
                              "export-trt writes beside it) is missing, so it cannot suggest colours")
        count = check_count(k)
        checked = check_points(points, *batch.shape[2:])
        controls = self.controls_for(batch, [list(hints or [])], None, reference)
        logits = self._logits(batch, controls)
        return suggestions(logits[0], bins.centres, batch[0, 0], checked, count)

    def controls_for(self, batch: np.ndarray, hints: Sequence[Sequence[Hint]] | None = None,
                     temperature: float | None = None, reference: np.ndarray | None = None) -> ColourControls | None:
        """The extra inputs of a distribution-head engine for `batch` (automatic where nothing is
        given); None for a regression engine, which refuses hints, references and temperatures."""
        bins = self.spec.colour_bins
        given = [name for name, value in (("hints", hints), ("temperature", temperature),
                                          ("reference", reference)) if value is not None]
        refusal = guide_refusal(self.spec.path.name, bins, given)
        if refusal:
            raise EngineError(refusal)
        if bins is None:
            return None
        return colour_controls(bins, batch.shape[0], batch.shape[2:], self.spec.render_size, hints, temperature,
                               reference)

    def _automatic_unless(self, batch: np.ndarray, controls: ColourControls | None) -> ColourControls | None:
        """`controls`, or automatic ones where a distribution-head engine was given none."""
        return controls if controls is not None else self.controls_for(batch)

    def _run(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        """One batch of at most max_batch; `controls` None is automatic colouring."""
        raise NotImplementedError

    def _run_with_interval(self, batch: np.ndarray,
                           controls: ColourControls | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A fused engine's (rgb, interval): by the artefact's stages, opened on first use."""
        return self._side("its interval stage")._run_with_interval(batch, controls)

    def _logits(self, batch: np.ndarray, controls: ColourControls | None) -> np.ndarray:
        """A distribution head's logits [N,Q,r,r]: by the artefact's distribution stage."""
        return self._side("its distribution stage")._logits(batch, controls)

    def _side(self, what: str) -> "Engine":
        """The artefact's stages on ONNX Runtime, for what a fused graph or plan does not output
        (intervals, the distribution), opened on first use."""
        with self._side_stages_lock:
            if self._side_stages is None:
                if self._open_side_stages is None:
                    raise EngineError(f"{self.spec.path.name}: {what} is not beside it (export-trt writes it)")
                self._side_stages = self._open_side_stages()
        return self._side_stages

    def close(self) -> None:
        """Release the backend's resources (and the interval stages, if opened); the engine is
        unusable afterwards. Subclasses release their own and call this."""
        with self._side_stages_lock:
            if self._side_stages is not None:
                self._side_stages.close()
                self._side_stages = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
