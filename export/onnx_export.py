"""Trace a deploy module to one self-contained ONNX file and inspect it.

torch 2.13's `torch.onnx.export` uses the dynamo exporter and by default
writes weights to a separate `.onnx.data` file; `external_data=False` keeps
one file (fine below the 2 GB protobuf limit). N, H and W stay dynamic.
"""

from __future__ import annotations

import inspect
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
from retint.export.deploy import control_examples
from retint.files import write_bytes_atomically
from retint.runtime.colour_controls import GLOBAL_HINT_NAME, HINT_AB_NAME, HINT_MASK_NAME, TEMPERATURE_NAME
from retint.runtime.metadata import (
    AB_NAME,
    INPUT_NAME,
    INTERVAL_NAME,
    LIGHTNESS_NAME,
    LOGITS_NAME,
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


def export_colouriser(module: nn.Module, limits: SizeLimits) -> onnx.ModelProto:
    """The fused colouriser graph: gray uint8 [N,1,H,W] (+ a distribution head's colour
    controls) -> rgb uint8 [N,H,W,3]."""
    example = torch.zeros(2, 1, 96, 64, dtype=torch.uint8)
    dims = _image_dims(limits)
    names, controls, control_shapes = _controls(module.generator.generator, module.render_size, dims[0])
    return _export(module, (example, *controls), [INPUT_NAME, *names], [OUTPUT_NAME],
                   {INPUT_NAME: dims, **control_shapes})


def _controls(generator: nn.Module, render_size: int, batch_dim) -> tuple[list[str], tuple, dict]:
    """Names, example tensors and dynamic shapes of a distribution head's colour controls
    (none for a regression generator); only N is dynamic, the temperature is [1]."""
    examples = control_examples(generator, 2, render_size)
    if not examples:
        return [], (), {}
    names = [HINT_AB_NAME, HINT_MASK_NAME] + ([GLOBAL_HINT_NAME] if len(examples) == 4 else []) + [TEMPERATURE_NAME]
    shapes = {name: ({0: batch_dim} if name != TEMPERATURE_NAME else None) for name in names}
    return names, examples, shapes


def export_lightness(module: nn.Module, limits: SizeLimits) -> onnx.ModelProto:
    """The first stage: gray uint8 [N,1,H,W] -> lightness float32 [N,1,R,R] (L/50 - 1)."""
    example = torch.zeros(2, 1, 96, 64, dtype=torch.uint8)
    return _export(module, (example,), [INPUT_NAME], [LIGHTNESS_NAME], {INPUT_NAME: _image_dims(limits)})


def export_generator(module: nn.Module, limits: SizeLimits, render_size: int) -> onnx.ModelProto:
    """The second stage: lightness float32 [N,1,R,R] (+ a distribution head's colour controls)
    -> ab float32 [N,2,r,r] (Lab units; r = R, or R/2 for a distribution head); only N is dynamic."""
    example = torch.zeros(2, 1, render_size, render_size)
    batch = _image_dims(limits)[0]
    names, controls, control_shapes = _controls(module.generator, render_size, batch)
    return _export(module, (example, *controls), [LIGHTNESS_NAME, *names], [AB_NAME],
                   {LIGHTNESS_NAME: {0: batch}, **control_shapes})


def export_distribution(module: nn.Module, limits: SizeLimits, render_size: int) -> onnx.ModelProto:
    """The distribution stage: lightness [N,1,R,R] + colour controls -> ab [N,2,r,r], interval
    [N,4,r,r] and logits [N,Q,r,r], float32; only N is dynamic."""
    example = torch.zeros(2, 1, render_size, render_size)
    batch = _image_dims(limits)[0]
    names, controls, control_shapes = _controls(module.generator.generator, render_size, batch)
    return _export(module, (example, *controls), [LIGHTNESS_NAME, *names], [AB_NAME, INTERVAL_NAME, LOGITS_NAME],
                   {LIGHTNESS_NAME: {0: batch}, **control_shapes})


def export_interval(module: nn.Module, limits: SizeLimits, render_size: int) -> onnx.ModelProto:
    """The interval stage: lightness [N,1,R,R] + ab [N,2,R,R] -> interval float32 [N,4,R,R]; only N is dynamic."""
    batch = {0: _image_dims(limits)[0]}
    example = (torch.zeros(2, 1, render_size, render_size), torch.zeros(2, 2, render_size, render_size))
    return _export(module, example, [LIGHTNESS_NAME, AB_NAME], [INTERVAL_NAME],
                   {LIGHTNESS_NAME: batch, AB_NAME: batch})


def export_composer(module: nn.Module, limits: SizeLimits, ab_side: int) -> onnx.ModelProto:
    """The third stage: gray uint8 [N,1,H,W] + ab float32 [N,2,r,r] -> rgb uint8 [N,H,W,3]
    (r: the generator stage's output side)."""
    dims = _image_dims(limits)
    example = (torch.zeros(2, 1, 96, 64, dtype=torch.uint8), torch.zeros(2, 2, ab_side, ab_side))
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
                dynamic_shapes=_by_argument(module, [dynamic_shapes.get(name) for name in input_names]), opset_version=OPSET, external_data=False,
                dynamo=True, verbose=False)
        model = program.model_proto
    except Exception as error:
        raise ExportError(f"torch.onnx.export failed: {str(error).strip().splitlines()[0]}") from error
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported graph fails onnx.checker: {str(error).splitlines()[0]}") from error
    return model


