"""CUDA memory, streams and copies through cuda-python (`cuda.bindings.runtime`).

Every call's return code is checked. pycuda is not used: it has no wheels,
and NVIDIA's TensorRT samples moved to cuda-python.
"""

from __future__ import annotations

import ctypes

import numpy as np
import numpy.typing as npt

from retint.errors import BackendUnavailable, EngineError, needs_extra


def _cudart():
    with needs_extra("trt", "the TensorRT runner"):
        from cuda.bindings import runtime as cudart
    return cudart


def check(result, what: str):
    """Unpack a cuda-python result tuple, raising on any error code."""
    cudart = _cudart()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(error)
        raise EngineError(f"CUDA error in {what}: {name.decode() if isinstance(name, bytes) else name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_description() -> tuple[int, str, str]:
    """(device count, name of GPU 0, compute capability), or BackendUnavailable.

    Asked before any TensorRT runtime exists: without a GPU, trt.Runtime()
    returns an object whose deserialize_cuda_engine segfaults.
    """
    cudart = _cudart()
    error, count = cudart.cudaGetDeviceCount()
    if error != cudart.cudaError_t.cudaSuccess or count == 0:
        raise BackendUnavailable("no CUDA GPU is visible on this host")
    properties = check(cudart.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
    name = properties.name.decode(errors="replace") if isinstance(properties.name, bytes) else str(properties.name)
    return count, name.rstrip("\x00"), f"{properties.major}.{properties.minor}"


class Stream:
    def __init__(self):
        self.handle = check(_cudart().cudaStreamCreate(), "cudaStreamCreate")

    def synchronize(self) -> None:
        """Wait until everything queued on this stream has run."""
        check(_cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def close(self) -> None:
        """Destroy the stream (once)."""
        if self.handle is not None:
            check(_cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None


class Buffer:
    """A device buffer and a pinned host buffer of the same size, grown on demand."""

    def __init__(self):
        self.capacity = 0
        self.device = None
        self.host = None

    def reserve(self, nbytes: int) -> None:
        """Grow the pinned host and device buffers to at least `nbytes` (never shrinks)."""
        if nbytes <= self.capacity:
            return
        self.free()
        cudart = _cudart()
        self.device = check(cudart.cudaMalloc(nbytes), "cudaMalloc")
        self.host = check(cudart.cudaMallocHost(nbytes), "cudaMallocHost")
        self.capacity = nbytes

    def host_array(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
        """A numpy view of the pinned host memory."""
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = (ctypes.c_ubyte * count).from_address(int(self.host))
        return np.frombuffer(memoryview(raw), dtype=dtype).reshape(shape)

    def to_device(self, nbytes: int, stream: Stream) -> None:
        """Queue a copy of the first `nbytes` of the host buffer to the device."""
        cudart = _cudart()
        check(cudart.cudaMemcpyAsync(self.device, self.host, nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle),
              "cudaMemcpyAsync host->device")

    def to_host(self, nbytes: int, stream: Stream) -> None:
        """Queue a copy of the first `nbytes` of the device buffer to the host."""
        cudart = _cudart()
        check(cudart.cudaMemcpyAsync(self.host, self.device, nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle),
              "cudaMemcpyAsync device->host")

    def free(self) -> None:
        """Release both buffers (safe to call twice)."""
        cudart = _cudart()
        if self.device is not None:
            check(cudart.cudaFree(self.device), "cudaFree")
        if self.host is not None:
            check(cudart.cudaFreeHost(self.host), "cudaFreeHost")
        self.device = self.host = None
        self.capacity = 0
