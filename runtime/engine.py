"""The engine interface shared by every backend: spec, input checks, batching, guides.

`Engine.colorize(gray)` takes uint8 grey images as [N,1,H,W], [N,H,W] or
[H,W] and returns uint8 RGB [N,H,W,3]. Batches larger than the artefact's
`max_batch` are split and run in pieces; sides outside [min_side, max_side]
are refused with an `EngineError`. Every model whose stages lie beside it
also takes point hints and a reference photo (`runtime.guides`: the guided
call runs the stages with the guides between the generator and the compose);
a distribution-head artefact (colour model v2) also takes a temperature
(`colour_controls`). What a model can do is its spec's `capabilities`, read
once from its metadata; what it cannot is refused in `runtime.refusals`' words.
Without guides, colouring is exactly what it always was.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retint.errors import EngineError
from retint.runtime.artefact import require_uncertainty_head
from retint.runtime.capabilities import Capabilities
from retint.runtime.colour_controls import ColourBins, ColourControls, check_temperature, colour_controls
from retint.runtime.guides.apply import BatchGuides
from retint.runtime.guides.hints import Hint, checked_hints
from retint.runtime.guides.palette import Palette
from retint.runtime.guides.suggestions import (FROM_MODEL, FROM_PALETTE, Suggestion, check_count, check_points,
                                               palette_suggestions, suggestion_source, suggestions)
from retint.runtime.metadata import ArtefactMetadata, SizeLimits
from retint.runtime.refusals import guide_refusal, temperature_refusal

# /suggest answers clicks on one photo one after another: the distribution of the last few
# (photo, hints, reference) is kept, so a click costs no generator run.
SUGGEST_LOGITS_KEPT = 2


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
    # What the model can do (runtime.capabilities), read once from its metadata and stage files.
    capabilities: Capabilities = Capabilities()
    name: str = ""  # how refusals name the model (Artefact.name); its file name where empty

    def as_dict(self) -> dict[str, str | float | bool | None]:
        """What summaries, manifests and the server's /v1/spec say of the engine that ran."""
        return {"backend": self.backend, "precision": self.precision, "provider": self.provider,
                "reason": self.reason, "description": self.describe(), "label": self.label(),
                "uncertainty_alpha": self.uncertainty_alpha, "mute_uncertain": self.mute_uncertain,
                "suggests": self.suggests}

    @property
    def model_name(self) -> str:
        """The model as messages name it: its file name, or "bundled default model"."""
        return self.name or self.path.name

    @property
    def colour_bins(self) -> ColourBins | None:
        """A distribution-head model's bins (and its temperature); None for a regression."""
        return self.capabilities.bins

    @property
    def suggests(self) -> bool:
        """Whether suggestions can come from the model's own distribution (its distribution stage)."""
        return self.capabilities.suggests

    @property
    def temperature(self) -> float | None:
        """A distribution-head engine's temperature (its calls' default); None for a regression."""
        return self.capabilities.default_temperature

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
    stages: bool = False  # its lightness, generator and compose stages lie beside it (guides need them)
    name: str = ""  # Artefact.name: how refusals name the model

    def spec(self, *, path: Path, backend: str, provider: str, precision: str, render_size: int,
             limits: SizeLimits, metadata: ArtefactMetadata | None) -> EngineSpec:
        """The engine's spec: what its file says (metadata), what its runner says (provider,
        limits) and these facts."""
        bins = metadata.bins() if metadata is not None else None
        if self.temperature is not None:
            if bins is None:
                raise EngineError(temperature_refusal(self.name or path.name))
            bins = replace(bins, default_temperature=check_temperature(self.temperature))
        capabilities = Capabilities.read(bins, stages=self.stages, distribution_stage=self.distribution_stage,
                                         uncertainty_alpha=self.uncertainty_alpha)
        return EngineSpec(path=path, backend=backend, provider=provider, precision=precision,
                          render_size=render_size, limits=limits, metadata=metadata, reason=self.reason,
                          uncertainty_alpha=self.uncertainty_alpha, mute_uncertain=self.mute_uncertain,
                          capabilities=capabilities, name=self.name)


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
    """Base class: subclasses implement `_run` on one batch of at most max_batch (and a staged engine
    `_run_guided`, the guides between its generator and compose).

    `open_side_stages` (where the artefact's stages lie beside it and this engine runs a fused graph
    or plan) opens them on ONNX Runtime for guided, `with_uncertainty` and `suggest` calls: the
    fused graph has no interval or distribution output because ONNX Runtime computes every output
    on every call, asked for or not, and plain colorize must cost no more.
    """

    def __init__(self, spec: EngineSpec, open_side_stages: Callable[[], "Engine"] | None = None):
        self.spec = spec
        self._open_side_stages = open_side_stages
        self._side_stages: Engine | None = None
        self._side_stages_lock = threading.Lock()
        self._suggest_logits: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._suggest_lock = threading.Lock()

    def colorize(self, gray: np.ndarray, with_uncertainty: bool = False, *,
                 hints: Sequence[Sequence[Hint]] | None = None, temperature: float | None = None,
                 reference: np.ndarray | None = None):
        """rgb uint8 [N,H,W,3]; with_uncertainty: (rgb, ab_interval float32 [N,H,W,4] = a_low,
        a_high, b_low, b_high in CIELAB units, calibrated at spec.uncertainty_alpha; with guides, the
        model's own interval, before the guides).

        Guides (`runtime.guides`), on every model whose stages lie beside it: `hints`, one list per
        image of (x, y, a, b) points (x, y in the input's pixels, a and b in CIELAB), each of which
        holds exactly at its pixel; `reference`, a uint8 RGB photo whose palette guides every image
        of the batch. Distribution-head engines only: `temperature`, the annealed mean's T (lower:
        bolder, mode-seeking colours; default: the artefact's). None of them: automatic colouring."""
        batch = as_batch(gray, self.spec.limits)
        controls = self.controls_for(batch, hints, temperature, reference)
        guides = self.guides_for(batch, hints, reference)
        if with_uncertainty:
            require_uncertainty_head(self.spec.model_name, self.spec.uncertainty_alpha, "with_uncertainty")
        step = self.spec.limits.max_batch

        def run(start: int):
            part = batch[start: start + step]
            part_controls = None if controls is None else controls.part(start, start + step)
            if guides is not None:
                return self._run_guided(part, part_controls, guides.part(start, start + step), with_uncertainty)
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
        """Up to k colours at each (x, y) point of ONE grey image [H,W] (or [1,1,H,W]), given the
        `hints` (and `reference`) already chosen: one list per point, most likely first
        (`runtime.guides.suggestions`). From the model's own distribution where it has one (its
        distribution stage beside it; the last few images' distributions are kept, so clicks on one
        photo run the model once); otherwise from the reference's palette at the point's lightness;
        otherwise none (empty lists: the page then offers its colour picker alone). EngineError for
        a point outside the image, or k outside 1..16."""
        batch = as_batch(gray, self.spec.limits)
        if batch.shape[0] != 1:
            raise EngineError(f"suggest takes one image, got {batch.shape[0]}")
        count = check_count(k)
        checked = check_points(points, *batch.shape[2:])
        source = suggestion_source(self.spec.capabilities, reference is not None)
        bins = self.spec.colour_bins
        if source == FROM_MODEL and bins is not None:
            controls = self.controls_for(batch, [list(hints or [])], None, reference)
            logits = self._kept_logits(batch, hints, reference, controls)
            return suggestions(logits[0], bins.centres, batch[0, 0], checked, count)
        if source == FROM_PALETTE and reference is not None:
            return palette_suggestions(Palette.of(reference), batch[0, 0], checked, count)
        return [[] for _ in checked]

    def check_guides(self, image_size: tuple[int, int], hints: Sequence[Sequence[Hint]] | None = None,
                     temperature: float | None = None, reference_given: bool = False) -> None:
        """EngineError for guides this engine cannot take on an image of `image_size` (height, width):
        what the model cannot take (`runtime.refusals`' words), a hint outside its image, a temperature
        out of range. Nothing is computed: a server checks a request with it before decoding more."""
        given = [name for name, value in (("hints", hints), ("temperature", temperature)) if value is not None]
        refusal = guide_refusal(self.spec.model_name, self.spec.capabilities,
                                given + (["reference"] if reference_given else []))
        if refusal:
            raise EngineError(refusal)
        if temperature is not None:
            check_temperature(temperature)
        if hints is not None:
            checked_hints(hints, len(hints), image_size)

    def _kept_logits(self, batch: np.ndarray, hints: Sequence[Hint] | None, reference: np.ndarray | None,
                     controls: ColourControls | None) -> np.ndarray:
        """The distribution of this (image, hints, reference), from the last few kept or computed now."""
        digest = hashlib.blake2b(repr(batch.shape).encode(), digest_size=16)
        digest.update(batch.tobytes())
        digest.update(repr([tuple(map(float, hint)) for hint in hints or []]).encode())
        if reference is not None:
            digest.update(repr(reference.shape).encode() + np.ascontiguousarray(reference).tobytes())
        key = digest.digest()
        with self._suggest_lock:
            kept = self._suggest_logits.get(key)
            if kept is not None:
                self._suggest_logits.move_to_end(key)
                return kept
        logits = self._logits(batch, controls)
        with self._suggest_lock:
            self._suggest_logits[key] = logits
            while len(self._suggest_logits) > SUGGEST_LOGITS_KEPT:
                self._suggest_logits.popitem(last=False)
        return logits

    def controls_for(self, batch: np.ndarray, hints: Sequence[Sequence[Hint]] | None = None,
                     temperature: float | None = None, reference: np.ndarray | None = None) -> ColourControls | None:
        """The extra inputs of a distribution-head engine's graph for `batch` (its hint planes, global
        hint and temperature; automatic where nothing is given); None for a regression engine. Refuses
        (EngineError, `runtime.refusals`' words) what the model cannot take."""
        given = [name for name, value in (("hints", hints), ("temperature", temperature),
                                          ("reference", reference)) if value is not None]
        refusal = guide_refusal(self.spec.model_name, self.spec.capabilities, given)
        if refusal:
            raise EngineError(refusal)
        bins = self.spec.colour_bins
        if bins is None:
            return None
        return colour_controls(bins, batch.shape[0], batch.shape[2:], self.spec.render_size, hints, temperature,
                               reference)

    def guides_for(self, batch: np.ndarray, hints: Sequence[Sequence[Hint]] | None = None,
                   reference: np.ndarray | None = None) -> BatchGuides | None:
        """What guides `batch`'s colours between the generator and the compose (checked: a hint outside
        its image is an EngineError); None for automatic colouring."""
        return BatchGuides.of(batch.shape[0], batch.shape[2:], hints, reference)

    def _automatic_unless(self, batch: np.ndarray, controls: ColourControls | None) -> ColourControls | None:
        """`controls`, or automatic ones where a distribution-head engine was given none."""
        return controls if controls is not None else self.controls_for(batch)

    def _run(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        """One batch of at most max_batch; `controls` None is automatic colouring."""
        raise NotImplementedError

    def _run_guided(self, batch: np.ndarray, controls: ColourControls | None, guides: BatchGuides,
                    with_interval: bool):
        """One guided batch (rgb, or (rgb, interval)): by the artefact's stages, opened on first use."""
        return self._side("its stages (guides run between them)")._run_guided(batch, controls, guides,
                                                                              with_interval)

    def _run_with_interval(self, batch: np.ndarray,
                           controls: ColourControls | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A fused engine's (rgb, interval): by the artefact's stages, opened on first use."""
        return self._side("its interval stage")._run_with_interval(batch, controls)

    def _logits(self, batch: np.ndarray, controls: ColourControls | None) -> np.ndarray:
        """A distribution head's logits [N,Q,r,r]: by the artefact's distribution stage."""
        return self._side("its distribution stage")._logits(batch, controls)

    def _side(self, what: str) -> "Engine":
        """The artefact's stages on ONNX Runtime, for what a fused graph or plan cannot do (guides,
        intervals, the distribution), opened on first use."""
        with self._side_stages_lock:
            if self._side_stages is None:
                if self._open_side_stages is None:
                    raise EngineError(f"{self.spec.model_name}: {what} is not beside it (export-trt writes it)")
                self._side_stages = self._open_side_stages()
        return self._side_stages

    def close(self) -> None:
        """Release the backend's resources (and the side stages, if opened); the engine is
        unusable afterwards. Subclasses release their own and call this."""
        with self._side_stages_lock:
            if self._side_stages is not None:
                self._side_stages.close()
                self._side_stages = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
