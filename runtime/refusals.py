"""Every refusal of what a model cannot do, worded once: the engine raises these lines, and
colorize-batch, colorize-serve and colorize-bench show them as they are (a batch option's name or
an HTTP field before them).

Guides (hints, a reference photo) work on every model whose stage files lie beside it
(`runtime.capabilities`), so what is left to refuse is: a temperature for a model that has none
(a regression model), guides for an artefact copied without its stages, and what needs an
uncertainty head where there is none. A model is named as `Artefact.name` names it: its file
name, or "the bundled default model".
"""

from __future__ import annotations

from typing import Sequence

from retint.runtime.capabilities import Capabilities

# How to get what a regression model lacks.
HOW_TO_GET_V2 = "colorize-train --head distribution, then export-trt"
HOW_TO_GET_STAGES = "export-trt writes NAME.lightness.onnx, NAME.generator.onnx and NAME.compose.onnx beside NAME.onnx"
HOW_TO_GET_HEAD = ("export-trt writes NAME.interval.onnx from a checkpoint made by colorize-uncertainty, or a "
                   "calibrated colour model v2's distribution stage")
GUIDES = ("hints", "temperature", "reference")


def temperature_refusal(model_name: str) -> str:
    """A temperature given to a model that has none."""
    return (f"{model_name} predicts one colour per pixel (a regression model): it has no temperature to set; "
            f"a colour model v2 artefact has one ({HOW_TO_GET_V2})")


def stages_refusal(model_name: str, given: Sequence[str]) -> str:
    """Guides given to an artefact whose stage files are not beside it."""
    return (f"{model_name}: {' and '.join(given)} need the model's stage files beside it, which are missing "
            f"({HOW_TO_GET_STAGES})")


def checkpoint_guides_refusal(checkpoint_name: str, given: Sequence[str]) -> str:
    """Guides given to a regression checkpoint run as one PyTorch graph (colorize-bench): the guides
    run between an exported artefact's stages."""
    return (f"{checkpoint_name} runs as one PyTorch graph: {' and '.join(given)} on a regression model run "
            f"between an exported artefact's stages (export-trt {checkpoint_name}, then --engine the .onnx)")


def uncertainty_refusal(model_name: str, purpose: str) -> str:
    """`purpose` (an option, a route) needs calibrated intervals the model does not have."""
    return f"{purpose}: {model_name} has no uncertainty head ({HOW_TO_GET_HEAD})"


def guide_refusal(model_name: str, capabilities: Capabilities, given: Sequence[str]) -> str:
    """Why the model cannot take the guides `given` (of GUIDES), or '': the one check the engine,
    colorize-batch and colorize-serve make."""
    if "temperature" in given and capabilities.temperature_range is None:
        return temperature_refusal(model_name)
    needing_stages = [name for name in given if name in ("hints", "reference")]
    if needing_stages and not capabilities.guides:
        return stages_refusal(model_name, needing_stages)
    return ""
