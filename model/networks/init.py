"""The pix2pix weight initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for norms."""

from __future__ import annotations

from torch import nn


def init_pix2pix_weights(module: nn.Module) -> None:
    """Initialise `module`'s convolutions, linear layers and BatchNorms in place, as pix2pix does."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
