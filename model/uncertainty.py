"""The uncertainty head and its calibration: where the colour is evidence and where it is a guess.

`IntervalHead` reads what the deployed colouriser already has at render size,
the lightness and the predicted chroma, and predicts per pixel how far below
and above the prediction the 5% and 95% quantiles of a and b lie (pinball
loss; Angelopoulos et al. 2022, "Image-to-Image Regression with
Distribution-Free Uncertainty Quantification"). It is trained on a frozen
generator, so the shipped colours do not change, and it needs none of the
generator's weights: the artefact gains a small stage instead of a second
copy of the generator.

Calibration is conformal risk control over nested intervals

    lo = ab - lambda * down,   hi = ab + lambda * up

where one photo's loss is the fraction of its pixels whose true (a, b) falls
outside the interval, counted jointly over a and b. `calibrate` picks the
smallest lambda with n/(n+1) * R(lambda) + 1/(n+1) <= alpha on photos used
neither to train the generator nor the head. The guarantee: for a new photo
exchangeable with the calibration photos, the expected fraction of its pixels
outside the interval is at most alpha. It says nothing about photos unlike
the calibration set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from retint.errors import InputError
from retint.model.colour import AB_SCALE
from retint.model.losses import pinball_loss

# The quantiles the head is trained for: a 90% band per channel before calibration.
LOWER_QUANTILE = 0.05
UPPER_QUANTILE = 0.95
# The smallest spread the head predicts (Lab units): keeps lambda finite where a pixel is certain.
MIN_SPREAD = 0.05
CHANNELS = ("a_low", "a_high", "b_low", "b_high")


def _conv(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation,
                                   dilation=dilation), nn.ReLU(inplace=True))


class IntervalHead(nn.Module):
    """(L/50 - 1 [N,1,R,R], ab [N,2,R,R] in Lab units) -> spreads [N,4,R,R] >= MIN_SPREAD in Lab units:
    a_down, a_up, b_down, b_up. A small U-shape with a receptive field of about 60 pixels
    at render size: enough to tell smooth sky from texture, and the prediction says what the
    generator thought the region was."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.at_full = _conv(3, width)
        self.at_half = _conv(width, 2 * width, stride=2)
        self.at_quarter = nn.Sequential(_conv(2 * width, 3 * width, stride=2),
                                     _conv(3 * width, 3 * width, dilation=2),
                                     _conv(3 * width, 3 * width, dilation=4))
        self.up_half = _conv(5 * width, 2 * width)
        self.up_full = _conv(3 * width, width)
        self.out = nn.Conv2d(width, 4, 1)
        nn.init.zeros_(self.out.weight)
        # softplus(1.5) * AB_SCALE / 10 is about 19 Lab units: a start of the right order.
        nn.init.constant_(self.out.bias, 1.5)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """The four spreads per pixel for this lightness and predicted ab (see the class)."""
        full = self.at_full(torch.cat((lightness, ab / AB_SCALE), dim=1))
        half = self.at_half(full)
        quarter = self.at_quarter(half)
        up = F.interpolate(quarter, size=half.shape[-2:], mode="bilinear", align_corners=False)
        up = self.up_half(torch.cat((up, half), dim=1))
        up = F.interpolate(up, size=full.shape[-2:], mode="bilinear", align_corners=False)
        up = self.up_full(torch.cat((up, full), dim=1))
        return F.softplus(self.out(up)) * (AB_SCALE / 10.0) + MIN_SPREAD


