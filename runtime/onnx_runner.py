"""ONNX Runtime runner: the CPU, CUDA or TensorRT execution provider.

Thread-safety: ONNX Runtime's `InferenceSession.run` may be called from
several threads at once, so `colorize` may too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from retint.errors import BackendUnavailable, EngineError
from retint.runtime.colour_controls import ColourControls
from retint.runtime.engine import Engine, SpecFacts
from retint.runtime.metadata import (
    AB_NAME,
    INPUT_NAME,
    LIGHTNESS_NAME,
    OUTPUT_NAME,
    ArtefactMetadata,
    SizeLimits,
    metadata_from_onnx_props,
)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


def choose_providers(device: str, providers: Sequence[str] | None) -> list[str]:
    """The provider list for `device`; never a silent fall-back to the CPU."""
    available = ort.get_available_providers()
    if providers:
        missing = [name for name in providers if name not in available]
        if missing:
            raise BackendUnavailable(
                f"ONNX Runtime here has no {', '.join(missing)} (it has {', '.join(available)})")
        return list(providers)
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        if CUDA not in available:
            raise BackendUnavailable(
                "device 'cuda' asked for, but ONNX Runtime has no CUDAExecutionProvider "
                "(install retint[gpu] on a host with an NVIDIA GPU)")
        return [CUDA, CPU]
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    raise EngineError(f"unknown device {device!r}; use auto, cpu or cuda")


def open_session(path: Path, providers: list[str], threads: int = 0, spinning: bool = True) -> ort.InferenceSession:
    """An ONNX Runtime session on `providers` (from choose_providers), `threads` per call (0: one per core).

    `spinning=False` stops its worker threads busy-waiting for the next operator: wanted where
    another runtime (OpenVINO) works between this session's calls and needs those cores.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as error:  # ONNX Runtime raises its own exception types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EngineError(f"{path}: ONNX Runtime cannot load it ({first_line})") from error
    active = session.get_providers()
    if providers[0] != CPU and providers[0] not in active:
        raise BackendUnavailable(f"{providers[0]} could not start here (ONNX Runtime fell back to {active})")
    return session


class OnnxGenerator:
    """The generator stage on ONNX Runtime: lightness [N,1,R,R] (+ a distribution head's colour
    controls) -> ab [N,2,r,r]."""

    def __init__(self, session: ort.InferenceSession):
        self._session = session

    def __call__(self, lightness: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        feeds = {LIGHTNESS_NAME: lightness, **(controls.feeds() if controls is not None else {})}
        return self._session.run([AB_NAME], feeds)[0]

    def close(self) -> None:
        """Let the session go (ONNX Runtime frees it with its last reference)."""
        self._session = None


class OnnxCompose:
    """The compose stage on ONNX Runtime: gray uint8 [N,1,H,W] + ab [N,2,R,R] -> rgb uint8 [N,H,W,3]."""

    def __init__(self, session: ort.InferenceSession):
        self._session = session

    def __call__(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: gray, AB_NAME: ab})[0]

    def close(self) -> None:
        """Let the session go (ONNX Runtime frees it with its last reference)."""
        self._session = None


class OnnxEngine(Engine):
    """The fused graph on one ONNX Runtime session.

    `metadata`: the artefact's sidecar as `resolve_artefact` read it; without one, the metadata
    the graph carries inside. `facts` and `open_side_stages`: see `Engine` and `SpecFacts`.
    """

    def __init__(self, path: Path, *, device: str = "auto", providers: Sequence[str] | None = None,
                 threads: int = 0, metadata: ArtefactMetadata | None = None, facts: SpecFacts = SpecFacts(),
                 open_side_stages: Callable[[], Engine] | None = None):
        self.session = open_session(path, choose_providers(device, providers), threads)
        self._check_signature(path)
        metadata = metadata or metadata_from_onnx_props(self.session.get_modelmeta().custom_metadata_map)
        # A graph with the right signature but no retint metadata is usable, with the limits of the contract.
        spec = facts.spec(path=path, backend="onnxruntime", provider=self.session.get_providers()[0],
                          precision=metadata.precision if metadata else "unknown",
                          render_size=metadata.render_size if metadata else 0,
                          limits=metadata.limits if metadata else SizeLimits(), metadata=metadata)
        super().__init__(spec, open_side_stages)

    def _check_signature(self, path: Path) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise EngineError(
                f"{path} is not a retint colouriser graph (needs input '{INPUT_NAME}' and "
                f"output '{OUTPUT_NAME}'; has {list(inputs)} -> {list(outputs)})")
        if inputs[INPUT_NAME].type != "tensor(uint8)" or outputs[OUTPUT_NAME].type != "tensor(uint8)":
            raise EngineError(f"{path}: expected uint8 input and output, got "
                              f"{inputs[INPUT_NAME].type} -> {outputs[OUTPUT_NAME].type}")

    def _run(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        controls = self._automatic_unless(batch, controls)
        feeds = {INPUT_NAME: batch, **(controls.feeds() if controls is not None else {})}
        return self.session.run([OUTPUT_NAME], feeds)[0]

    def close(self) -> None:
        """Let the session go and close the interval stages, if opened."""
        self.session = None
        super().close()
