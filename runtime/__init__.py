"""retint.runtime: load a colouriser artefact and run it, without torch.

    from retint.runtime import load_engine
    with load_engine("model.fp16.plan") as engine:     # or .onnx, or None
        rgb = engine.colorize(gray)                     # uint8 [N,H,W,3]

`load_engine(None)` opens the default model bundled with retint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from retint.errors import EngineError
from retint.runtime.engine import Engine, EngineSpec

DEFAULT_MODEL = Path(__file__).parent / "default_model" / "retint-default.onnx"

__all__ = ["DEFAULT_MODEL", "Engine", "EngineSpec", "load_engine", "runs_on_cpu"]


def runs_on_cpu(path: str | Path | None, device: str = "auto") -> bool:
    """Whether `load_engine(path, device=device)` would run on ONNX Runtime's CPU provider."""
    artefact = Path(path) if path is not None else DEFAULT_MODEL
    if artefact.suffix.lower() != ".onnx":
        return False
    from retint.runtime.onnx_runner import CPU, choose_providers

    return choose_providers(device, None)[0] == CPU


def load_engine(path: str | Path | None = None, *, device: str = "auto",
                providers: Sequence[str] | None = None, cpu_threads: int = 0) -> Engine:
    """Open an engine: `.onnx` through ONNX Runtime, `.plan` through TensorRT.

    `device` is "auto" (CUDA when ONNX Runtime has it, else CPU), "cpu" or
    "cuda" for ONNX files; `providers` names ONNX Runtime execution providers
    explicitly (e.g. ["TensorrtExecutionProvider", "CUDAExecutionProvider"]).
    `cpu_threads` caps the threads ONNX Runtime uses inside one call (0: one
    per core); TensorRT ignores it.
    """
    artefact = Path(path) if path is not None else DEFAULT_MODEL
    if not artefact.is_file():
        if path is None:
            raise EngineError(f"this retint installation has no bundled default model ({artefact})")
        raise EngineError(f"engine file not found: {artefact}")
    suffix = artefact.suffix.lower()
    if suffix == ".onnx":
        from retint.runtime.onnx_runner import OnnxEngine

        return OnnxEngine(artefact, device=device, providers=providers, threads=cpu_threads)
    if suffix in (".plan", ".engine", ".trt"):
        if device == "cpu":
            raise EngineError(f"{artefact} is a TensorRT engine; it cannot run on the CPU")
        from retint.runtime.tensorrt_runner import TensorRTEngine

        return TensorRTEngine(artefact)
    raise EngineError(f"{artefact}: unknown engine type (expected .onnx or .plan)")
