"""Checkpoints: plain dicts of tensors and plain values.

They load with `torch.load(weights_only=True)`, so opening one never runs
code; a file that needs pickled objects is refused. A checkpoint carries the
full training config (and so the generator's architecture, render size and
normalisation), epoch, step, optimiser states and the retint version, so the
file alone rebuilds the generator.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from retint import __version__
from retint.errors import CheckpointError
from retint.model.config import GeneratorConfig, generator_config_from_dict
from retint.files import write_bytes_atomically
from retint.model.networks import build_generator

CHECKPOINT_FORMAT = "retint-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1


def save_checkpoint(path: Path, contents: dict[str, Any]) -> None:
    """Write `contents` (plus format markers) atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "retint_version": __version__,
        **contents,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomically(Path(path), buffer.getvalue())


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a retint checkpoint without running any code in it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} contains pickled code or objects; retint only opens plain tensor "
            "checkpoints (torch.load weights_only=True)"
        ) from error
    except Exception as error:  # torch raises RuntimeError, EOFError, zipfile errors, ...
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'corrupt'})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a retint checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if payload.get("format_version", 0) > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer retint ({payload.get('retint_version')}); upgrade retint"
        )
    for key in ("generator_config", "generator"):
        if key not in payload:
            raise CheckpointError(f"{path} has no '{key}' entry")
    return payload


def generator_config_of(payload: dict[str, Any]) -> GeneratorConfig:
    """The generator config a loaded checkpoint records; a CheckpointError where this retint cannot read it."""
    return generator_config_from_dict(payload["generator_config"])


def load_generator(path: Path | str, device: str | torch.device = "cpu") -> nn.Module:
    """The generator of a checkpoint, rebuilt from the file alone, in eval mode.

    The ImageNet encoder weights are not loaded first (the checkpoint holds
    trained ones), so this needs no extra package. The config is available as
    `generator.retint_config`.
    """
    return generator_of(load_checkpoint(path), path).to(device)


def generator_of(payload: dict[str, Any], path: Path | str) -> nn.Module:
    """`load_generator` for a checkpoint already loaded from `path` (named in errors), in eval
    mode on the CPU: for callers that also read its other entries, so the file is read once."""
    config = generator_config_of(payload)
    generator = build_generator(dataclasses.replace(config, pretrained_encoder=False))
    try:
        generator.load_state_dict(payload["generator"], strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit a {config.arch} generator ({str(error).splitlines()[0]})"
        ) from error
    generator.retint_config = config
    return generator.eval()


def average_generators(payloads: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The uniform average of several checkpoints' generator weights (a "model
    soup", Wortsman et al. 2022): checkpoints of one run, or of runs branched
    from one another, land in one basin, and their mean is steadier than any
    one of them (held-out CIEDE2000 swings by about 0.4 from epoch to epoch).
    Integer buffers (BatchNorm's step counter) are taken from the first."""
    configs = {(c.arch, c.base_channels) for c in map(generator_config_of, payloads)}
    if len(configs) != 1:
        raise CheckpointError(f"cannot average generators of different shapes: {sorted(configs)}")
    first = payloads[0]["generator"]
    if any(set(p["generator"]) != set(first) for p in payloads[1:]):
        raise CheckpointError("cannot average generators whose weights have different names")
    return {name: (sum(p["generator"][name].float() for p in payloads) / len(payloads)).to(tensor.dtype)
            if tensor.is_floating_point() else tensor.clone()
            for name, tensor in first.items()}


def generator_only(payload: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint with the generator and configs only (no optimiser, no discriminator)."""
    keep = ("generator_config", "generator", "train_config", "epoch", "step", "best", "note")
    contents = {key: payload[key] for key in keep if key in payload}
    contents["generator"] = {name: tensor.clone() for name, tensor in payload["generator"].items()}
    return contents
