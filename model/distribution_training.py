"""What training a distribution-head generator needs beyond the regression's loop.

- `colour_prior`: how often each a*b* bin occurs in the training photos, for
  Zhang's class rebalancing (`bins.rebalancing_weights`);
- `simulate_point_hints`: Zhang, Zhu et al. (2017)'s simulated user clicks,
  small square patches holding the truth's mean a*b*, a geometric number of
  them, on a share of the batch (the rest is coloured automatically);
- `simulate_global_hint`: the truth's own a*b* histogram over a random window
  of it (so the model learns a palette, not positions), on a share of the batch;
- `distribution_loss`: rebalanced cross-entropy against soft-encoded targets;
- `DistributionColouriser`: L -> a*b* by the annealed mean, the callable that
  validation, sample grids and the exported graph's generator stage share.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from retint.model.bins import DEFAULT_TEMPERATURE, ab_histogram, annealed_mean, nearest_bin, soft_encode
from retint.model.colour import AB_SCALE

# Point hints per hinted sample: 1 + Geometric(1/8), at most this many.
MAX_POINT_HINTS = 16
POINT_HINT_GEOMETRIC_P = 1.0 / 8.0
# Half-widths of the square hint patches at render size (1, 3, 5, 7 pixels).
HINT_HALF_WIDTHS = (0, 1, 2, 3)
# The global hint's window covers this share of each side of the crop, at least.
GLOBAL_HINT_MIN_WINDOW = 0.5
# The prior is counted on photos shrunk to this side.
PRIOR_SIDE = 64


def colour_prior(photos: list[np.ndarray | None], centres: np.ndarray) -> np.ndarray:
    """Counts [Q] of the nearest bin of every pixel of the (shrunk) training photos."""
    counts = np.zeros(len(centres), dtype=np.float64)
    centres_t = torch.from_numpy(centres)
    for rgb in photos:
        if rgb is None:
            continue
        height, width = rgb.shape[:2]
        scale = PRIOR_SIDE / max(height, width)
        small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        ab = torch.from_numpy(np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1)))[None]
        index = nearest_bin(ab, centres_t).flatten().numpy()
        counts += np.bincount(index, minlength=len(centres))
    return counts


def simulate_point_hints(ab: torch.Tensor, fraction: float,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """True ab [N,2,R,R] in Lab units -> (hint_ab [N,2,R,R] normalised by 110, mask [N,1,R,R])."""
    batch, _, height, width = ab.shape
    device = ab.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    hinted = uniform(batch) < fraction
    geometric = torch.floor(torch.log(uniform(batch).clamp(min=1e-9))
                            / np.log(1.0 - POINT_HINT_GEOMETRIC_P)).long() + 1
    counts = torch.where(hinted, geometric.clamp(max=MAX_POINT_HINTS), torch.zeros_like(geometric))
    kept = torch.arange(MAX_POINT_HINTS, device=device)[None] < counts[:, None]  # [N,K]
    ys = (uniform(batch, MAX_POINT_HINTS) * height).long().clamp(max=height - 1)
    xs = (uniform(batch, MAX_POINT_HINTS) * width).long().clamp(max=width - 1)
    level = (uniform(batch, MAX_POINT_HINTS) * len(HINT_HALF_WIDTHS)).long().clamp(max=len(HINT_HALF_WIDTHS) - 1)
    half = torch.tensor(HINT_HALF_WIDTHS, device=device)[level]
    # The patch means for every half-width, then each point's own.
    means = torch.stack([F.avg_pool2d(ab, 2 * h + 1, stride=1, padding=h, count_include_pad=False)
                         for h in HINT_HALF_WIDTHS], dim=1)  # [N,H,2,R,R]
    batch_index = torch.arange(batch, device=device)[:, None].expand_as(ys)
    values = means[batch_index, level, :, ys, xs]  # [N,K,2]
    rows = torch.arange(height, device=device).view(1, 1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, 1, width)
    inside = (((rows - ys[..., None, None]).abs() <= half[..., None, None])
              & ((cols - xs[..., None, None]).abs() <= half[..., None, None])
              & kept[..., None, None]).to(ab.dtype)  # [N,K,R,R]
    cover = inside.sum(dim=1, keepdim=True)
    painted = torch.einsum("nkhw,nkc->nchw", inside, values) / cover.clamp(min=1.0)
    mask = (cover > 0).to(ab.dtype)
    return painted / AB_SCALE, mask


def simulate_global_hint(ab: torch.Tensor, centres: torch.Tensor, fraction: float,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """True ab [N,2,r,r] -> global hints [N,Q+1]: the histogram of a random window and a flag 1,
    or zeros for the samples left without one."""
    batch, _, height, width = ab.shape
    device = ab.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    given = (uniform(batch) < fraction).to(ab.dtype)
    sides_h = (GLOBAL_HINT_MIN_WINDOW + (1 - GLOBAL_HINT_MIN_WINDOW) * uniform(batch)) * height
    sides_w = (GLOBAL_HINT_MIN_WINDOW + (1 - GLOBAL_HINT_MIN_WINDOW) * uniform(batch)) * width
    tops = uniform(batch) * (height - sides_h)
    lefts = uniform(batch) * (width - sides_w)
    rows = torch.arange(height, device=device).view(1, height, 1).to(ab.dtype)
    cols = torch.arange(width, device=device).view(1, 1, width).to(ab.dtype)
    window = ((rows >= tops.view(-1, 1, 1)) & (rows < (tops + sides_h).view(-1, 1, 1))
              & (cols >= lefts.view(-1, 1, 1)) & (cols < (lefts + sides_w).view(-1, 1, 1)))
    histogram = ab_histogram(ab, centres, window[:, None].to(ab.dtype))
    return torch.cat((histogram, torch.ones(batch, 1, device=device, dtype=ab.dtype)), dim=1) * given[:, None]


def distribution_loss(logits: torch.Tensor, true_ab: torch.Tensor, centres: torch.Tensor,
                      bin_weights: torch.Tensor) -> torch.Tensor:
    """Rebalanced cross-entropy: logits [N,Q,r,r] against the soft-encoded truth ab [N,2,r,r]
    (Lab units), each pixel weighted by its true colour's rebalancing weight."""
    targets, nearest = soft_encode(true_ab, centres)
    log_probabilities = F.log_softmax(logits.float(), dim=1)
    per_pixel = -(targets * log_probabilities).sum(dim=1)
    return (per_pixel * bin_weights[nearest]).mean()


