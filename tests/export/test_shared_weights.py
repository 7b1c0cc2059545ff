"""One weights file for an artefact's graphs: smaller, and the same colours."""

from __future__ import annotations

import shutil

import numpy as np

from retint.export.shared_weights import share_weights
from retint.runtime import load_engine


def test_shared_weights_are_stored_once_and_colour_bit_for_bit_alike(exported_distribution, tmp_path):
    fused = exported_distribution.artefacts[0]
    source = fused.parent
    copy = tmp_path / "bundle"
    shutil.copytree(source, copy)
    stem = fused.name[: -len(".onnx")]
    graphs = [copy / f"{stem}.onnx", copy / f"{stem}.generator.onnx", copy / f"{stem}.distribution.onnx"]
    sizes_before = sum(path.stat().st_size for path in graphs)
    figures = share_weights(graphs, copy / f"{stem}.weights")
    sizes_after = sum(path.stat().st_size for path in graphs) + (copy / f"{stem}.weights").stat().st_size
    assert figures["after"] < 0.5 * figures["before"]
    assert sizes_after < 0.5 * sizes_before
    gray = np.random.default_rng(2).integers(0, 256, (1, 1, 80, 72), dtype=np.uint8)
    for backend in ("onnxruntime", "openvino"):
        with load_engine(source / fused.name, backend=backend) as original, \
                load_engine(copy / fused.name, backend=backend) as shared:
            assert np.array_equal(original.colorize(gray), shared.colorize(gray)), backend
