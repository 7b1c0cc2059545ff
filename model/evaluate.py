"""Validation: colour the held-out photos and score them against the truth.

Scores are taken on what a user would see: the prediction composed with the
true lightness, rounded to uint8 RGB. The grey baseline (ab = 0) is scored the
same way, so every figure has its "did nothing" reference beside it.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np
import torch
from torch import nn

from retint.model.colour import (
    compose_rgb,
    denormalize_ab,
    normalize_lightness,
    rgb_to_uint8,
    rgb_uint8_to_lab,
)
from retint.model.metrics import ciede2000, colourfulness, psnr


def predict_rgb(generator: nn.Module, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB [N,3,S,S] -> (prediction, grey baseline), both uint8 RGB [N,3,S,S]."""
    lab = rgb_uint8_to_lab(rgb)
    lightness = lab[:, :1]
    predicted_ab = denormalize_ab(generator(normalize_lightness(lightness)).float())
    predicted = rgb_to_uint8(compose_rgb(lightness, predicted_ab))
    grey = rgb_to_uint8(compose_rgb(lightness, torch.zeros_like(predicted_ab)))
    return predicted, grey


@torch.no_grad()
def evaluate(generator: nn.Module, batches: Iterable[torch.Tensor], device: torch.device) -> dict[str, float]:
    """Mean CIEDE2000, PSNR and colourfulness of prediction, grey baseline and truth."""
    was_training = generator.training
    generator.eval()
    sums = {"ciede2000": 0.0, "psnr": 0.0, "grey_ciede2000": 0.0, "grey_psnr": 0.0,
            "colourfulness": 0.0, "truth_colourfulness": 0.0}
    count = 0
    for rgb in batches:
        rgb = rgb.to(device)
        predicted, grey = predict_rgb(generator, rgb)
        truth_lab = rgb_uint8_to_lab(rgb)
        for prefix, candidate in (("", predicted), ("grey_", grey)):
            sums[prefix + "ciede2000"] += float(
                ciede2000(rgb_uint8_to_lab(candidate), truth_lab).flatten(1).mean(dim=1).sum())
            sums[prefix + "psnr"] += float(psnr(candidate.float() / 255, rgb.float() / 255).sum())
        sums["colourfulness"] += float(colourfulness(predicted.float()).sum())
        sums["truth_colourfulness"] += float(colourfulness(rgb.float()).sum())
        count += rgb.shape[0]
    generator.train(was_training)
    if count == 0:
        return {}
    return {key: value / count for key, value in sums.items()} | {"images": count}


@torch.no_grad()
def sample_grid(generator: nn.Module, rgb: torch.Tensor, device: torch.device) -> bytes:
    """PNG bytes: one row per image, grey | prediction | truth."""
    was_training = generator.training
    generator.eval()
    rgb = rgb.to(device)
    predicted, grey = predict_rgb(generator, rgb)
    generator.train(was_training)
    rows = [torch.cat((g, p, t), dim=2) for g, p, t in zip(grey, predicted, rgb)]
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy()
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(grid), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding of the sample grid failed")
    return encoded.tobytes()
