"""OpenVINO runner for the generator stage, in bf16 where the CPU computes bf16 natively.

Measured on 2 cores (AMD EPYC, AVX512-BF16, no AMX; `benchmarks/README.md`):
OpenVINO runs the generator at 256x256 in 8.4 ms on one thread in bf16 and
15.5 ms in f32, against 21.6 ms for ONNX Runtime. The full-resolution stages
(lightness, compose) are the reverse: OpenVINO's bilinear Interpolate, Log
and uint8 Concat run in reference or slow kernels there, 23 ms for the
compose against ONNX Runtime's 13. So OpenVINO gets the generator, the one
stage with weights and a fixed shape (compiled once, static, at N = 1), and
ONNX Runtime keeps the rest (`backends.open_engine`).

Streams: the compiled model has one OpenVINO stream per concurrent caller,
each with an equal share of the threads; callers take an infer request from a
pool, so `__call__` may run from several threads at once.
"""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np

from retint.errors import BackendUnavailable, EngineError
from retint.runtime.metadata import LIGHTNESS_NAME

# OpenVINO's names for the inference precisions retint reports as bf16 and fp32.
OPENVINO_PRECISION = {"bf16": "bf16", "fp32": "f32"}


def import_openvino():
    try:
        import openvino
    except ImportError as error:
        raise BackendUnavailable("the OpenVINO backend needs the 'openvino' extra "
                                 "(pip install 'retint[openvino]')") from error
    return openvino


def openvino_installed() -> bool:
    try:
        import_openvino()
    except BackendUnavailable:
        return False
    return True


class OpenVinoGenerator:
    """lightness float32 [N,1,R,R] -> ab float32 [N,2,R,R], compiled for [1,1,R,R]."""

    def __init__(self, path: Path, precision: str, render_size: int, streams: int = 1, threads: int = 0):
        if precision not in OPENVINO_PRECISION:
            raise EngineError(f"OpenVINO precision must be one of {sorted(OPENVINO_PRECISION)}, not {precision!r}")
        openvino = import_openvino()
        core = openvino.Core()
        try:
            model = core.read_model(str(path))
            model.reshape({LIGHTNESS_NAME: [1, 1, render_size, render_size]})
            config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision], "NUM_STREAMS": max(1, streams)}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as error:  # OpenVINO raises RuntimeError with its own message
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise EngineError(f"{path}: OpenVINO cannot compile it ({first_line})") from error
        self.precision = precision
        self._openvino = openvino
        self.version = openvino.get_version().split("-")[0]
        self._requests: queue.Queue = queue.Queue()
        for _ in range(max(1, streams)):
            self._requests.put(self._compiled.create_infer_request())

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        request = self._requests.get()
        try:
            return np.concatenate([self._infer(request, image[None]) for image in lightness])
        finally:
            self._requests.put(request)

    def _infer(self, request, image: np.ndarray) -> np.ndarray:
        # The input goes in as a Tensor over our own memory and `infer()` gets no inputs:
        # OpenVINO's Python input dispatcher (infer(inputs), which copies into the request's
        # tensor) deadlocked here now and then with two threads inferring at once.
        request.set_input_tensor(self._openvino.Tensor(np.ascontiguousarray(image, np.float32), shared_memory=True))
        request.infer()
        return request.get_output_tensor(0).data.copy()

    def close(self) -> None:
        self._requests = queue.Queue()
        self._compiled = None
