"""Networks: the generators (`unet256`, `effnet-unet` with a regression or a
distribution head) and the PatchGAN."""

from __future__ import annotations

from torch import nn

from retint.errors import InputError
from retint.model.config import GENERATOR_ARCHITECTURES, GeneratorConfig


def build_generator(config: GeneratorConfig) -> nn.Module:
    """A freshly initialised generator (ImageNet encoder weights where asked)."""
    if config.arch == "unet256":
        from retint.model.networks.unet256 import UNet256

        return UNet256(base_channels=config.base_channels)
    if config.head == "distribution":
        if config.arch != "effnet-unet":
            raise InputError("the distribution head is built on effnet-unet only")
        from retint.model.bins import gamut_bin_centres
        from retint.model.networks.effnet_distribution import EffNetDistributionUNet
        import torch

        centres = torch.from_numpy(gamut_bin_centres())
        if config.bin_count and config.bin_count != len(centres):
            # The checkpoint's own centres are loaded over these buffers.
            centres = torch.zeros(config.bin_count, 2)
        if config.decoder == "hypercolumn":
            from retint.model.networks.hypercolumn import HypercolumnColourNet

            return HypercolumnColourNet(centres, width=config.base_channels, pretrained=config.pretrained_encoder,
                                        global_hint=config.global_hint, encoder=config.encoder)
        return EffNetDistributionUNet(centres, decoder_width=config.base_channels,
                                      pretrained=config.pretrained_encoder, global_hint=config.global_hint)
    if config.arch == "effnet-unet":
        from retint.model.networks.effnet_unet import EffNetUNet

        return EffNetUNet(
            decoder_width=config.base_channels, pretrained=config.pretrained_encoder
        )
    raise InputError(
        f"unknown architecture {config.arch!r}; choose one of {', '.join(GENERATOR_ARCHITECTURES)}"
    )
