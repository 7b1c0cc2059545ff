"""Resolve an artefact once: its format, its stages, its metadata.

Every caller that takes an engine path (`colorize-batch --engine`, the
benchmarks, the server) resolves it here, and only here: the bundled default
model stands in for no path, the file's suffix decides its format, and the
stage files exported beside it are found by name:

    NAME.onnx / NAME.fp16.onnx / NAME.fp16.plan      the fused colouriser
    NAME.lightness.onnx                              gray -> L at render size
    NAME.generator.onnx / NAME.generator.fp16.onnx   L -> ab (the generator's precision)
    NAME.compose.onnx                                gray + ab -> rgb
    NAME.interval.onnx (optional)                    L + ab -> calibrated intervals of a and b
    NAME.distribution.onnx (colour model v2)         L + hints -> ab, intervals and logits over the bins

Which backends can run an artefact, and which one runs it, is `backends`'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retint.errors import EngineError
from retint.runtime.metadata import ArtefactMetadata, read_sidecar

DEFAULT_MODEL = Path(__file__).parent / "default_model" / "retint-default.onnx"
ONNX_SUFFIXES = (".onnx",)
TENSORRT_SUFFIXES = (".plan", ".engine", ".trt")


@dataclass(frozen=True)
class Stages:
    """The three stage files of one artefact (see the module doc)."""

    lightness: Path
    generator: Path
    compose: Path
    interval: Path | None = None  # the uncertainty head, where the checkpoint had one
    distribution: Path | None = None  # a distribution head's suggestions and intervals

    def missing(self) -> list[Path]:
        """The lightness, generator and compose files that are not on disk."""
        return [path for path in (self.lightness, self.generator, self.compose) if not path.is_file()]


@dataclass(frozen=True)
class Artefact:
    path: Path
    format: str  # "onnx" or "tensorrt"
    metadata: ArtefactMetadata | None  # from the sidecar; ONNX files also carry it inside
    stages: Stages | None  # None when its stage files are not beside it
    generator_metadata: ArtefactMetadata | None = None  # the generator stage's sidecar (its bf16 gate)
    bundled: bool = False  # the default model that ships with retint
    # The calibration of the interval or distribution stage (its sidecar's `uncertainty`); empty without one.
    uncertainty: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """How messages name it: its file name, or "bundled default model"."""
        return "bundled default model" if self.bundled else self.path.name

    @property
    def uncertainty_alpha(self) -> float | None:
        """The alpha its interval stage is calibrated at; None without an uncertainty head."""
        alpha = self.uncertainty.get("alpha")
        return float(alpha) if alpha is not None else None


def stage_paths(fused: Path) -> Stages:
    """Where the stages of a fused artefact live (see the module doc)."""
    name = fused.name
    for suffix in (".fp16.onnx", ".fp16.plan", ".fp16.engine", ".fp16.trt", ".onnx", ".plan", ".engine", ".trt"):
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            precision = ".fp16" if suffix.startswith(".fp16") else ""
            interval = fused.with_name(f"{stem}.interval.onnx")
            distribution = fused.with_name(f"{stem}.distribution.onnx")
            return Stages(lightness=fused.with_name(f"{stem}.lightness.onnx"),
                          generator=fused.with_name(f"{stem}.generator{precision}.onnx"),
                          compose=fused.with_name(f"{stem}.compose.onnx"),
                          interval=interval if interval.is_file() else None,
                          distribution=distribution if distribution.is_file() else None)
    raise EngineError(f"{fused}: unknown engine type (expected .onnx or .plan)")


def resolve_artefact(path: str | Path | None = None) -> Artefact:
    """The artefact at `path` (None: the bundled default model); EngineError if it cannot be one."""
    artefact = Path(path) if path is not None else DEFAULT_MODEL
    if not artefact.is_file():
        if path is None:
            raise EngineError(f"this retint installation has no bundled default model ({artefact})")
        raise EngineError(f"engine file not found: {artefact}")
    suffix = artefact.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        kind = "onnx"
    elif suffix in TENSORRT_SUFFIXES:
        kind = "tensorrt"
    else:
        raise EngineError(f"{artefact}: unknown engine type (expected .onnx or .plan)")
    stages = stage_paths(artefact)
    present = not stages.missing()
    calibrated = (stages.interval or stages.distribution) if present else None
    interval_metadata = read_sidecar(calibrated) if calibrated else None
    return Artefact(path=artefact, format=kind, metadata=read_sidecar(artefact),
                    stages=stages if present else None,
                    generator_metadata=read_sidecar(stages.generator) if present else None, bundled=path is None,
                    uncertainty=dict(interval_metadata.uncertainty) if interval_metadata else {})


def require_stages(artefact: Artefact, purpose: str) -> Stages:
    """The artefact's stages, or a clear EngineError naming the missing files."""
    if artefact.stages is not None:
        return artefact.stages
    missing = ", ".join(str(path) for path in stage_paths(artefact.path).missing())
    raise EngineError(f"{purpose} needs the engine's stages beside it ({missing} missing); export-trt writes them")


def require_uncertainty_head(name: str, alpha: float | None, purpose: str) -> None:
    """EngineError unless the artefact called `name` has an uncertainty head (`alpha` not None):
    `purpose` is what needs it (an option, an argument)."""
    if alpha is None:
        from retint.runtime.refusals import uncertainty_refusal

        raise EngineError(uncertainty_refusal(name, purpose))
