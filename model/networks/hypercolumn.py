"""Colour model v2's generator: a frozen EfficientNet-Lite and a hypercolumn colour head.

Larsson, Maire and Shakhnarovich ("Learning Representations for Automatic
Colorization", ECCV 2016) predict each pixel's colour distribution from its
hypercolumn, the features of a pretrained classifier at several strides
sampled at that pixel. Here:

- the encoder is `hinted_lite` (Lite0 or Lite2, ImageNet weights, kept
  frozen: its skips at strides 4, 8, 16, 32 are what a feature cache stores);
- context: a 3x3 convolution over the stride-32 skip (where the global hint
  is added), upsampled and joined with the stride-16 skip, and two more 3x3
  convolutions there (one dilated): what the region around a pixel is;
- each scale is projected by a 1x1 convolution, upsampled to stride 4 and
  concatenated: the hypercolumn;
- a per-pixel MLP (1x1 convolutions) gives logits over the a*b* bins, to
  which the reference's log-prior is added (as in effnet_distribution).

Because the MLP is per pixel, training evaluates it only at a few random
points of each crop (`decode_at`, Larsson's sparse training), and inference
evaluates it densely at stride 4 (`decode`) with the very same weights: the
two read the maps at the same positions (bilinear, align_corners=False).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from retint.model.networks.effnet_distribution import (
    DistributionGenerator,
    hinted_input,
    hinted_lite,
    logits_layer,
    reference_prior,
)
from retint.model.networks.efficientnet_lite import LITE0, lite_variant

# The head reads the skips at strides 4, 8, 16, 32 (the stride-2 one is not used).
FIRST_TAP = 1
# Logits are predicted at render size / this.
HYPERCOLUMN_HEAD_STRIDE = 4


def _conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class HypercolumnColourNet(DistributionGenerator):
    head_stride = HYPERCOLUMN_HEAD_STRIDE
    # The deploy graph brings the stride-4 colours to the render size guided by the lightness
    # (export/deploy.py, guided_upsample).
    guided_upsampling = True

    def __init__(self, bin_centres: torch.Tensor, width: int = 32, pretrained: bool = True,
                 global_hint: bool = True, encoder: str = LITE0.name):
        super().__init__()
        bins = int(bin_centres.shape[0])
        variant = lite_variant(encoder)
        self.encoder = hinted_lite(pretrained, variant)
        self.taps = variant.skip_blocks[FIRST_TAP:]
        s4, s8, s16, s32 = variant.skip_channels[FIRST_TAP:]
        context = 4 * width
        self.context32 = _conv_bn_relu(s32, context)
        self.global_hint = nn.Linear(bins + 1, context) if global_hint else None
        self.context16 = nn.Sequential(_conv_bn_relu(context + s16, context),
                                       _conv_bn_relu(context, context, dilation=2))
        self.project4 = nn.Sequential(nn.Conv2d(s4, width, 1), nn.ReLU(inplace=True))
        self.project8 = nn.Sequential(nn.Conv2d(s8, 2 * width, 1), nn.ReLU(inplace=True))
        self.project16 = nn.Sequential(nn.Conv2d(s16, 3 * width, 1), nn.ReLU(inplace=True))
        column = width + 2 * width + 3 * width + context
        self.mlp = nn.Sequential(nn.Conv2d(column, 8 * width, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(8 * width, 4 * width, 1), nn.ReLU(inplace=True),
                                 logits_layer(4 * width, bins))
        self.register_bins(bin_centres)

    def encode(self, lightness: torch.Tensor, hint_ab: torch.Tensor | None = None,
               hint_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The encoder's skips at strides 4, 8, 16, 32 (what a feature cache stores)."""
        return self.encoder.features(hinted_input(lightness, hint_ab, hint_mask), taps=self.taps)

    def _maps(self, skips: list[torch.Tensor], global_hint: torch.Tensor | None) -> list[torch.Tensor]:
        """The hypercolumn's parts at their own strides (4, 8, 16, 16)."""
        s4, s8, s16, s32 = skips
        context = self.context32(s32)
        if self.global_hint is not None:
            if global_hint is None:
                global_hint = s32.new_zeros(s32.shape[0], self.bins + 1)
            context = context + self.global_hint(global_hint.to(context.dtype))[:, :, None, None]
        context = F.interpolate(context, size=s16.shape[-2:], mode="bilinear", align_corners=False)
        context = self.context16(torch.cat((context, s16), dim=1))
        return [self.project4(s4), self.project8(s8), self.project16(s16), context]

    def _logits(self, column: torch.Tensor, global_hint: torch.Tensor | None) -> torch.Tensor:
        logits = self.mlp(column)
        if self.global_hint is not None and global_hint is not None:
            logits = logits + reference_prior(global_hint.to(logits.dtype), self.bins)[:, :, None, None]
        return logits

    def decode(self, skips: list[torch.Tensor], global_hint: torch.Tensor | None = None) -> torch.Tensor:
        """The skips (`encode`) and the global hint [N,Q+1] -> logits at stride 4 [N,Q,R/4,R/4]."""
        maps = self._maps(skips, global_hint)
        size = maps[0].shape[-2:]
        column = torch.cat([maps[0]] + [F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                                        for m in maps[1:]], dim=1)
        return self._logits(column, global_hint)

    def decode_at(self, skips: list[torch.Tensor], points: torch.Tensor,
                  global_hint: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N,Q,K,1] at K points per image, points [N,K,2] as (x, y) in [-1, 1]
        (grid_sample's convention, align_corners=False, edges clamped as interpolate does): training's sparse evaluation."""
        grid = points[:, :, None, :].to(skips[0].dtype)
        column = torch.cat([F.grid_sample(m, grid.to(m.dtype), mode="bilinear",
                                          padding_mode="border", align_corners=False)
                            for m in self._maps(skips, global_hint)], dim=1)
        return self._logits(column, global_hint)
