"""retint.runtime: load a colouriser artefact and run it, without torch.

    from retint.runtime import load_engine
    with load_engine("model.fp16.plan") as engine:     # or .onnx, or None
        rgb = engine.colorize(gray)                     # uint8 [N,H,W,3]
    print(engine.spec.describe())                       # backend, precision, why

`load_engine(None)` opens the default model bundled with retint. An artefact
is resolved once (`artefact`), its backend chosen once (`backends`), its
streams planned once (`plan`), and the engines opened from that choice, in
one place (`opening`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from retint.runtime.artefact import DEFAULT_MODEL, Artefact, resolve_artefact
from retint.runtime.backends import BACKENDS, DEVICES, BackendChoice, choose_backend
from retint.runtime.engine import Engine, EngineSpec
from retint.runtime.opening import EngineRequest, Engines, check_request, open_engines
from retint.runtime.plan import DEFAULT_STREAMS_TEXT, VIDEO_BATCH, InferencePlan, inference_plan

__all__ = ["BACKENDS", "DEFAULT_STREAMS_TEXT", "DEVICES", "DEFAULT_MODEL", "VIDEO_BATCH", "Artefact", "BackendChoice", "Engine", "EngineRequest",
           "EngineSpec", "Engines", "InferencePlan", "check_request", "choose_backend", "inference_plan", "load_engine",
           "open_engines", "resolve_artefact"]


def load_engine(path: str | Path | None = None, *, backend: str = "auto", device: str = "auto",
                providers: Sequence[str] | None = None, cpu_threads: int = 0, streams: int = 1,
                by_stages: bool = False, mute_uncertain: bool = False, temperature: float | None = None) -> Engine:
    """Open an engine on `backend` ("auto", "onnxruntime", "openvino" or "tensorrt"; see `backends`).

    `device` is "auto" (CUDA when ONNX Runtime has it, else CPU), "cpu" or
    "cuda" for ONNX files; `providers` names ONNX Runtime execution providers
    explicitly (e.g. ["TensorrtExecutionProvider", "CUDAExecutionProvider"]).
    `cpu_threads` caps the threads ONNX Runtime uses inside one call (0: one
    per core); `streams` is how many threads will call the engine at once
    (OpenVINO prepares one stream each). `by_stages` opens the three stages
    (`predict`/`compose` for chroma processing) even on ONNX Runtime.
    `mute_uncertain` shrinks chroma toward grey where the artefact's calibrated
    interval is wide (`runtime.uncertainty`; needs an artefact with a head).
    `temperature` sets a colour-model-v2 engine's annealed-mean temperature for every call
    (lower: bolder, mode-seeking colours); a regression model refuses it.
    Runs with an inference plan (batch, serve) use `open_engines` instead.
    """
    request = EngineRequest(path=path, backend=backend, device=device,
                            providers=tuple(providers) if providers else None, streams=streams,
                            cpu_threads=cpu_threads, by_stages=by_stages, mute_uncertain=mute_uncertain,
                            temperature=temperature)
    return open_engines(request).main
