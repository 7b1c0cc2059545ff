"""Build a TensorRT engine (`.plan`) from the FP16 ONNX graph (TensorRT 10.12+ / 11).

Precision comes from the graph's own dtypes: the network is strongly typed,
so the generator runs in FP16 and the colour maths in FP32 as the ONNX file
says. No `BuilderFlag.FP16` and no `EXPLICIT_BATCH` (both removed in
TensorRT 11); in TensorRT 11 `STRONGLY_TYPED` is always on and its flag is
accepted and ignored, so the same call works on both.

Runs only where `tensorrt` (the full package, with the builder) imports and a
GPU is present; tested by `gpu`-marked tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retint.errors import BackendUnavailable
from retint.export.config import ShapeProfile
from retint.export.onnx_export import ExportError
from retint.files import write_bytes_atomically
from retint.runtime import cuda_memory
from retint.runtime.metadata import INPUT_NAME


@dataclass(frozen=True)
class PlanInfo:
    tensorrt_version: str
    gpu: str
    compute_capability: str


def require_tensorrt_builder():
    """The tensorrt module with a Builder, on a host with a GPU, or BackendUnavailable."""
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BackendUnavailable("TensorRT is not installed here (its builder wheels come from "
                                 "NVIDIA's index: pip install 'retint[trt]' on a GPU host)") from error
    if not hasattr(trt, "Builder"):
        raise BackendUnavailable("this TensorRT package has no Builder (a lean/dispatch runtime only)")
    cuda_memory.gpu_description()
    return trt


def build_plan(onnx_path: Path, plan_path: Path, profile: ShapeProfile, workspace_gb: float,
               timing_cache: Path | None) -> PlanInfo:
    """Build the FP16 plan from the ONNX graph with this profile; the GPU and versions it was built on."""
    trt = require_tensorrt_builder()
    _, gpu_name, capability = cuda_memory.gpu_description()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(index)) for index in range(parser.num_errors)]
        raise ExportError("TensorRT's ONNX parser rejected the graph:\n" + "\n".join(errors))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    optimisation_profile = builder.create_optimization_profile()
    minimum, optimum, maximum = profile.as_nchw()
    optimisation_profile.set_shape(INPUT_NAME, minimum, optimum, maximum)
    # A distribution head's colour controls (hint planes, global hint) share the batch axis; the
    # temperature [1] is static and needs no profile.
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if tensor.name != INPUT_NAME and shape and shape[0] == -1:
            optimisation_profile.set_shape(tensor.name, *(tuple([batch, *shape[1:]])
                                                          for batch in (minimum[0], optimum[0], maximum[0])))
    config.add_optimization_profile(optimisation_profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT could not build the engine (see the TensorRT log above)")
    write_bytes_atomically(plan_path, bytes(serialized))
    if timing_cache:
        write_bytes_atomically(timing_cache, bytes(config.get_timing_cache().serialize()))
    return PlanInfo(tensorrt_version=trt.__version__, gpu=gpu_name, compute_capability=capability)
