"""The Triton model repository: every config.pbtxt parses with Triton's own model-config protobuf
and declares exactly the ONNX graph's inputs and outputs (names, types, shapes with the batch axis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from retint.export.triton import write_triton_repository
from retint.runtime import DEFAULT_MODEL

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
from google.protobuf import text_format  # noqa: E402  (protobuf comes with tritonclient[grpc])

TRITON_TYPE_OF_ONNX = {onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.FLOAT: "TYPE_FP32"}


def parse_config(folder: Path):
    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def graph_signature(path: Path) -> dict[str, tuple[str, list[int]]]:
    """name -> (Triton type, dims with -1 for a symbolic axis), inputs and outputs alike."""
    graph = onnx.load(str(path)).graph
    return {value.name: (TRITON_TYPE_OF_ONNX[value.type.tensor_type.elem_type],
                         [dim.dim_value if dim.HasField("dim_value") else -1
                          for dim in value.type.tensor_type.shape.dim])
            for value in list(graph.input) + list(graph.output)}


def config_signature(config) -> dict[str, tuple[str, list[int]]]:
    batch = [-1] if config.max_batch_size > 0 else []
    return {tensor.name: (model_config_pb2.DataType.Name(tensor.data_type), batch + list(tensor.dims))
            for tensor in list(config.input) + list(config.output)}


def test_bundled_model_repository_parses_matches_the_graph_and_runs_the_declared_shapes(tmp_path):
    [folder] = write_triton_repository(DEFAULT_MODEL, tmp_path / "repo")
    config = parse_config(folder)
    assert (config.name, config.platform) == ("retint", "onnxruntime_onnx")
    assert folder.name == config.name  # Triton requires the folder to carry the model's name
    model = folder / "1" / "model.onnx"
    assert model.read_bytes() == DEFAULT_MODEL.read_bytes()
    # The bundled model (colour model v2) keeps its weights beside the graph: they travel with it.
    assert (folder / "1" / "retint-default.weights").is_file()
    assert config_signature(config) == graph_signature(model)
    # Its temperature input [1] has no batch axis, so Triton may not batch it: full shapes, no batching.
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert config_signature(config)["gray"] == ("TYPE_UINT8", [-1, 1, -1, -1])
    assert [(group.kind, group.count) for group in config.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_CPU, 2)]
    # What the config promises, the graph takes: a batch of 3 of a size no request had before.
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {"gray": np.full((3, 1, 40, 56), 128, np.uint8)}
    for tensor in config.input[1:]:
        dims = [3 if dim == -1 else dim for dim in tensor.dims]
        feeds[tensor.name] = np.full(dims, 0.38 if tensor.name == "temperature" else 0.0, np.float32)
    rgb = session.run(["rgb"], feeds)[0]
    assert rgb.shape == (3, 40, 56, 3) and rgb.dtype == np.uint8


def test_a_regression_graph_is_batched_by_triton(exported, tmp_path):
    [folder] = write_triton_repository(exported["unet256"].artefacts[0], tmp_path / "repo")
    config = parse_config(folder)
    assert config_signature(config) == {"gray": ("TYPE_UINT8", [-1, 1, -1, -1]), "rgb": ("TYPE_UINT8", [-1, -1, -1, 3])}
    assert config.max_batch_size == 16 and config.HasField("dynamic_batching")


def test_gpu_instances_and_a_plan_model_beside_it(exported, tmp_path):
    fused = exported["unet256"].artefacts[0]
    assert fused.name.endswith(".onnx") and ".fp16" not in fused.name
    # The writer copies a plan without reading it; these bytes only stand in for the file's place
    # (no TensorRT here builds one). The plan itself is tested by the gpu-marked export tests.
    plan = tmp_path / "model.fp16.plan"
    plan.write_bytes(b"bytes standing in for a plan file")
    folders = write_triton_repository(fused, tmp_path / "repo", device="gpu", plan=plan, plan_max_batch=8)
    assert [folder.name for folder in folders] == ["retint", "retint_trt"]
    onnx_config, plan_config = (parse_config(folder) for folder in folders)
    assert onnx_config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert (plan_config.platform, plan_config.max_batch_size) == ("tensorrt_plan", 8)
    assert plan_config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert (folders[1] / "1" / "model.plan").read_bytes() == plan.read_bytes()
    # The plan is built from the same graph's FP16 twin, whose I/O is identical (uint8 in and out).
    assert config_signature(plan_config) == graph_signature(fused) == config_signature(onnx_config)
    assert (folders[0] / "1" / "model.onnx.json").is_file()  # the sidecar travels with the graph
