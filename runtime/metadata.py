"""Artefact metadata: what an engine file is, in a JSON sidecar beside it.

Every artefact `X.onnx` / `X.plan` has `X.onnx.json` / `X.plan.json` naming the
checkpoint it came from (sha256), architecture, render size, precision, the
versions that made it and the parity it measured, so a file found on disk
explains itself. ONNX files carry the same JSON in their metadata_props under
the key `retint`, so an ONNX file that lost its sidecar still explains itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retint.errors import EngineError

if TYPE_CHECKING:
    from retint.runtime.colour_controls import ColourBins

METADATA_FORMAT = "retint-artefact"
METADATA_KEY = "retint"
INPUT_NAME = "gray"
OUTPUT_NAME = "rgb"
# Between the stages (see export/deploy.py): L/50 - 1 and ab at render size.
LIGHTNESS_NAME = "lightness"
AB_NAME = "ab"
# The interval stage's output at render size: a_low, a_high, b_low, b_high [N,4,R,R] (CIELAB units).
INTERVAL_NAME = "interval"
# The distribution stage's logits over the a*b* bins at the head's size [N,Q,r,r] (suggestions).
LOGITS_NAME = "logits"


@dataclass(frozen=True)
class SizeLimits:
    """What shapes the artefact accepts: sides in [min_side, max_side], N in [1, max_batch]."""

    min_side: int = 16
    max_side: int = 8192
    max_batch: int = 16

    def admits(self, height: int, width: int) -> bool:
        """Whether an image of this size is within the sides the artefact accepts."""
        return self.min_side <= min(height, width) and max(height, width) <= self.max_side

    def refusal(self, height: int, width: int) -> str | None:
        """Why an image of this size cannot run (one line for a manifest, an HTTP error or an
        exception), or None when it can."""
        if self.admits(height, width):
            return None
        return (f"{width}x{height} is outside the engine's limits: each side must be "
                f"{self.min_side}..{self.max_side} pixels")


@dataclass(frozen=True)
class ArtefactMetadata:
    kind: str  # "colorizer" (fused), or a stage: "lightness", "generator", "compose"
    precision: str  # "fp32" or "fp16" (the generator's precision; I/O is always uint8)
    render_size: int
    arch: str
    limits: SizeLimits
    checkpoint_sha256: str = ""
    checkpoint_name: str = ""
    generator_config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    # TensorRT plans: version, GPU, compute capability, profile.
    tensorrt: dict[str, Any] = field(default_factory=dict)
    # Where the checkpoint had a calibrated uncertainty head: alpha, lambda, calibration sources,
    # the guarantee (see model/uncertainty.py). Empty otherwise.
    uncertainty: dict[str, Any] = field(default_factory=dict)
    # A distribution-head model's a*b* bins: centres [[a, b], ...], rebalancing weights,
    # default_temperature, global_hint (whether the graph takes one). Empty for a regression model.
    colour_bins: dict[str, Any] = field(default_factory=dict)
    format: str = METADATA_FORMAT

    def bins(self) -> "ColourBins | None":
        """The bins as the runtime uses them, or None for a regression model."""
        from retint.runtime.colour_controls import bins_of

        return bins_of(self.colour_bins)

    def to_json(self) -> str:
        """The sidecar's text (and the ONNX metadata_props value)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> "ArtefactMetadata":
        """Metadata from a parsed sidecar; EngineError when it is not retint's."""
        if raw.get("format") != METADATA_FORMAT:
            raise EngineError("metadata is not retint artefact metadata")
        values = dict(raw)
        values["limits"] = SizeLimits(**values.get("limits", {}))
        try:
            return ArtefactMetadata(**values)
        except TypeError as error:
            raise EngineError(f"malformed artefact metadata: {error}") from error


def sidecar_path(artefact: Path) -> Path:
    """NAME.EXT.json beside the artefact NAME.EXT."""
    return Path(str(artefact) + ".json")


def read_sidecar(artefact: Path) -> ArtefactMetadata | None:
    """The artefact's sidecar metadata, or None where there is none."""
    path = sidecar_path(artefact)
    if not path.is_file():
        return None
    try:
        return ArtefactMetadata.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, OSError) as error:
        raise EngineError(f"{path}: unreadable sidecar ({error})") from error


def metadata_from_onnx_props(props: dict[str, str]) -> ArtefactMetadata | None:
    """Metadata from an ONNX file's metadata_props (as ONNX Runtime reports them)."""
    if METADATA_KEY not in props:
        return None
    try:
        return ArtefactMetadata.from_dict(json.loads(props[METADATA_KEY]))
    except json.JSONDecodeError as error:
        raise EngineError(f"malformed '{METADATA_KEY}' metadata in the ONNX file ({error})") from error
