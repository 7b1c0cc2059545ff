"""Helpers for the serve tests: photos as file bytes, a real engine that fails, colour measures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from imagemaker import natural_like_image


def grey_photo(height: int, width: int, seed: int = 1) -> np.ndarray:
    rgb = natural_like_image(height, width, seed)
    return np.asarray(Image.fromarray(rgb).convert("L"))


def encoded(pixels: np.ndarray, image_format: str = "JPEG", mode: str | None = None, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def colourfulness(data: bytes) -> float:
    """Mean max-minus-min over the RGB channels: 0 for a grey image."""
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def engine_that_fails_unless_64_square(folder: Path) -> Path:
    """A real ONNX graph (uint8 gray -> uint8 rgb) whose Reshape only fits a 64x64 image: ONNX Runtime
    itself raises for any other size, which is how the server's handling of an engine failure is tested."""
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 64, 64, 1])
    repeats = helper.make_tensor("repeats", TensorProto.INT64, [4], [1, 1, 1, 3])
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["gray"], ["nhwc"], perm=[0, 2, 3, 1]),
         helper.make_node("Reshape", ["nhwc", "shape"], ["square"]),
         helper.make_node("Tile", ["square", "repeats"], ["rgb"])],
        "fails-unless-64",
        [helper.make_tensor_value_info("gray", TensorProto.UINT8, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["N", "H", "W", 3])],
        [shape, repeats])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = folder / "fails-unless-64.onnx"
    onnx.save(model, path)
    sidecar = {"format": "retint-artefact", "kind": "colorizer", "precision": "fp32", "render_size": 64,
               "arch": "test-reshape", "limits": {"min_side": 16, "max_side": 8192, "max_batch": 1}}
    Path(str(path) + ".json").write_text(json.dumps(sidecar))
    return path
