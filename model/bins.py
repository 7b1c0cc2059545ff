"""The a*b* bins of the distribution head (Zhang, Isola and Efros 2016).

The colour plane is cut into cells of `BIN_STEP` CIELAB units; a cell is a
bin when some colour inside it is displayable in sRGB at some lightness (the
in-gamut cells). The generator predicts, per pixel, logits over these bins;
this module owns everything that speaks in bins:

- `gamut_bin_centres`: the bins themselves (computed, not downloaded);
- `soft_encode`: a true a*b* as weights on its nearest bins (Gaussian);
- `rebalancing_weights`: Zhang's class rebalancing from a colour prior, and
  `chroma_rebalancing_weights` from its chroma alone (`rebalancing_weights_by`
  picks the one a config names);
- `annealed_mean`: the decoder, softmax(logits / T) then the expectation
  over bin centres (T = 1 is the mean, T -> 0 approaches the mode);
- `decode_ab`: the decoder a checkpoint names (`GeneratorConfig.decode`): the
  annealed mean, or the same with each bin weighted by the probability of
  its colour family (`family_favoured_mean`), then its chroma gain
  (`GeneratorConfig.chroma_gain`, `regained_chroma`; `decoding_of` reads both);
- `ab_histogram`: a normalised histogram over the bins (the global hint).

All torch functions are batched over [N, C, H, W] and traced into the
exported graph where they decode.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from retint.model.colour import D65_WHITE, RGB_FROM_XYZ
from retint.model.config import (ANNEALED_MEAN, DECODES, DEFAULT_TEMPERATURE, FAMILY_FAVOURED, REBALANCE_BY,
                                 REBALANCE_BY_BIN, REBALANCE_BY_CHROMA)

BIN_STEP = 10.0
# The a*b* plane searched for in-gamut cells.
AB_LIMIT = 110.0
# Zhang et al.: the five nearest bins, Gaussian sigma 5, for soft targets.
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
# The prior is smoothed with this Gaussian (in ab units) before rebalancing.
PRIOR_SMOOTHING_SIGMA = 5.0
# family-favoured: a coloured bin's family is the coloured bins within this many degrees of its hue;
# the bins under this chroma are one family, grey.
FAMILY_WINDOW_DEGREES = 45.0
FAMILY_GREY_CHROMA = 8.0
# The variance of a colour spread evenly over one bin's width, in one channel (step^2 / 12).
WITHIN_BIN_VARIANCE = BIN_STEP**2 / 12.0


def _in_srgb_gamut(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where Lab (L, a, b) maps into linear sRGB [0, 1] (no clipping)."""
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0

    def inverse(f: np.ndarray) -> np.ndarray:
        return np.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787)

    xyz = np.stack([inverse(fx) * D65_WHITE[0], inverse(fy), inverse(fz) * D65_WHITE[2]], axis=-1)
    linear = xyz @ np.asarray(RGB_FROM_XYZ).T
    return ((linear >= 0.0) & (linear <= 1.0)).all(axis=-1) & (fz >= 0.0)


def gamut_bin_centres(step: float = BIN_STEP) -> np.ndarray:
    """Centres [Q, 2] (a, b) of the cells of `step` units that hold an sRGB colour.

    A cell counts when any of a 5 x 5 grid of points inside it is in gamut at
    any of 101 lightness levels: 10-unit cells give 262 bins (Zhang et al. kept the
    313 that occur in ImageNet, whose grid reached outside the sRGB gamut).
    """
    grid = np.arange(-AB_LIMIT, AB_LIMIT + step / 2, step)
    lightness = np.linspace(0.0, 100.0, 101)
    offsets = np.linspace(-step / 2, step / 2, 5)
    centres = []
    for a in grid:
        for b in grid:
            pa, pb, pl = np.meshgrid(a + offsets, b + offsets, lightness, indexing="ij")
            if _in_srgb_gamut(pl, pa, pb).any():
                centres.append((a, b))
    return np.asarray(centres, dtype=np.float32)


