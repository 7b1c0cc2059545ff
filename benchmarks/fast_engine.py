"""Nearly free colouriser artefacts: real ONNX graphs (uint8 gray -> uint8 rgb) that do almost nothing,
for measuring everything around the engine (a driver's manifest rate, a server's error handling)."""

from __future__ import annotations

import json
from pathlib import Path


def write_grey_copy_engine(folder: Path, fixed_side: int | None = None) -> Path:
    """rgb = gray repeated three times (Transpose, Tile). With `fixed_side`, a Reshape fits only a single
    fixed_side x fixed_side image, so ONNX Runtime itself fails on any other size."""
    import onnx
    from onnx import TensorProto, helper

    initializers = [helper.make_tensor("repeats", TensorProto.INT64, [4], [1, 1, 1, 3])]
    nodes = [helper.make_node("Transpose", ["gray"], ["nhwc"], perm=[0, 2, 3, 1])]
    if fixed_side:
        initializers.append(helper.make_tensor("shape", TensorProto.INT64, [4], [1, fixed_side, fixed_side, 1]))
        nodes.append(helper.make_node("Reshape", ["nhwc", "shape"], ["tiled_input"]))
    nodes.append(helper.make_node("Tile", ["tiled_input" if fixed_side else "nhwc", "repeats"], ["rgb"]))
    name = f"grey-copy-{fixed_side}-only" if fixed_side else "grey-copy"
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("gray", TensorProto.UINT8, ["N", 1, "H", "W"])],
                              [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["N", "H", "W", 3])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    sidecar = {"format": "retint-artefact", "kind": "colorizer", "precision": "fp32", "render_size": 16,
               "arch": f"{name} (a benchmark engine)",
               "limits": {"min_side": 16, "max_side": 8192, "max_batch": 1 if fixed_side else 16}}
    Path(str(path) + ".json").write_text(json.dumps(sidecar))
    return path
