"""A Triton Inference Server model repository for the exported colouriser.

    DIR/retint/config.pbtxt        platform onnxruntime_onnx, CPU or GPU instances
    DIR/retint/1/model.onnx        the fused FP32 graph (+ its retint sidecar)
    DIR/retint_trt/config.pbtxt    platform tensorrt_plan, GPU instances (where a plan exists)
    DIR/retint_trt/1/model.plan

Both take `gray` uint8 and give `rgb` uint8. With `max_batch_size` > 0
Triton's dims leave out the batch axis, so `gray` [1, -1, -1] here is the
graph's [-1, 1, -1, -1]. Dynamic batching groups requests of equal size
(Triton batches only equal shapes). A plan runs only under the TensorRT
version that built it: serve it from the Triton release that ships that
TensorRT. Triton itself cannot run on this project's machines; the configs
are checked against Triton's own model-config protobuf and the ONNX graph.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from retint.errors import InputError
from retint.files import write_text_atomically
from retint.runtime.metadata import INPUT_NAME, OUTPUT_NAME, read_sidecar, sidecar_path

ONNX_MODEL = "retint"
PLAN_MODEL = "retint_trt"
TRITON_DEVICES = ("cpu", "gpu")
# Requests wait at most this long for partners of the same size.
QUEUE_DELAY_MICROSECONDS = 2000


@dataclass(frozen=True)
class TritonModel:
    name: str
    platform: str  # "onnxruntime_onnx" or "tensorrt_plan"
    max_batch_size: int
    instance_kind: str  # "KIND_CPU" or "KIND_GPU"
    instance_count: int


def model_config(model: TritonModel) -> str:
    """config.pbtxt in Triton's protobuf text format."""
    return f"""name: "{model.name}"
platform: "{model.platform}"
max_batch_size: {model.max_batch_size}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_UINT8
    dims: [ 1, -1, -1 ]
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_UINT8
    dims: [ -1, -1, 3 ]
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {QUEUE_DELAY_MICROSECONDS}
}}
instance_group [
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
                             1 if device == "gpu" else 2)  # two CPU instances: two half-machine streams
    written = [_publish(onnx_model, fused_onnx, "model.onnx", repository)]
    if plan is not None:
        plan_model = TritonModel(PLAN_MODEL, "tensorrt_plan", plan_max_batch or max_batch, "KIND_GPU", 1)
        written.append(_publish(plan_model, plan, "model.plan", repository))
    return written