def _by_argument(module: nn.Module, shapes: list) -> tuple:
    """Dynamic shapes in input order, grouped as torch.export wants them: the deploy modules
    take a distribution head's colour controls as one *args parameter, whose shapes form one tuple."""
    parameters = list(inspect.signature(module.forward).parameters.values())
    fixed = [p for p in parameters if p.kind != inspect.Parameter.VAR_POSITIONAL]
    if len(fixed) == len(parameters) or len(shapes) == len(fixed):
        return tuple(shapes)
    return (*shapes[: len(fixed)], tuple(shapes[len(fixed):]))


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
    """Write the graph atomically (a reader never sees half a file)."""
    write_bytes_atomically(path, model.SerializeToString())


def generator_output_name(model: onnx.ModelProto) -> str:
    """The generator's last tensor, where NaN or Inf would first show: its tanh (a regression
    head) or the input of the softmax over its bins (a distribution head)."""
    tanh_outputs = [node.output[0] for node in model.graph.node if node.op_type == "Tanh"]
    if tanh_outputs:
        return tanh_outputs[-1]
    softmax_inputs = [node.input[0] for node in model.graph.node if node.op_type == "Softmax"]
    if softmax_inputs:
        return softmax_inputs[-1]
    raise ExportError("no Tanh or Softmax node in the graph: cannot find the generator's output")


class NonfiniteProbe:
    """Counts NaN/Inf in the generator output of an ONNX graph, via ONNX Runtime.

    The colouriser's output is uint8 and cannot show a NaN, so the probe runs
    a copy of the graph that also exposes the generator's tanh output.
    """

    def __init__(self, model: onnx.ModelProto,
                 inputs: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
                 temperature: float | None = None):
        """`inputs(gray)` gives the graph's inputs for a grey image (default: the grey itself,
        and automatic colour controls where the graph takes them, at `temperature`: the release's,
        else DEFAULT_TEMPERATURE)."""
        self.inputs = inputs or (lambda gray: {INPUT_NAME: gray,
                                               **automatic_controls(model, gray.shape[0], temperature)})
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


def automatic_controls(model: onnx.ModelProto, batch: int, temperature: float | None = None) -> dict[str, np.ndarray]:
    """Zero hints and `temperature` (the release's default; None: DEFAULT_TEMPERATURE) for the
    colour-control inputs `model` has."""
    from retint.model.bins import DEFAULT_TEMPERATURE

    feeds = {}
    for graph_input in model.graph.input:
        if graph_input.name in (HINT_AB_NAME, HINT_MASK_NAME, GLOBAL_HINT_NAME):
            dims = [batch] + [dim.dim_value for dim in graph_input.type.tensor_type.shape.dim[1:]]
            feeds[graph_input.name] = np.zeros(dims, np.float32)
        elif graph_input.name == TEMPERATURE_NAME:
            feeds[graph_input.name] = np.array([DEFAULT_TEMPERATURE if temperature is None else temperature], np.float32)
    return feeds
