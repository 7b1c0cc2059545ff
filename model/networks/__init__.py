"""Networks: the two generators (`unet256`, `effnet-unet`) and the PatchGAN."""

from __future__ import annotations

from torch import nn

from retint.errors import InputError
from retint.model.config import GENERATOR_ARCHITECTURES, GeneratorConfig


def build_generator(config: GeneratorConfig) -> nn.Module:
    """A freshly initialised generator (ImageNet encoder weights where asked)."""
    if config.arch == "unet256":
        from retint.model.networks.unet256 import UNet256

        return UNet256(base_channels=config.base_channels)
    if config.arch == "effnet-unet":
        from retint.model.networks.effnet_unet import EffNetUNet

        return EffNetUNet(
            decoder_width=config.base_channels, pretrained=config.pretrained_encoder
        )
    raise InputError(
        f"unknown architecture {config.arch!r}; choose one of {', '.join(GENERATOR_ARCHITECTURES)}"
    )
