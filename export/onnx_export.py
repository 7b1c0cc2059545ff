"""Trace a deploy module to one self-contained ONNX file and inspect it.

torch 2.13's `torch.onnx.export` uses the dynamo exporter and by default
writes weights to a separate `.onnx.data` file; `external_data=False` keeps
one file (fine below the 2 GB protobuf limit). N, H and W stay dynamic.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from retint.errors import RetintError
from retint.files import write_bytes_atomically
from retint.runtime.metadata import (
    AB_NAME,
    INPUT_NAME,
    INTERVAL_NAME,
    LIGHTNESS_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    ArtefactMetadata,
    SizeLimits,
)

OPSET = 20

# The exporter warns about every torchvision op it cannot register; retint uses none.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


class ExportError(RetintError):
    """The ONNX exporter or checker rejected the graph."""

    exit_code = 1


def export_colorizer(module: nn.Module, limits: SizeLimits) -> onnx.ModelProto:
    """The fused colouriser graph: gray uint8 [N,1,H,W] -> rgb uint8 [N,H,W,3]."""
    example = torch.zeros(2, 1, 96, 64, dtype=torch.uint8)
    return _export(module, (example,), [INPUT_NAME], [OUTPUT_NAME], {INPUT_NAME: _image_dims(limits)})


def export_lightness(module: nn.Module, limits: SizeLimits) -> onnx.ModelProto:
    """The first stage: gray uint8 [N,1,H,W] -> lightness float32 [N,1,R,R] (L/50 - 1)."""
    example = torch.zeros(2, 1, 96, 64, dtype=torch.uint8)
    return _export(module, (example,), [INPUT_NAME], [LIGHTNESS_NAME], {INPUT_NAME: _image_dims(limits)})


def export_generator(module: nn.Module, limits: SizeLimits, render_size: int) -> onnx.ModelProto:
    """The second stage: lightness float32 [N,1,R,R] -> ab float32 [N,2,R,R] (Lab units); only N is dynamic."""
    example = torch.zeros(2, 1, render_size, render_size)
    return _export(module, (example,), [LIGHTNESS_NAME], [AB_NAME], {LIGHTNESS_NAME: {0: _image_dims(limits)[0]}})


def export_interval(module: nn.Module, limits: SizeLimits, render_size: int) -> onnx.ModelProto:
    """The interval stage: lightness [N,1,R,R] + ab [N,2,R,R] -> interval float32 [N,4,R,R]; only N is dynamic."""
    batch = {0: _image_dims(limits)[0]}
    example = (torch.zeros(2, 1, render_size, render_size), torch.zeros(2, 2, render_size, render_size))
    return _export(module, example, [LIGHTNESS_NAME, AB_NAME], [INTERVAL_NAME],
                   {LIGHTNESS_NAME: batch, AB_NAME: batch})


def export_composer(module: nn.Module, limits: SizeLimits, render_size: int) -> onnx.ModelProto:
    """The third stage: gray uint8 [N,1,H,W] + ab float32 [N,2,R,R] -> rgb uint8 [N,H,W,3]."""
    dims = _image_dims(limits)
    example = (torch.zeros(2, 1, 96, 64, dtype=torch.uint8), torch.zeros(2, 2, render_size, render_size))
    return _export(module, example, [INPUT_NAME, AB_NAME], [OUTPUT_NAME],
                   {INPUT_NAME: dims, AB_NAME: {0: dims[0]}})


def _image_dims(limits: SizeLimits) -> dict:
    return {0: torch.export.Dim("batch", min=1, max=max(limits.max_batch, 1024)),
            2: torch.export.Dim("height", min=limits.min_side, max=limits.max_side),
            3: torch.export.Dim("width", min=limits.min_side, max=limits.max_side)}


def _export(module: nn.Module, example: tuple, input_names: list[str], output_names: list[str],
            dynamic_shapes: dict) -> onnx.ModelProto:
    module = module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, example, input_names=input_names, output_names=output_names,
                dynamic_shapes=dynamic_shapes, opset_version=OPSET, external_data=False,
                dynamo=True, verbose=False)
        model = program.model_proto
    except Exception as error:
        raise ExportError(f"torch.onnx.export failed: {str(error).strip().splitlines()[0]}") from error
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported graph fails onnx.checker: {str(error).splitlines()[0]}") from error
    return model


def with_metadata(model: onnx.ModelProto, metadata: ArtefactMetadata) -> onnx.ModelProto:
    """The model with the artefact metadata in metadata_props (replacing any)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [prop for prop in copy.metadata_props if prop.key != METADATA_KEY]
    del copy.metadata_props[:]
    copy.metadata_props.extend(kept)
    onnx.helper.set_model_props(copy, {**{p.key: p.value for p in kept}, METADATA_KEY: metadata.to_json()})
    return copy


def save_model(model: onnx.ModelProto, path: Path) -> None:
    write_bytes_atomically(path, model.SerializeToString())


def generator_output_name(model: onnx.ModelProto) -> str:
    """The generator's last tensor (its tanh), where NaN or Inf would first show."""
    tanh_outputs = [node.output[0] for node in model.graph.node if node.op_type == "Tanh"]
    if not tanh_outputs:
        raise ExportError("no Tanh node in the graph: cannot find the generator's output")
    return tanh_outputs[-1]


class NonfiniteProbe:
    """Counts NaN/Inf in the generator output of an ONNX graph, via ONNX Runtime.

    The colouriser's output is uint8 and cannot show a NaN, so the probe runs
    a copy of the graph that also exposes the generator's tanh output.
    """

    def __init__(self, model: onnx.ModelProto,
                 inputs: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None):
        """`inputs(gray)` gives the graph's inputs for a grey image (default: the grey itself)."""
        self.inputs = inputs or (lambda gray: {INPUT_NAME: gray})
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        self.name = generator_output_name(probe)
        inferred = onnx.shape_inference.infer_shapes(probe)
        known = {info.name: info for info in inferred.graph.value_info}
        if self.name in known:
            probe.graph.output.append(known[self.name])
        else:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(self.name))
        self.session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])

    def __call__(self, gray: np.ndarray) -> int:
        values = self.session.run([self.name], self.inputs(gray))[0]
        return int((~np.isfinite(values.astype(np.float32))).sum())