def head_sized(ab: torch.Tensor, logits_size: tuple[int, int]) -> torch.Tensor:
    """The truth ab [N,2,R,R] area-averaged to the head's size."""
    if tuple(ab.shape[-2:]) == tuple(logits_size):
        return ab
    return F.adaptive_avg_pool2d(ab, logits_size)


class DistributionColouriser(nn.Module):
    """L/50 - 1 [N,1,R,R] -> a*b* / 110 [N,2,R,R]: the generator without hints, decoded by the
    annealed mean at `temperature` and upsampled to the input's size. Shaped like a
    regression generator, so validation and sample grids take either."""

    def __init__(self, generator: nn.Module, temperature: float = DEFAULT_TEMPERATURE):
        super().__init__()
        self.generator = generator
        self.temperature = temperature

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """The annealed mean of the generator's logits as a*b* / 110, upsampled to the input's size."""
        logits = self.generator(lightness)
        ab = annealed_mean(logits.float(), self.generator.bin_centres, self.temperature)
        ab = F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)
        return ab / AB_SCALE


def automatic_colouriser(generator: nn.Module) -> nn.Module:
    """L/50 - 1 -> a*b* / 110 at the input's size, for either head: a regression generator is
    that already; a distribution head is wrapped in a `DistributionColouriser`."""
    return DistributionColouriser(generator) if hasattr(generator, "bin_centres") else generator
