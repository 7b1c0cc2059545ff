"""`effnet-unet`: U-Net generator with an EfficientNet-Lite0 encoder, L -> ab.

The encoder takes the normalised lightness (L/50 - 1, in [-1, 1]: the same
range as the (x - 127) / 128 input the TensorFlow Lite weights were trained
on) through a one-channel stem whose filters are the sum of the ImageNet RGB
filters. The decoder climbs back from stride 32 with a skip at every stride
(16, 8, 4, 2: upsample x2, concatenate, two 3x3 conv-BN-ReLU), then to full
resolution where it sees the input lightness again, so chroma edges can
follow luminance edges. Widths are fixed multiples of `decoder_width`.
Inputs must have sides that are multiples of 32.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from retint.model.networks.efficientnet_lite import (
    SKIP_CHANNELS,
    EfficientNetLite0,
    pretrained_lite0,
)

# Decoder width at strides 16, 8, 4, 2 and 1, as multiples of decoder_width / 2.
DECODER_WIDTH_HALVES = (8, 4, 3, 2, 1)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class UpBlock(nn.Module):
    """Upsample x2 (bilinear), concatenate the skip, convolve."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, convs: int = 2):
        super().__init__()
        layers = _conv_bn_relu(in_channels + skip_channels, out_channels)
        for _ in range(convs - 1):
            layers += _conv_bn_relu(out_channels, out_channels)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """`x` upsampled to the skip's size, concatenated with it and convolved."""
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat((x, skip), dim=1))


def decoder_to_stride_two(decoder_width: int) -> tuple[list[UpBlock], list[int]]:
    """The up blocks from stride 32 to stride 2 (skips at 16, 8, 4, 2), and the decoder widths
    at strides 16, 8, 4, 2 and 1."""
    widths = [max(1, decoder_width * halves // 2) for halves in DECODER_WIDTH_HALVES]
    skips_top_down = SKIP_CHANNELS[-2::-1]  # 112, 40, 24, 16 at strides 16..2
    blocks = []
    previous = SKIP_CHANNELS[-1]
    for skip_channels, width in zip(skips_top_down, widths[:-1]):
        blocks.append(UpBlock(previous, skip_channels, width))
        previous = width
    return blocks, widths


class EffNetUNet(nn.Module):
    def __init__(self, decoder_width: int = 32, pretrained: bool = True, out_channels: int = 2):
        super().__init__()
        encoder = pretrained_lite0(in_channels=1) if pretrained else EfficientNetLite0(in_channels=1)
        # The classifier head is not part of the generator.
        del encoder._conv_head, encoder._bn1, encoder._fc
        self.encoder = encoder

        blocks, widths = decoder_to_stride_two(decoder_width)
        previous = widths[-2]
        # Full resolution: one conv is enough where the input L is the skip.
        blocks.append(UpBlock(previous, 1, widths[-1], convs=1))
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(widths[-1], out_channels, 3, padding=1)
        nn.init.normal_(self.head.weight, 0.0, 0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """L/50 - 1 [N,1,R,R] -> a*b* / 110 [N,2,R,R] (tanh); the input L is the last decoder skip."""
        skips = self.encoder.features(lightness)
        x = skips.pop()
        for block, skip in zip(self.decoder, [*reversed(skips), lightness]):
            x = block(x, skip)
        return torch.tanh(self.head(x))
