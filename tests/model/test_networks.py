import cv2
import numpy as np
import pytest
import torch
from skimage import data

from retint.model.config import GeneratorConfig
from retint.model.networks import build_generator
from retint.model.config import HYPERCOLUMN_ENCODERS
from retint.model.networks.efficientnet_lite import LITE0, LITE2, LITE_VARIANTS, pretrained_lite, pretrained_lite0
from retint.model.networks.patchgan import PatchGAN
from retint.model.networks.unet256 import UNet256


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_unet256_has_the_papers_size_and_shapes():
    generator = UNet256(base_channels=64).eval()
    assert abs(parameter_count(generator) / 1e6 - 54.4) < 0.05
    with torch.no_grad():
        for batch, size in ((1, 256), (3, 256), (1, 512)):
            out = generator(torch.rand(batch, 1, size, size) * 2 - 1)
            assert out.shape == (batch, 2, size, size)
            assert out.abs().max() <= 1.0


def test_unet256_has_dropout_in_three_up_blocks_and_eval_is_deterministic():
    generator = UNet256(base_channels=8)
    dropouts = [m for m in generator.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3
    generator.eval()
    x = torch.rand(2, 1, 256, 256)
    with torch.no_grad():
        assert torch.equal(generator(x), generator(x))


@pytest.mark.parametrize("shape", [(1, 1, 64, 64), (3, 1, 96, 160), (1, 1, 256, 256), (3, 1, 32, 288)])
def test_effnet_unet_shapes_at_multiples_of_32(shape):
    generator = build_generator(GeneratorConfig(arch="effnet-unet", base_channels=16,
                                                pretrained_encoder=False)).eval()
    with torch.no_grad():
        out = generator(torch.rand(*shape) * 2 - 1)
    assert out.shape == (shape[0], 2, shape[2], shape[3])


def imagenet_input(image: np.ndarray) -> torch.Tensor:
    # The TensorFlow Lite weights expect (x - 127) / 128 per channel.
    resized = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)
    return torch.from_numpy((resized - 127.0) / 128.0).permute(2, 0, 1)[None]


@pytest.mark.parametrize("variant", [LITE0, LITE2], ids=lambda variant: variant.name)
def test_pretrained_encoder_classifies_imagenet_images(variant):
    # strict=True loads every key of the package's state dict, so the stages are its own.
    classifier = pretrained_lite(variant).eval()
    with torch.no_grad():
        cat = int(classifier(imagenet_input(data.chelsea())).argmax())
        coffee = int(classifier(imagenet_input(data.coffee())).argmax())
    assert 281 <= cat <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee in (967, 968)  # espresso, cup


def test_lite_variants_are_the_encoders_the_config_names():
    assert tuple(LITE_VARIANTS) == HYPERCOLUMN_ENCODERS


@pytest.mark.parametrize("variant", [LITE0, LITE2], ids=lambda variant: variant.name)
def test_skips_are_each_stages_last_block_at_strides_2_to_32(variant):
    encoder = pretrained_lite(variant, in_channels=1).eval()
    with torch.no_grad():
        skips = encoder.features(torch.zeros(1, 1, 64, 96))
    assert [tuple(skip.shape[1:]) for skip in skips] == [
        (channels, 64 // stride, 96 // stride)
        for channels, stride in zip(variant.skip_channels, (2, 4, 8, 16, 32))]
    last_blocks = list(np.cumsum([stage[-1] for stage in variant.stages]) - 1)
    assert list(variant.skip_blocks) == [last_blocks[i] for i in (0, 1, 2, 4, 6)]


def test_hypercolumn_generator_reads_the_encoder_its_config_names():
    config = GeneratorConfig(arch="effnet-unet", base_channels=8, pretrained_encoder=False, head="distribution",
                             bin_count=0, global_hint=True, decoder="hypercolumn", encoder="efficientnet-lite2")
    generator = build_generator(config).eval()
    assert generator.encoder.variant is LITE2
    with torch.no_grad():
        logits = generator(torch.zeros(2, 1, 64, 64))
    assert logits.shape == (2, generator.bins, 16, 16)


def test_one_channel_stem_sums_the_rgb_filters():
    grey_stem = pretrained_lite0(in_channels=1)._conv_stem.weight
    rgb_stem = pretrained_lite0(in_channels=3)._conv_stem.weight
    assert torch.allclose(grey_stem, rgb_stem.sum(dim=1, keepdim=True))


def test_effnet_unet_uses_pretrained_encoder_weights():
    generator = build_generator(GeneratorConfig(arch="effnet-unet"))
    reference = pretrained_lite0(in_channels=1)
    assert torch.equal(generator.encoder._blocks[5]._depthwise_conv.weight,
                       reference._blocks[5]._depthwise_conv.weight)
    assert not hasattr(generator.encoder, "_fc")


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_patchgan_gives_a_30x30_map_at_256(norm):
    discriminator = PatchGAN(norm=norm)
    out = discriminator(torch.rand(2, 1, 256, 256), torch.rand(2, 2, 256, 256))
    assert out.shape == (2, 1, 30, 30)
    has_batchnorm = any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    assert has_batchnorm == (norm == "batch")
