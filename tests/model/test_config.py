"""Per-architecture defaults live in one place, and old checkpoints' retired fields still load."""

import pytest

from retint.errors import CheckpointError
from retint.model.cli import build_config
from retint.model.config import DEFAULT_BASE_CHANNELS, GeneratorConfig, generator_config_from_dict


def test_each_architecture_has_its_documented_width_unless_given():
    assert build_config(("data",), {"arch": "unet256"}).generator.base_channels == DEFAULT_BASE_CHANNELS["unet256"] == 64
    assert build_config(("data",), {}).generator.base_channels == DEFAULT_BASE_CHANNELS["effnet-unet"] == 32
    assert build_config(("data",), {"arch": "unet256", "base_channels": 16}).generator.base_channels == 16
    assert GeneratorConfig.for_arch("effnet-unet", 8).base_channels == 8


def test_retired_scale_fields_load_at_their_only_value_and_refuse_others():
    saved = {"arch": "effnet-unet", "base_channels": 32, "pretrained_encoder": False, "render_size": 256,
             "l_scale": 50.0, "ab_scale": 110.0}
    assert generator_config_from_dict(saved) == GeneratorConfig(pretrained_encoder=False)
    with pytest.raises(CheckpointError, match="ab_scale"):
        generator_config_from_dict(saved | {"ab_scale": 128.0})


def test_the_readmes_load_generator_is_importable_from_retint_model(tiny_checkpoints):
    from retint.model import load_generator

    generator = load_generator(tiny_checkpoints["effnet-unet"])
    assert not generator.training
