"""The 70x70 PatchGAN discriminator of pix2pix, on cat(L, ab).

Conv4x4 stride 2 (64, no norm) -> 128 -> 256 (norm, LeakyReLU 0.2) -> 512
stride 1 -> 1 logit per 70x70 receptive field. `norm="none"` drops the
BatchNorms: a WGAN-GP critic must not normalise across the batch, since the
gradient penalty is taken per sample.
"""

from __future__ import annotations

import torch
from torch import nn

from retint.model.networks.init import init_pix2pix_weights


class PatchGAN(nn.Module):
    def __init__(self, in_channels: int = 3, base_channels: int = 64, norm: str = "batch"):
        super().__init__()
        use_norm = norm == "batch"
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        previous = base_channels
        for level, stride in ((1, 2), (2, 2), (3, 1)):
            width = base_channels * min(2**level, 8)
            layers.append(nn.Conv2d(previous, width, 4, stride, 1, bias=not use_norm))
            if use_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            previous = width
        layers.append(nn.Conv2d(previous, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)
        init_pix2pix_weights(self)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """One logit (a score, as a WGAN-GP critic) per 70x70 patch of cat(L, ab)."""
        return self.body(torch.cat((lightness, ab), dim=1))
