"""`export-trt` configuration: one field per option."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retint.errors import InputError


@dataclass(frozen=True)
class ShapeProfile:
    """A TensorRT optimisation profile for the input `gray` [N,1,H,W], as (N, H, W)."""

    min_shape: tuple[int, int, int] = (1, 16, 16)
    opt_shape: tuple[int, int, int] = (1, 1024, 1024)
    max_shape: tuple[int, int, int] = (16, 4096, 4096)

    def as_nchw(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) as NCHW shapes with one channel, as TensorRT's profile takes them."""
        return tuple((n, 1, h, w) for n, h, w in (self.min_shape, self.opt_shape, self.max_shape))


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: Path
    output_dir: Path
    name: str | None = None  # None: the checkpoint's file name without suffix
    render_size: int | None = None  # None: the checkpoint's render size
    max_batch: int = 16
    profile: ShapeProfile = ShapeProfile()
    workspace_gb: float = 4.0
    timing_cache: Path | None = None
    parity_images: Path | None = None
    onnx_only: bool = False
    triton: Path | None = None  # also write a Triton model repository here (export/triton.py)
    triton_device: str = "cpu"  # the ONNX model's instance_group: "cpu" or "gpu"


def parse_shape(text: str) -> tuple[int, int, int]:
    """'4x1024x768' -> (4, 1024, 768) as (N, H, W)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise InputError(f"shape {text!r} must be NxHxW with positive integers, e.g. 1x1024x1024")
    return values  # type: ignore[return-value]
