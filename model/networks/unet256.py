"""`unet256`: the generator of pix2pix (Isola et al. 2017), for L -> ab.

Eight stride-2 down blocks (Conv4x4 -> BatchNorm -> LeakyReLU 0.2; none on the
first, no norm on the innermost), seven up blocks (ReLU -> ConvTranspose4x4 ->
BatchNorm, dropout 0.5 in the three that follow the bottleneck, as in the
reference `UnetGenerator(num_downs=8)`) concatenating the mirror skip, and a
last ReLU -> ConvTranspose -> tanh. As in the reference, the next block's
in-place LeakyReLU also rectifies the skip it shares its input with. With ngf 64 this has about 54.4M
parameters. Written as flat lists instead of the reference's recursion, with
the same layers in the same order.
"""

from __future__ import annotations

import torch
from torch import nn

from retint.model.networks.init import init_pix2pix_weights

DEPTH = 8
DROPOUT_UP_BLOCKS = 3


class UNet256(nn.Module):
    def __init__(self, base_channels: int = 64, in_channels: int = 1, out_channels: int = 2):
        super().__init__()
        ngf = base_channels
        # Channel widths after each down block: ngf, 2ngf, 4ngf, 8ngf x 5.
        widths = [ngf * min(2**level, 8) for level in range(DEPTH)]

        self.down = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(widths):
            layers: list[nn.Module] = []
            if level > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=False))
            if 0 < level < DEPTH - 1:
                layers.append(nn.BatchNorm2d(width))
            self.down.append(nn.Sequential(*layers))
            previous = width

        # Up block k undoes down level DEPTH-1-k; after the innermost, every
        # up block's input is its own output concatenated with the skip.
        self.up = nn.ModuleList()
        for step in range(DEPTH - 1):
            target_level = DEPTH - 2 - step
            out_width = widths[target_level]
            in_width = widths[DEPTH - 1] if step == 0 else widths[target_level + 1] * 2
            layers = [
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(in_width, out_width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out_width),
            ]
            if 1 <= step <= DROPOUT_UP_BLOCKS:
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.last = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(widths[0] * 2, out_channels, 4, 2, 1),
            nn.Tanh(),
        )
        init_pix2pix_weights(self)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """L/50 - 1 [N,1,R,R] -> a*b* / 110 [N,2,R,R] (tanh), each up block joined to its mirror skip."""
        skips = []
        x = lightness
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck has no skip of its own
        for block in self.up:
            x = torch.cat((block(x), skips.pop()), dim=1)
        return self.last(x)