def pairwise_squared_distance(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """ab [N,2,H,W], centres [Q,2] -> squared distances [N,Q,H,W]."""
    a, b = ab[:, :1], ab[:, 1:]
    return (a - centres[:, 0].view(1, -1, 1, 1)) ** 2 + (b - centres[:, 1].view(1, -1, 1, 1)) ** 2


def soft_encode(ab: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """True ab [N,2,H,W] -> (soft targets [N,Q,H,W] summing to 1, nearest bin [N,H,W])."""
    distances = pairwise_squared_distance(ab, centres)
    nearest, index = distances.topk(SOFT_NEIGHBOURS, dim=1, largest=False)
    weights = torch.softmax(-nearest / (2 * SOFT_SIGMA**2), dim=1)
    targets = torch.zeros_like(distances).scatter_(1, index, weights)
    return targets, index[:, 0]


def nearest_bin(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """ab [N,2,H,W] -> index of the nearest bin [N,H,W]."""
    return pairwise_squared_distance(ab, centres).argmin(dim=1)


def ab_histogram(ab: torch.Tensor, centres: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised histogram [N,Q] of the nearest bins of ab [N,2,H,W] (over `mask` [N,1,H,W] if given)."""
    index = nearest_bin(ab, centres)
    counts = F.one_hot(index, centres.shape[0]).to(ab.dtype)  # [N,H,W,Q]
    if mask is not None:
        counts = counts * mask[:, 0, :, :, None]
    totals = counts.sum(dim=(1, 2))
    return totals / totals.sum(dim=1, keepdim=True).clamp(min=1e-6)


def _prior_and_smoothed(prior: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the prior normalised, the same smoothed by a Gaussian of PRIOR_SMOOTHING_SIGMA over the bin
    centres and normalised), float64."""
    prior = np.asarray(prior, dtype=np.float64)
    prior = prior / max(prior.sum(), 1e-12)
    squared = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-squared / (2 * PRIOR_SMOOTHING_SIGMA**2))
    smoothed = kernel @ prior
    return prior, smoothed / smoothed.sum()


def _rebalanced(evened: np.ndarray, smoothed: np.ndarray, mix: float) -> np.ndarray:
    """w ∝ 1 / ((1 - mix) * evened + mix / Q), normalised so that the smoothed prior's
    expectation of w is 1; float32."""
    weights = 1.0 / ((1.0 - mix) * evened + mix / len(evened))
    weights = weights / (smoothed * weights).sum()
    return weights.astype(np.float32)


def rebalancing_weights(prior: np.ndarray, centres: np.ndarray, mix: float) -> np.ndarray:
    """Zhang's class rebalancing: w ∝ 1 / ((1 - mix) * smoothed prior + mix / Q),
    normalised so that the prior's expectation of w is 1. `mix` 1 gives equal
    weights (no rebalancing); Zhang used 0.5."""
    _, smoothed = _prior_and_smoothed(prior, centres)
    return _rebalanced(smoothed, smoothed, mix)


def chroma_rebalancing_weights(prior: np.ndarray, centres: np.ndarray, mix: float) -> np.ndarray:
    """Rebalancing by chroma alone: as `rebalancing_weights`, from the prior averaged over each
    chroma ring (the bins whose chroma rounds to one multiple of BIN_STEP), normalised so that the
    (smoothed) prior's expectation of w is 1. Saturated colours of every hue gain alike, so the
    balance between hues stays the prior's: binwise rebalancing lifts the rarer greens over the
    common sand and skin, which turned warm pixels green (MODEL_CARD.md)."""
    prior, smoothed = _prior_and_smoothed(prior, centres)
    _, ring = np.unique(np.rint(np.hypot(centres[:, 0], centres[:, 1]) / BIN_STEP), return_inverse=True)
    ring_prior = (np.bincount(ring, weights=prior) / np.bincount(ring))[ring]
    return _rebalanced(ring_prior, smoothed, mix)


def rebalancing_weights_by(prior: np.ndarray, centres: np.ndarray, mix: float, by: str) -> np.ndarray:
    """The rebalancing weights `by` names (one of REBALANCE_BY): each bin's (`rebalancing_weights`)
    or each chroma ring's (`chroma_rebalancing_weights`)."""
    if by == REBALANCE_BY_BIN:
        return rebalancing_weights(prior, centres, mix)
    if by == REBALANCE_BY_CHROMA:
        return chroma_rebalancing_weights(prior, centres, mix)
    raise ValueError(f"unknown rebalancing {by!r} (one of {', '.join(REBALANCE_BY)})")


def distribution_spreads(logits: torch.Tensor, centres: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """How far the colour may be from the shown ab [N,2,H,W], by the model's own distribution:
    [N,4,H,W] = a_down, a_up, b_down, b_up (Lab units), the root mean square of the
    distribution's distance below and above ab in each channel (softmax(logits), T = 1),
    each floored by the spread of a colour uniform within one bin.

    These are the interval's half-widths at lambda 1 (`interval_bounds`); conformal risk
    control chooses lambda on held-out photos, so only their ranking across pixels matters."""
    probabilities = torch.softmax(logits, dim=1)
    spreads = []
    for channel in (0, 1):
        offsets = centres[:, channel].view(1, -1, 1, 1) - ab[:, channel:channel + 1]
        below = (probabilities * torch.clamp(offsets, max=0.0) ** 2).sum(dim=1, keepdim=True)
        above = (probabilities * torch.clamp(offsets, min=0.0) ** 2).sum(dim=1, keepdim=True)
        spreads += [torch.sqrt(below + WITHIN_BIN_VARIANCE), torch.sqrt(above + WITHIN_BIN_VARIANCE)]
    return torch.cat(spreads, dim=1)


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor,
                  temperature: torch.Tensor | float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """logits [N,Q,H,W] -> ab [N,2,H,W] in Lab units: E[centre] under softmax(logits / T).

    `temperature` may be a tensor (an input of the exported graph), so T is a
    run-time setting rather than a constant baked in at export.
    """
    probabilities = torch.softmax(logits / temperature, dim=1)
    a = (probabilities * centres[:, 0].view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
    b = (probabilities * centres[:, 1].view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
    return torch.cat((a, b), dim=1)


def colour_families_of_bins(centres: torch.Tensor) -> torch.Tensor:
    """[Q,Q] float: 1 where bins q and r are of one colour family (both of chroma >= 8 with hues
    within 45 degrees, or both under chroma 8), else 0."""
    a, b = centres[:, 0].double(), centres[:, 1].double()
    coloured = torch.hypot(a, b) >= FAMILY_GREY_CHROMA
    hue = torch.rad2deg(torch.atan2(b, a))
    difference = (hue[:, None] - hue[None, :]).abs() % 360.0
    difference = torch.minimum(difference, 360.0 - difference)
    same_hue = (difference <= FAMILY_WINDOW_DEGREES) & coloured[:, None] & coloured[None, :]
    both_grey = ~coloured[:, None] & ~coloured[None, :]
    return (same_hue | both_grey).to(centres.dtype)


def family_favoured_mean(logits: torch.Tensor, centres: torch.Tensor, families: torch.Tensor,
                         temperature: torch.Tensor | float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """logits [N,Q,H,W] -> ab [N,2,H,W]: the expectation over bin centres of softmax(logits / T)
    with each bin's probability multiplied by its colour family's (`families`, from
    `colour_families_of_bins`). Where the distribution is split between two families (sand or
    grass), the annealed mean averages them into an olive neither is; this leans to the
    likelier family, and where one family holds nearly all the mass it changes little."""
    probabilities = torch.softmax(logits / temperature, dim=1)
    # The family sums as a 1x1 convolution over the bins: the engines run it in NCHW as it
    # stands, where a matmul over [N,Q,HW] cost OpenVINO two transposes of the whole
    # distribution (MODEL_CARD.md, where the decode's time goes).
    family_mass = F.conv2d(probabilities, families.to(probabilities.dtype)[:, :, None, None])
    weighted = probabilities * family_mass
    # One more 1x1 convolution gives the weighted a*, b* and their total together; dividing the
    # two sums replaces normalising every bin.
    sums = torch.cat((centres.t(), torch.ones_like(centres[:, :1]).t()), dim=0).to(weighted.dtype)
    ab_and_total = F.conv2d(weighted, sums[:, :, None, None])
    return ab_and_total[:, :2] / ab_and_total[:, 2:].clamp(min=1e-12)


class Decoding(NamedTuple):
    """How a distribution generator's checkpoint says its bins are read (`decoding_of`)."""

    decode: str  # one of DECODES
    families: torch.Tensor | None  # colour_families_of_bins(centres) for family-favoured, else None
    chroma_gain: float  # GeneratorConfig.chroma_gain
    temperature: float  # GeneratorConfig.temperature: the release's default


def release_temperature(generator: torch.nn.Module) -> float:
    """The annealed mean's default temperature a generator's checkpoint names
    (`GeneratorConfig.temperature`; DEFAULT_TEMPERATURE for one built without a config)."""
    return float(getattr(getattr(generator, "retint_config", None), "temperature", DEFAULT_TEMPERATURE))


def decoding_of(generator: torch.nn.Module) -> Decoding:
    """The decode its checkpoint names (`GeneratorConfig.decode`; the annealed mean for one built
    without a config), the colour families that decode needs, its chroma gain (1 without one) and
    its default temperature."""
    config = getattr(generator, "retint_config", None)
    decode = getattr(config, "decode", ANNEALED_MEAN)
    centres = generator.bin_centres.detach().float()
    return Decoding(decode, colour_families_of_bins(centres) if decode == FAMILY_FAVOURED else None,
                    float(getattr(config, "chroma_gain", 1.0)), release_temperature(generator))


def decode_ab(logits: torch.Tensor, centres: torch.Tensor, decode: str, families: torch.Tensor | None,
              temperature: torch.Tensor | float = DEFAULT_TEMPERATURE, chroma_gain: float = 1.0) -> torch.Tensor:
    """The a*b* [N,2,H,W] a checkpoint's `decode` (one of DECODES) reads from its logits, with
    `chroma_gain` applied (`regained_chroma`); `families` is `colour_families_of_bins(centres)`
    (needed by family-favoured only)."""
    if decode == ANNEALED_MEAN:
        ab = annealed_mean(logits, centres, temperature)
    elif decode == FAMILY_FAVOURED and families is not None:
        ab = family_favoured_mean(logits, centres, families, temperature)
    else:
        raise ValueError(f"unknown decode {decode!r} (one of {', '.join(DECODES)}), or no colour families given")
    # A gain of 1 leaves the graph as it was (releases before the gain export as they did).
    return ab if chroma_gain == 1.0 else regained_chroma(ab, chroma_gain)


def regained_chroma(ab: torch.Tensor, gain: float) -> torch.Tensor:
    """ab [N,2,H,W] with each colour's chroma c beyond the grey family's (FAMILY_GREY_CHROMA)
    stretched to FAMILY_GREY_CHROMA + gain * (c - FAMILY_GREY_CHROMA), its hue kept; chroma under
    FAMILY_GREY_CHROMA unchanged. A mean over bins is paler than the colours it averages; this gives
    back chroma to what the decode names a colour, and leaves its near-greys alone, where a plain
    gain would push a faint olive over into green (MODEL_CARD.md)."""
    chroma = torch.sqrt((ab * ab).sum(dim=1, keepdim=True))
    excess = F.relu(chroma - FAMILY_GREY_CHROMA)
    # The clamp only keeps the division finite: where chroma is under the knee the excess is 0.
    return ab * (1.0 + (gain - 1.0) * excess / chroma.clamp(min=FAMILY_GREY_CHROMA))
