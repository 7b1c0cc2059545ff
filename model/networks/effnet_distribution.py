"""`effnet-unet` with a distribution head: L + hints -> logits over a*b* bins.

The encoder is the EfficientNet-Lite0 of `effnet_unet`, with a four-channel
stem: the normalised lightness, a sparse hint plane of a*b* (divided by 110)
and its mask (Zhang, Zhu et al. 2017). The hint filters start at zero, so
before training the stem answers a grey photo exactly as the ImageNet weights
do, and zero planes mean automatic colouring.

A global hint (a normalised a*b* histogram over the bins plus a flag saying
it is given) is mapped to the bottleneck's width and added to the stride-32
features, where every pixel sees it; zeros mean none. It also reaches the
logits directly, as a prior over the bins: `reference_prior` adds
REFERENCE_PRIOR_SCALE * log((1 - REFERENCE_PRIOR_FLOOR) * h + REFERENCE_PRIOR_FLOOR / Q)
to every pixel's logits, so the distribution a pixel would have is
reweighted towards the reference's colours (a posterior, with the histogram
as prior). The bottleneck path alone left a model trained on the CPU for 23
epochs blind to the hint (benchmarks/README.md, "Reference palette"); the
prior path works from the first step. Its strength is a constant, not a
weight, so checkpoints (and resumed runs) from before it load unchanged. A
flag of 0 makes the term exactly zero: automatic colouring is unchanged.

The decoder climbs from stride 32 to stride 2 (skips at 16, 8, 4, 2) and a
1x1 convolution gives logits over the bins there, at half the render size:
chroma is smooth, the 262 logits per pixel cost four times less than at full
size, and the compose upsamples the decoded a*b* to the photo's own size
anyway. The bin centres and the rebalancing weights are buffers, so the
checkpoint and the exported graph carry them.
"""

from __future__ import annotations

import torch
from torch import nn

from retint.model.networks.effnet_unet import decoder_to_stride_two
from retint.model.networks.efficientnet_lite import (
    LITE0,
    SKIP_CHANNELS,
    STEM_CHANNELS,
    EfficientNetLite,
    LiteVariant,
    TfSameConv2d,
    pretrained_lite,
)

HINT_CHANNELS = 3  # a*/110, b*/110, mask
# Logits are predicted at render size / this.
HEAD_STRIDE = 2
# The reference prior's share of a uniform distribution: a colour absent from the reference is
# made unlikely, never impossible (a reference photo shows only part of the archive's world).
REFERENCE_PRIOR_FLOOR = 0.1
# How strongly the prior reweights the logits (chosen on training photos, benchmarks/README.md).
REFERENCE_PRIOR_SCALE = 0.25


def hinted_lite(pretrained: bool = True, variant: LiteVariant = LITE0) -> EfficientNetLite:
    """An EfficientNet-Lite (Lite0 unless told) without its classifier, with the four-channel stem
    (L, hint a*b*, mask) whose hint filters start at zero."""
    encoder = (pretrained_lite(variant, in_channels=1) if pretrained
               else EfficientNetLite(in_channels=1, variant=variant))
    del encoder._conv_head, encoder._bn1, encoder._fc
    grey_stem = encoder._conv_stem.weight.detach()
    stem = TfSameConv2d(1 + HINT_CHANNELS, STEM_CHANNELS, 3, 2)
    with torch.no_grad():
        stem.weight.zero_()
        stem.weight[:, :1] = grey_stem
    encoder._conv_stem = stem
    return encoder


def hinted_input(lightness: torch.Tensor, hint_ab: torch.Tensor | None,
                 hint_mask: torch.Tensor | None) -> torch.Tensor:
    """The encoder's four input planes; missing hints are zeros."""
    batch, _, height, width = lightness.shape
    if hint_ab is None:
        hint_ab = lightness.new_zeros(batch, 2, height, width)
    if hint_mask is None:
        hint_mask = lightness.new_zeros(batch, 1, height, width)
    return torch.cat((lightness, hint_ab, hint_mask), dim=1)


