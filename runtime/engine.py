"""The engine interface shared by every backend: spec, input checks, batching.

`Engine.colorize(gray)` takes uint8 grey images as [N,1,H,W], [N,H,W] or
[H,W] and returns uint8 RGB [N,H,W,3]. Batches larger than the artefact's
`max_batch` are split and run in pieces; sides outside [min_side, max_side]
are refused with an `EngineError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retint.errors import EngineError
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

    def as_dict(self) -> dict[str, str]:
        """What summaries, manifests and the server's /v1/spec say of the engine that ran."""
        return {"backend": self.backend, "precision": self.precision, "provider": self.provider,
                "reason": self.reason, "description": self.describe()}

    def describe(self) -> str:
        """One line for summaries and manifests: backend, precision, provider and why."""
        why = f"; {self.reason}" if self.reason else ""
        return f"{self.backend} {self.precision} ({self.provider}{why})"


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

    def colorize(self, gray: np.ndarray) -> np.ndarray:
        batch = as_batch(gray, self.spec.limits)
        step = self.spec.limits.max_batch
        if batch.shape[0] <= step:
            return self._run(batch)
        return np.concatenate([self._run(batch[i: i + step]) for i in range(0, batch.shape[0], step)])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release the backend's resources; the engine is unusable afterwards."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
