"""A Triton Inference Server model repository for the exported colouriser.

    DIR/retint/config.pbtxt        platform onnxruntime_onnx, CPU or GPU instances
    DIR/retint/1/model.onnx        the fused FP32 graph (+ its retint sidecar)
    DIR/retint_trt/config.pbtxt    platform tensorrt_plan, GPU instances (where a plan exists)
    DIR/retint_trt/1/model.plan

Both take `gray` uint8 and give `rgb` uint8; the inputs are read from the
graph itself, so a colour model v2's controls (hint planes, global hint,
temperature) are declared too. With `max_batch_size` > 0 Triton's dims
leave out the batch axis, so `gray` [1, -1, -1] here is the graph's
[-1, 1, -1, -1], and dynamic batching groups requests of equal size (Triton
batches only equal shapes). A graph with an input that has no batch axis
(v2's `temperature` [1]) cannot be batched by Triton: its config has
`max_batch_size: 0` and every input's full shape. A plan runs only under the TensorRT
version that built it: serve it from the Triton release that ships that
TensorRT. Triton itself cannot run on this project's machines; the configs
are checked against Triton's own model-config protobuf and the ONNX graph.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from retint.errors import InputError
from retint.export.shared_weights import external_data_files
from retint.files import write_text_atomically
from retint.runtime.metadata import INPUT_NAME, OUTPUT_NAME, read_sidecar, sidecar_path

ONNX_MODEL = "retint"
PLAN_MODEL = "retint_trt"
TRITON_DEVICES = ("cpu", "gpu")
# Requests wait at most this long for partners of the same size.
QUEUE_DELAY_MICROSECONDS = 2000


# ONNX element types of retint's graph inputs -> Triton's names.
TRITON_TYPES = {2: "TYPE_UINT8", 1: "TYPE_FP32", 10: "TYPE_FP16"}


@dataclass(frozen=True)
class TritonInput:
    name: str
    data_type: str
    dims: tuple[int, ...]  # the graph's full shape, -1 where dynamic


@dataclass(frozen=True)
class TritonModel:
    name: str
    platform: str  # "onnxruntime_onnx" or "tensorrt_plan"
    max_batch_size: int
    instance_kind: str  # "KIND_CPU" or "KIND_GPU"
    instance_count: int
    inputs: tuple[TritonInput, ...] = (TritonInput(INPUT_NAME, "TYPE_UINT8", (-1, 1, -1, -1)),)

    @property
    def batched(self) -> bool:
        """Whether Triton may batch it: every input has the graph's dynamic batch axis first."""
        return all(item.dims and item.dims[0] == -1 for item in self.inputs)


def graph_inputs(graph: Path) -> tuple[TritonInput, ...]:
    """The inputs of an ONNX graph, as Triton declares them (full shapes)."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    initialised = {tensor.name for tensor in model.graph.initializer}
    inputs = []
    for item in model.graph.input:
        if item.name in initialised:
            continue
        tensor = item.type.tensor_type
        dims = tuple(dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim)
        inputs.append(TritonInput(item.name, TRITON_TYPES[tensor.elem_type], dims))
    return tuple(inputs)


def model_config(model: TritonModel) -> str:
    """config.pbtxt in Triton's protobuf text format."""
    batched = model.batched
    inputs = ",\n".join(
        f"""  {{
    name: "{item.name}"
    data_type: {item.data_type}
    dims: [ {", ".join(str(d) for d in (item.dims[1:] if batched else item.dims))} ]
  }}""" for item in model.inputs)
    output_dims = "-1, -1, 3" if batched else "-1, -1, -1, 3"
    batching = f"""dynamic_batching {{
  max_queue_delay_microseconds: {QUEUE_DELAY_MICROSECONDS}
}}
""" if batched else ""
    return f"""name: "{model.name}"
platform: "{model.platform}"
max_batch_size: {model.max_batch_size if batched else 0}
input [
{inputs}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_UINT8
    dims: [ {output_dims} ]
  }}
]
{batching}instance_group [
  {{
    count: {model.instance_count}
    kind: {model.instance_kind}
  }}
]
"""


def _publish(model: TritonModel, artefact: Path, filename: str, repository: Path) -> Path:
    version = repository / model.name / "1"
    version.mkdir(parents=True, exist_ok=True)
    target = version / filename
    partial = target.with_name(target.name + ".partial")
    if artefact.suffix == ".onnx":
        # Weights stored beside the graph (the bundled model's) travel with it, first.
        for weights in external_data_files(artefact):
            shutil.copyfile(weights, version / weights.name)
    shutil.copyfile(artefact, partial)
    partial.replace(target)
    if sidecar_path(artefact).is_file():
        shutil.copyfile(sidecar_path(artefact), sidecar_path(target))
    write_text_atomically(repository / model.name / "config.pbtxt", model_config(model))
    return repository / model.name


def write_triton_repository(fused_onnx: Path, repository: Path, device: str = "cpu", plan: Path | None = None,
                            plan_max_batch: int | None = None) -> list[Path]:
    """Write the repository (see the module doc); returns the model folders written."""
    if device not in TRITON_DEVICES:
        raise InputError(f"Triton device must be one of {', '.join(TRITON_DEVICES)}, not {device!r}")
    metadata = read_sidecar(fused_onnx)
    max_batch = metadata.limits.max_batch if metadata else 16
    onnx_model = TritonModel(ONNX_MODEL, "onnxruntime_onnx", max_batch,
                             "KIND_GPU" if device == "gpu" else "KIND_CPU",
                             1 if device == "gpu" else 2,  # two CPU instances: two half-machine streams
                             graph_inputs(fused_onnx))
    written = [_publish(onnx_model, fused_onnx, "model.onnx", repository)]
    if plan is not None:
        plan_model = TritonModel(PLAN_MODEL, "tensorrt_plan", plan_max_batch or max_batch, "KIND_GPU", 1,
                                 onnx_model.inputs)
        written.append(_publish(plan_model, plan, "model.plan", repository))
    return written
