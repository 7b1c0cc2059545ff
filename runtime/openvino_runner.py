"""OpenVINO runners for the generator stage (bf16 where the CPU computes bf16 natively) and the compose.

What runs where, and why (the timings are in benchmarks/README.md, "The CPU
fast path"):

- the generator: compiled once, static, at N = 1; bf16 where the CPU has it
  natively, behind the export's parity gate, else f32.
- the compose: always f32 (it is colour maths, not a network), after
  `openvino_graph`'s rewrites and with dynamic shapes fused, without which
  OpenVINO is slower than ONNX Runtime on it.
- the lightness stage (one table read and an area resize) stays on ONNX
  Runtime: OpenVINO's ReduceMean is a reference loop.

Streams: each compiled model has one OpenVINO stream per concurrent caller,
each with an equal share of the threads; callers take an infer request from a
pool, so `__call__` may run from several threads at once.
"""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np

from retint.errors import BackendUnavailable, EngineError, needs_extra
from retint.runtime.colour_controls import TEMPERATURE_NAME, ColourControls
from retint.runtime.metadata import AB_NAME, INPUT_NAME, LIGHTNESS_NAME

# OpenVINO's CPU plugin leaves nodes with dynamic shapes out of its fused element-wise kernels
# unless told to skip that heuristic (ov::intel_cpu::snippets_mode, a property it accepts but
# does not list). The compose needs dynamic shapes: every scan has its own size, and compiling
# per size would cost several calls' time; without the fusion the compose is much slower
# (benchmarks/README.md, "The CPU fast path").
SNIPPETS_FOR_DYNAMIC_SHAPES = {"SNIPPETS_MODE": "IGNORE_CALLBACK"}

# OpenVINO's names for the inference precisions retint reports as bf16 and fp32.
OPENVINO_PRECISION = {"bf16": "bf16", "fp32": "f32"}


def import_openvino():
    """The openvino module, or MissingExtra naming the 'openvino' extra."""
    with needs_extra("openvino", "the OpenVINO backend"):
        import openvino
    return openvino


def openvino_installed() -> bool:
    """Whether the 'openvino' extra is installed."""
    try:
        import_openvino()
    except BackendUnavailable:
        return False
    return True


class _CompiledModel:
    """A compiled model with one infer request per stream, lent to one caller at a time."""

    def __init__(self, path: Path, model, config: dict, streams: int, threads: int):
        openvino = import_openvino()
        config = {**config, "NUM_STREAMS": max(1, streams)}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self._compiled = _core().compile_model(model, "CPU", config)
        except Exception as error:  # OpenVINO raises RuntimeError with its own message
            raise EngineError(f"{path}: OpenVINO cannot compile it ({_first_line(error)})") from error
        self._openvino = openvino
        self._requests: queue.Queue = queue.Queue()
        for _ in range(max(1, streams)):
            self._requests.put(self._compiled.create_infer_request())

    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run one request on `inputs`; returns a copy of output 0."""
        request = self._requests.get()
        try:
            # Inputs go in as Tensors over our own memory and `infer()` gets no inputs:
            # OpenVINO's Python input dispatcher (infer(inputs), which copies into the request's
            # tensors) deadlocked here now and then with two threads inferring at once.
            # A shared Tensor needs contiguous, writeable memory (a decoded image is read-only, so it
            # is copied), and the request reads that memory only during infer(): `arrays` keeps
            # every copy alive until then (a copy freed after set_tensor gave another image's colours).
            arrays = {name: np.require(array, requirements=("C_CONTIGUOUS", "WRITEABLE"))
                      for name, array in inputs.items()}
            for name, array in arrays.items():
                request.set_tensor(name, self._openvino.Tensor(array, shared_memory=True))
            request.infer()
            output = request.get_output_tensor(0).data.copy()
            del arrays  # only now may the inputs' memory go
            return output
        finally:
            self._requests.put(request)

    def close(self) -> None:
        self._requests = queue.Queue()
        self._compiled = None


class OpenVinoGenerator:
    """lightness float32 [N,1,R,R] -> ab float32 [N,2,R,R], compiled for [1,1,R,R]."""

    def __init__(self, path: Path, precision: str, render_size: int, streams: int = 1, threads: int = 0):
        if precision not in OPENVINO_PRECISION:
            raise EngineError(f"OpenVINO precision must be one of {sorted(OPENVINO_PRECISION)}, not {precision!r}")
        model = _read(path)
        # Every input fixed at N = 1 (a distribution head also takes its colour controls).
        shapes = {LIGHTNESS_NAME: [1, 1, render_size, render_size]}
        for model_input in model.inputs:
            name = model_input.get_any_name()
            if name != LIGHTNESS_NAME:
                shape = model_input.get_partial_shape()
                shapes[name] = [1 if axis == 0 and name != TEMPERATURE_NAME else dimension.get_length()
                                for axis, dimension in enumerate(shape)]
        try:
            model.reshape(shapes)
        except Exception as error:  # OpenVINO raises RuntimeError with its own message
            raise EngineError(f"{path}: OpenVINO cannot fix its input at {render_size}x{render_size} "
                              f"({_first_line(error)})") from error
        self._model = _CompiledModel(path, model, {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision]},
                                     streams, threads)
        self.precision = precision
        self.version = openvino_version()

    def __call__(self, lightness: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        lightness = np.asarray(lightness, np.float32)
        if controls is None:
            return np.concatenate([self._model.infer({LIGHTNESS_NAME: image[None]}) for image in lightness])
        return np.concatenate([self._model.infer({LIGHTNESS_NAME: lightness[i: i + 1],
                                                  **controls.part(i, i + 1).feeds()})
                               for i in range(len(lightness))])

    def close(self) -> None:
        """Release the compiled model and its infer requests."""
        self._model.close()


class OpenVinoCompose:
    """gray uint8 [N,1,H,W] + ab float32 [N,2,R,R] -> rgb uint8 [N,H,W,3]: the compose stage, f32.

    Compiled once with dynamic shapes, after `openvino_graph.adapt_for_openvino_cpu`.
    """

    def __init__(self, path: Path, streams: int = 1, threads: int = 0):
        from retint.runtime.openvino_graph import adapt_for_openvino_cpu

        model = _read(path)
        try:
            self.rewritten = adapt_for_openvino_cpu(model)
        except Exception as error:  # OpenVINO's graph API raises RuntimeError
            raise EngineError(f"{path}: OpenVINO cannot adapt it ({_first_line(error)})") from error
        self._model = _CompiledModel(path, model, {"INFERENCE_PRECISION_HINT": "f32", **SNIPPETS_FOR_DYNAMIC_SHAPES},
                                     streams, threads)
        self.version = openvino_version()

    def __call__(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        return self._model.infer({INPUT_NAME: gray, AB_NAME: np.asarray(ab, np.float32)})

    def close(self) -> None:
        """Release the compiled model and its infer requests."""
        self._model.close()


def openvino_version() -> str:
    """OpenVINO's release number ("2026.4.1"), as spec descriptions name it."""
    return import_openvino().get_version().split("-")[0]


_CORE = None


def _core():
    """One OpenVINO Core per process: the compiled models share its CPU plugin."""
    global _CORE
    if _CORE is None:
        _CORE = import_openvino().Core()
    return _CORE


def _read(path: Path):
    try:
        return _core().read_model(str(path))
    except Exception as error:  # OpenVINO raises RuntimeError with its own message
        raise EngineError(f"{path}: OpenVINO cannot read it ({_first_line(error)})") from error


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