def reference_prior(global_hint: torch.Tensor, bins: int) -> torch.Tensor:
    """global_hint [N,Q+1] -> the reference's log-prior over the bins [N,Q], times its scale; zero
    where the flag (the last entry) is 0."""
    histogram, given = global_hint[:, :-1], global_hint[:, -1:]
    smoothed = (1.0 - REFERENCE_PRIOR_FLOOR) * histogram + REFERENCE_PRIOR_FLOOR / bins
    return given * REFERENCE_PRIOR_SCALE * torch.log(smoothed)


def logits_layer(in_channels: int, bins: int) -> nn.Conv2d:
    """The 1x1 convolution to logits over the bins, started near zero (an even distribution)."""
    layer = nn.Conv2d(in_channels, bins, 1)
    nn.init.normal_(layer.weight, 0.0, 0.02)
    nn.init.zeros_(layer.bias)
    return layer


class DistributionGenerator(nn.Module):
    """What every distribution generator shares: its bins as buffers (the checkpoint and the
    exported graph carry them), and forward = decode(encode(...))."""

    head_stride: int

    def register_bins(self, bin_centres: torch.Tensor) -> None:
        """The bin centres [Q,2] and rebalancing weights (ones until training sets them)."""
        self.register_buffer("bin_centres", bin_centres.float().clone())
        self.register_buffer("bin_weights", torch.ones(int(bin_centres.shape[0])))

    @property
    def bins(self) -> int:
        """How many a*b* bins (Q) the head predicts over."""
        return int(self.bin_centres.shape[0])

    def forward(self, lightness: torch.Tensor, hint_ab: torch.Tensor | None = None,
                hint_mask: torch.Tensor | None = None,
                global_hint: torch.Tensor | None = None) -> torch.Tensor:
        """lightness [N,1,R,R] (L/50 - 1), hint_ab [N,2,R,R] (ab/110), hint_mask [N,1,R,R],
        global_hint [N,Q+1] -> logits [N,Q,R/s,R/s] at the head's stride s. Missing hints are zeros."""
        return self.decode(self.encode(lightness, hint_ab, hint_mask), global_hint)

    def encode(self, lightness: torch.Tensor, hint_ab: torch.Tensor | None = None,
               hint_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        raise NotImplementedError

    def decode(self, skips: list[torch.Tensor], global_hint: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class EffNetDistributionUNet(DistributionGenerator):
    head_stride = HEAD_STRIDE

    def __init__(self, bin_centres: torch.Tensor, decoder_width: int = 32, pretrained: bool = True,
                 global_hint: bool = True):
        super().__init__()
        bins = int(bin_centres.shape[0])
        self.encoder = hinted_lite(pretrained)

        self.global_hint = nn.Linear(bins + 1, SKIP_CHANNELS[-1]) if global_hint else None
        blocks, widths = decoder_to_stride_two(decoder_width)
        self.decoder = nn.ModuleList(blocks)
        self.head = logits_layer(widths[-2], bins)
        self.register_bins(bin_centres)

    def encode(self, lightness: torch.Tensor, hint_ab: torch.Tensor | None = None,
               hint_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The encoder's skips at strides 2, 4, 8, 16, 32 (what a feature cache stores)."""
        return self.encoder.features(hinted_input(lightness, hint_ab, hint_mask))

    def decode(self, skips: list[torch.Tensor], global_hint: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's skips (`encode`) and the global hint [N,Q+1] -> logits [N,Q,R/2,R/2]."""
        skips = list(skips)
        x = skips.pop()
        if self.global_hint is not None:
            if global_hint is None:
                global_hint = x.new_zeros(x.shape[0], self.bins + 1)
            x = x + self.global_hint(global_hint.to(x.dtype))[:, :, None, None]
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip)
        logits = self.head(x)
        if self.global_hint is not None:
            logits = logits + self.reference_prior(global_hint.to(logits.dtype))[:, :, None, None]
        return logits

    def reference_prior(self, global_hint: torch.Tensor) -> torch.Tensor:
        """global_hint [N,Q+1] -> the reference's scaled log-prior over the bins [N,Q]."""
        return reference_prior(global_hint, self.bins)
