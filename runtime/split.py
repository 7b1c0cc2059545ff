"""The colouriser in two halves, for processing chroma between them.

`predict` (gray -> ab at render size) and `compose` (gray + ab -> rgb) are
the two halves of the fused graph, exported beside it as
`NAME.predict[.fp16].onnx` and `NAME.compose.onnx`. The video path uses them
to smooth chroma over time; the fused graph stays the fast path otherwise.
Runs on ONNX Runtime (CPU or CUDA), never torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from retint.errors import EngineError
from retint.runtime.engine import as_batch
from retint.runtime.metadata import AB_NAME, INPUT_NAME, OUTPUT_NAME, SizeLimits, read_sidecar
from retint.runtime.onnx_runner import choose_providers


def halves_of(fused: Path) -> tuple[Path, Path]:
    """Where the halves of a fused artefact live: NAME[.fp16].onnx -> NAME.predict[.fp16].onnx, NAME.compose.onnx."""
    name = fused.name
    for suffix in (".fp16.onnx", ".fp16.plan", ".onnx", ".plan"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            precision = ".fp16" if suffix.startswith(".fp16") else ""
            return fused.with_name(f"{stem}.predict{precision}.onnx"), fused.with_name(f"{stem}.compose.onnx")
    raise EngineError(f"{fused}: cannot tell where its predict/compose halves are")


class SplitEngine:
    """predict(gray) -> ab [N,2,R,R] float32; compose(gray, ab) -> rgb [N,H,W,3] uint8."""

    def __init__(self, fused: Path, *, device: str = "auto", providers: Sequence[str] | None = None):
        predict_path, compose_path = halves_of(Path(fused))
        missing = [str(p) for p in (predict_path, compose_path) if not p.is_file()]
        if missing:
            raise EngineError(f"temporal smoothing needs the engine's halves beside it ({', '.join(missing)} "
                              "missing); export-trt writes them")
        chosen = choose_providers(device, providers)
        self._predict = ort.InferenceSession(str(predict_path), providers=chosen)
        self._compose = ort.InferenceSession(str(compose_path), providers=chosen)
        metadata = read_sidecar(predict_path)
        self.render_size = metadata.render_size if metadata else self._predict.get_outputs()[0].shape[-1]
        # Without a sidecar, the contract's limits (sides 16..8192).
        self.limits = metadata.limits if metadata else SizeLimits()
        self.provider = self._predict.get_providers()[0]

    def predict(self, gray: np.ndarray) -> np.ndarray:
        batch = as_batch(gray, self.limits)
        return self._predict.run([AB_NAME], {INPUT_NAME: batch})[0]

    def compose(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        batch = as_batch(gray, self.limits)
        return self._compose.run([OUTPUT_NAME], {INPUT_NAME: batch, AB_NAME: np.ascontiguousarray(ab, np.float32)})[0]
