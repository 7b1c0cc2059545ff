"""Native TensorRT runner for `.plan` engines (TensorRT 10.12+ or 11).

Uses `tensorrt` or, where only the runtime is installed, `tensorrt_lean`.
Pinned host buffers, asynchronous copies and `execute_async_v3` on one CUDA
stream; device buffers grow to the largest shape seen and are reused.

Thread-safety: one execution context and one set of buffers, so calls to
`colorize` are serialised by a lock; use one engine per thread for
concurrency.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np

from retint.errors import EngineError, needs_extra
from retint.runtime import cuda_memory
from retint.runtime.colour_controls import CONTROL_NAMES, ColourControls
from retint.runtime.engine import Engine, SpecFacts
from retint.runtime.metadata import INPUT_NAME, OUTPUT_NAME, ArtefactMetadata, SizeLimits


def import_tensorrt():
    """The tensorrt (or tensorrt_lean) module, or MissingExtra naming the 'trt' extra."""
    try:
        import tensorrt as trt
    except ImportError as missing:
        try:
            import tensorrt_lean as trt
        except ImportError:
            # Name the full wheel (what the 'trt' extra installs), not the lean fallback.
            with needs_extra("trt", "running a .plan (on a GPU host)"):
                raise missing from None
    return trt


class TensorRTEngine(Engine):
    """A `.plan` on TensorRT. `metadata`: the plan's sidecar (a plan carries none inside): its
    precision, render size and a distribution head's bins. `facts` and `open_side_stages`:
    see `Engine` and `SpecFacts`."""

    def __init__(self, path: Path, metadata: ArtefactMetadata | None, *, facts: SpecFacts = SpecFacts(),
                 open_side_stages: Callable[[], Engine] | None = None):
        trt = import_tensorrt()
        _, gpu_name, capability = cuda_memory.gpu_description()  # before trt.Runtime: see module doc
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self._engine is None:
            built = metadata.tensorrt if metadata else {}
            raise EngineError(
                f"{path} cannot be loaded here: built with TensorRT {built.get('version', '?')} for "
                f"{built.get('gpu', '?')} (compute {built.get('compute_capability', '?')}); this host has "
                f"TensorRT {trt.__version__} and {gpu_name} (compute {capability}). Rebuild it here with export-trt")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        if INPUT_NAME not in names or OUTPUT_NAME not in names:
            raise EngineError(f"{path} is not a retint colouriser engine (tensors: {names})")
        self._context = self._engine.create_execution_context()
        self._stream = cuda_memory.Stream()
        self._input = cuda_memory.Buffer()
        self._output = cuda_memory.Buffer()
        # A distribution head's colour controls (hint planes, global hint, temperature), where the plan has them.
        self._control_buffers = {name: cuda_memory.Buffer() for name in CONTROL_NAMES if name in names}
        self._lock = threading.Lock()
        minimum, _, maximum = self._engine.get_tensor_profile_shape(INPUT_NAME, 0)
        limits = SizeLimits(min_side=max(minimum[2], minimum[3]), max_side=min(maximum[2], maximum[3]),
                            max_batch=maximum[0])
        spec = facts.spec(path=Path(path), backend="tensorrt", provider=f"TensorRT {trt.__version__}",
                          precision=metadata.precision if metadata else "unknown",
                          render_size=metadata.render_size if metadata else 0, limits=limits, metadata=metadata)
        super().__init__(spec, open_side_stages)
        if self._control_buffers and self.spec.colour_bins is None:
            raise EngineError(f"{path} takes colour hints but its sidecar has no colour_bins; re-export it")

    def _run(self, batch: np.ndarray, controls: ColourControls | None = None) -> np.ndarray:
        count, _, height, width = batch.shape
        output_shape = (count, height, width, 3)
        controls = self._automatic_unless(batch, controls)
        feeds = {name: np.ascontiguousarray(array, np.float32)
                 for name, array in (controls.feeds() if controls is not None else {}).items()
                 if name in self._control_buffers}
        with self._lock:
            if not self._context.set_input_shape(INPUT_NAME, batch.shape):
                raise EngineError(f"shape {list(batch.shape)} is outside the engine's optimisation profile")
            for name, array in feeds.items():
                if not self._context.set_input_shape(name, array.shape):
                    raise EngineError(f"{name} shape {list(array.shape)} is outside the engine's profile")
                buffer = self._control_buffers[name]
                buffer.reserve(array.nbytes)
                buffer.host_array(array.shape, np.float32)[...] = array
                self._context.set_tensor_address(name, int(buffer.device))
                buffer.to_device(array.nbytes, self._stream)
            self._input.reserve(batch.nbytes)
            self._output.reserve(int(np.prod(output_shape)))
            self._input.host_array(batch.shape, np.uint8)[...] = batch
            self._context.set_tensor_address(INPUT_NAME, int(self._input.device))
            self._context.set_tensor_address(OUTPUT_NAME, int(self._output.device))
            self._input.to_device(batch.nbytes, self._stream)
            if not self._context.execute_async_v3(int(self._stream.handle)):
                raise EngineError("TensorRT execution failed (see the TensorRT log above)")
            self._output.to_host(int(np.prod(output_shape)), self._stream)
            self._stream.synchronize()
            return self._output.host_array(output_shape, np.uint8).copy()

    def close(self) -> None:
        """Free the device buffers and the stream, and let the engine and its context go."""
        with self._lock:
            self._input.free()
            self._output.free()
            for buffer in self._control_buffers.values():
                buffer.free()
            self._stream.close()
            self._context = self._engine = self._runtime = None
        super().close()
