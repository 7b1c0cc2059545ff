"""Store the weights of several ONNX graphs once, in one file beside them.

An artefact's graphs (the fused colouriser, the generator stage, a
distribution stage) each hold the same generator weights. For the bundled
default model that would ship them three times. ONNX's external data lets an
initializer point at bytes in another file (`location`, `offset`,
`length`); ONNX Runtime and OpenVINO read it when they open a graph by its
path. `share_weights` moves every large initializer of the given graphs into
one file, each distinct tensor once (by content), and rewrites the graphs
to point at it. The graphs' metadata and sidecars are untouched; their
outputs are bit for bit the same (a test opens both and compares).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from onnx import numpy_helper

from retint.files import write_bytes_atomically

# Initializers smaller than this stay inside their graph (shapes, constants of the colour maths).
SHARED_MIN_BYTES = 1024
# Each tensor starts at a multiple of this, so a runtime may map the file and read tensors in place.
SHARED_ALIGNMENT = 64


def _raw_bytes(tensor: onnx.TensorProto) -> bytes:
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    return numpy_helper.from_array(numpy_helper.to_array(tensor)).raw_data


def share_weights(graphs: list[Path], weights: Path) -> dict[str, int]:
    """Rewrite `graphs` (ONNX files in one folder) to read their large initializers from `weights`
    (written beside them); returns the bytes before (summed over the graphs) and after."""
    folder = weights.parent
    offsets: dict[str, tuple[int, int]] = {}
    blob = bytearray()
    models = []
    before = 0
    for path in graphs:
        if path.parent != folder:
            raise ValueError(f"{path} is not in {folder}: external data is found relative to the graph")
        model = onnx.load(str(path), load_external_data=True)
        for tensor in model.graph.initializer:
            data = _raw_bytes(tensor)
            before += len(data)
            if len(data) < SHARED_MIN_BYTES:
                continue
            key = hashlib.sha256(data + str(tensor.data_type).encode()).hexdigest()
            if key not in offsets:
                blob.extend(b"\0" * (-len(blob) % SHARED_ALIGNMENT))
                offsets[key] = (len(blob), len(data))
                blob.extend(data)
            offset, length = offsets[key]
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                tensor.ClearField(field)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            for name, value in (("location", weights.name), ("offset", str(offset)), ("length", str(length))):
                entry = tensor.external_data.add()
                entry.key, entry.value = name, value
        models.append((path, model))
    write_bytes_atomically(weights, bytes(blob))
    for path, model in models:
        write_bytes_atomically(path, model.SerializeToString())
    return {"before": before, "after": len(blob)}


def external_data_files(graph: Path) -> list[Path]:
    """The files beside `graph` that its initializers read (empty for a self-contained graph):
    what must travel with it when it is copied."""
    model = onnx.load(str(graph), load_external_data=False)
    locations = {entry.value for tensor in model.graph.initializer
                 if tensor.data_location == onnx.TensorProto.EXTERNAL
                 for entry in tensor.external_data if entry.key == "location"}
    return [graph.parent / location for location in sorted(locations)]