def interval_bounds(ab: torch.Tensor, spreads: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """[N,4,R,R] a_low, a_high, b_low, b_high for the nested interval at `scale` (lambda)."""
    a, b = ab[:, :1], ab[:, 1:2]
    return torch.cat((a - scale * spreads[:, 0:1], a + scale * spreads[:, 1:2],
                      b - scale * spreads[:, 2:3], b + scale * spreads[:, 3:4]), dim=1)


def interval_pinball_loss(ab: torch.Tensor, spreads: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss of the 5% and 95% quantiles ab - down, ab + up against the true ab."""
    bounds = interval_bounds(ab, spreads, 1.0)
    quantiles = torch.tensor((LOWER_QUANTILE, UPPER_QUANTILE) * 2, device=ab.device).view(1, 4, 1, 1)
    # losses.pinball_loss is doubled so that its 0.5 equals L1; the head is trained undoubled.
    return 0.5 * pinball_loss(bounds, truth.repeat_interleave(2, dim=1), quantiles)


def scale_needed(ab: np.ndarray, spreads: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per pixel, the smallest lambda whose interval holds the true (a, b): float32 [N,R,R].

    A pixel is covered at lambda exactly when its value here is <= lambda, so one
    array answers every lambda (and every alpha)."""
    needs = []
    for channel in (0, 1):
        error = truth[:, channel] - ab[:, channel]
        spread = np.where(error < 0, spreads[:, 2 * channel], spreads[:, 2 * channel + 1])
        needs.append(np.abs(error) / spread)
    return np.maximum(*needs).astype(np.float32)


def miscoverage(needed: np.ndarray, scale: float) -> np.ndarray:
    """Each photo's fraction of pixels outside the interval at lambda = `scale`: [N]."""
    return (needed > scale).reshape(len(needed), -1).mean(axis=1)


@dataclass(frozen=True)
class Calibration:
    alpha: float
    scale: float  # lambda-hat
    photos: int  # n
    empirical_risk: float  # R-hat(lambda-hat) on the calibration photos

    def as_dict(self) -> dict[str, float | int]:
        """The calibration's figures under the names the checkpoint and the report use (`lambda` for `scale`)."""
        return {"alpha": self.alpha, "lambda": self.scale, "calibration_photos": self.photos,
                "calibration_miscoverage": self.empirical_risk}


class CalibrationError(InputError):
    """Too few calibration photos for the asked alpha, or an alpha outside (0, 1)."""


def minimum_calibration_photos(alpha: float) -> int:
    """The fewest photos n for which the conformal bound 1/(n+1) <= alpha can hold."""
    return int(np.ceil(1.0 / alpha - 1.0 - 1e-9))


def calibrate(needed: np.ndarray, alpha: float, tolerance: float = 1e-4) -> Calibration:
    """Conformal risk control: the smallest lambda with n/(n+1) R(lambda) + 1/(n+1) <= alpha.

    R is monotone in lambda, so bisection finds it; the answer errs on the safe (larger) side."""
    count = len(needed)
    if not 0 < alpha < 1:
        raise CalibrationError(f"alpha must be between 0 and 1, got {alpha}")
    if count < minimum_calibration_photos(alpha):
        raise CalibrationError(f"{count} calibration photos cannot guarantee alpha {alpha}: "
                               f"at least {minimum_calibration_photos(alpha)} are needed")

    def bound(scale: float) -> float:
        return count / (count + 1) * float(miscoverage(needed, scale).mean()) + 1.0 / (count + 1)

    low, high = 0.0, float(needed.max())
    while high - low > tolerance * max(high, 1.0):
        middle = (low + high) / 2
        if bound(middle) <= alpha:
            high = middle
        else:
            low = middle
    return Calibration(alpha=alpha, scale=high, photos=count,
                       empirical_risk=float(miscoverage(needed, high).mean()))


def interval_width(spreads: np.ndarray, scale: float) -> np.ndarray:
    """Per pixel, the interval's width averaged over a and b (Lab units): [N,R,R]."""
    return scale * (spreads[:, 0] + spreads[:, 1] + spreads[:, 2] + spreads[:, 3]) / 2.0


def constant_width_for(coverage: float, ab: np.ndarray, truth: np.ndarray, tolerance: float = 1e-3) -> float:
    """The width 2c of the constant interval ab +- c (both channels) whose mean per-photo joint
    coverage equals `coverage`: the uninformative baseline the head must beat."""
    needed = np.maximum(np.abs(truth[:, 0] - ab[:, 0]), np.abs(truth[:, 1] - ab[:, 1]))
    low, high = 0.0, float(needed.max())
    while high - low > tolerance:
        middle = (low + high) / 2
        if 1.0 - miscoverage(needed, middle).mean() >= coverage:
            high = middle
        else:
            low = middle
    return 2.0 * high


# The `method` of a distribution head's calibration in a checkpoint's `uncertainty`: its intervals
# come from its own distribution (bins.distribution_spreads), with no head of their own.
DISTRIBUTION_METHOD = "distribution"


def load_interval_head(payload: dict) -> tuple[IntervalHead, dict] | None:
    """The calibrated head of a checkpoint made by `colorize-uncertainty`, and its calibration;
    None for a checkpoint without one."""
    if "uncertainty_head" not in payload:
        return None
    calibration = dict(payload.get("uncertainty", {}))
    head = IntervalHead(int(calibration.get("head_width", 16)))
    head.load_state_dict({name: tensor.float() for name, tensor in payload["uncertainty_head"].items()})
    return head.eval(), calibration
