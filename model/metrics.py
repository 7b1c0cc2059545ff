"""The image-quality metrics of `retint.colour_metrics` for torch tensors: CIEDE2000, PSNR,
Hasler-Suesstrunk colourfulness, the warm-hue cast with its counterweight, colour families.

Used by training validation and the export parity gates. The arithmetic is written once,
in numpy (`retint.colour_metrics`, where `colorize-bench quality` uses it without torch);
here tensors go to the CPU in float64 and the answers come back as tensors on the input's
device.
"""

from __future__ import annotations

import numpy as np
import torch

from retint import colour_metrics
from retint.colour_metrics import (  # noqa: F401  (re-exported: one name for each decision)
    FAMILY_MIN_CANDIDATE_CHROMA,
    FAMILY_MIN_REFERENCE_CHROMA,
    FAMILY_RIGHT_DEGREES,
    FAMILY_WRONG_DEGREES,
    FOLIAGE_HUE_DEGREES,
    GREEN_A_STAR,
    HUE_MIN_CHROMA,
    WARM_HUE_DEGREES,
    ColourFamilies,
    HueBandRendering,
)


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 between Lab images [N,3,H,W] -> [N,H,W] (float64)."""
    return torch.from_numpy(colour_metrics.ciede2000(_array(lab1), _array(lab2))).to(lab1.device)


def psnr(rgb1: torch.Tensor, rgb2: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB per image of two RGB batches [N,3,H,W] on the same scale."""
    return torch.from_numpy(colour_metrics.psnr(_array(rgb1), _array(rgb2), peak)).to(rgb1.device)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness per image; rgb [N,3,H,W] in 0..255."""
    return torch.from_numpy(colour_metrics.colourfulness(_array(rgb))).to(rgb.device)


def hue_band_rendering(candidate_lab: torch.Tensor, reference_lab: torch.Tensor,
                       degrees: tuple[float, float]) -> HueBandRendering:
    """`colour_metrics.hue_band_rendering` of two Lab tensors [N,3,H,W]."""
    return colour_metrics.hue_band_rendering(_array(candidate_lab), _array(reference_lab), degrees)


def warm_hue_cast(candidate_lab: torch.Tensor, reference_lab: torch.Tensor) -> HueBandRendering:
    """`colour_metrics.warm_hue_cast` (warm pixels turned green; lower is better) of Lab tensors."""
    return colour_metrics.warm_hue_cast(_array(candidate_lab), _array(reference_lab))


def foliage_kept_green(candidate_lab: torch.Tensor, reference_lab: torch.Tensor) -> HueBandRendering:
    """`colour_metrics.foliage_kept_green` (green pixels kept green; higher is better) of Lab tensors."""
    return colour_metrics.foliage_kept_green(_array(candidate_lab), _array(reference_lab))


def colour_families(candidate_lab: torch.Tensor, reference_lab: torch.Tensor) -> ColourFamilies:
    """`colour_metrics.colour_families` (right and clearly wrong colour family) of Lab tensors."""
    return colour_metrics.colour_families(_array(candidate_lab), _array(reference_lab))
