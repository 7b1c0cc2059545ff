"""Colour model v2 on two cores: the feature cache, the hypercolumn head, its training and export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from retint.errors import InputError
from retint.model.bins import BIN_STEP
from retint.model.config import GeneratorConfig
from retint.model.feature_cache import FeatureCacheConfig, build_feature_cache, load_feature_cache, shard_name
from retint.model.head_training import HeadTrainConfig, HeadTrainer
from retint.model.networks import build_generator
from retint.model.networks.hypercolumn import HypercolumnColourNet


def _photos(folder: Path, count: int = 5) -> Path:
    """Seeded colour photos: smooth colour fields with a few hard-edged blocks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for index in range(count):
        base = cv2.resize(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8), (100, 80),
                          interpolation=cv2.INTER_CUBIC)
        for _ in range(3):
            y, x = rng.integers(0, 60), rng.integers(0, 80)
            base[y: y + 20, x: x + 20] = rng.integers(0, 256, 3)
        cv2.imwrite(str(folder / f"src{index % 2}-{index}.png"), base)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> tuple[Path, FeatureCacheConfig]:
    root = tmp_path_factory.mktemp("cache")
    config = FeatureCacheConfig(data=(str(_photos(root / "photos")),), holdout=("src1",), crop_size=64,
                                crops_per_image=3, shard_crops=4, degrade=0.5)
    build_feature_cache(config, root / "cache")
    return root / "cache", config


def test_decode_at_reads_the_dense_logits_at_their_own_pixels():
    torch.manual_seed(0)
    net = HypercolumnColourNet(torch.randn(30, 2) * 40, width=8, pretrained=False).eval()
    with torch.no_grad():
        skips = net.encode(torch.rand(2, 1, 64, 64) * 2 - 1)
        dense = net.decode(skips)
        side = dense.shape[-1]
        assert side == 64 // net.head_stride
        ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        points = torch.stack([2 * (xs + 0.5) / side - 1, 2 * (ys + 0.5) / side - 1], -1).reshape(1, -1, 2)
        sparse = net.decode_at(skips, points.repeat(2, 1, 1).float())
    assert torch.allclose(sparse[..., 0].reshape(dense.shape), dense, atol=1e-5)


def test_a_given_global_hint_moves_the_logits_and_an_absent_one_does_not():
    torch.manual_seed(1)
    net = HypercolumnColourNet(torch.randn(30, 2) * 40, width=8, pretrained=False).eval()
    lightness = torch.rand(1, 1, 64, 64) * 2 - 1
    histogram = torch.softmax(torch.randn(1, 30), dim=1)
    with torch.no_grad():
        automatic = net(lightness)
        absent = net(lightness, global_hint=torch.zeros(1, 31))
        given = net(lightness, global_hint=torch.cat((histogram, torch.ones(1, 1)), dim=1))
    assert torch.equal(automatic, absent)
    assert (given - automatic).abs().max() > 0.01


def test_the_cache_leaves_out_held_out_sources_and_unreadable_photos(tiny_cache):
    cache_dir, config = tiny_cache
    features, manifest = load_feature_cache(cache_dir)
    names = [Path(path).name for path, _ in manifest["photos"]]
    assert not any(name.startswith("src1") for name in names)
    assert "broken.jpg" in names
    assert manifest["crops"] == len(names) * config.crops_per_image
    assert len(features) == (len(names) - 1) * config.crops_per_image
    assert [tuple(skip.shape[1:]) for skip in features.skips] == [(24, 16, 16), (40, 8, 8), (112, 4, 4), (320, 2, 2)]
    assert features.ab.shape[1:] == (2, 32, 32) and features.ab.dtype == torch.float16
    assert features.ab.float().abs().max() > 5  # the photos' colours, not zeros


def test_a_killed_build_resumes_to_the_same_bytes_and_other_settings_are_refused(tiny_cache, tmp_path):
    cache_dir, config = tiny_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache_dir, copy)
    shutil.rmtree(copy / shard_name(1))
    (copy / f".tmp-{shard_name(2)}").mkdir()  # a shard being written when the build was killed
    build_feature_cache(config, copy)
    for name in ("s4.npy", "ab.npy", "ok.npy"):
        assert (copy / shard_name(1) / name).read_bytes() == (cache_dir / shard_name(1) / name).read_bytes()
    assert not list(copy.glob(".tmp-*"))
    from retint.errors import InputError

    with pytest.raises(InputError, match="other photos or settings"):
        build_feature_cache(FeatureCacheConfig(**{**config.__dict__, "crops_per_image": 5}), copy)
    shutil.rmtree(copy / shard_name(0))
    with pytest.raises(InputError, match="shards are missing"):
        load_feature_cache(copy)


def test_the_head_learns_resumes_and_leaves_a_checkpoint_that_rebuilds_the_generator(tiny_cache, tmp_path):
    cache_dir, _ = tiny_cache
    config = HeadTrainConfig(cache=str(cache_dir), render_size=64, decoder_width=8, epochs=3, batch_size=2,
                             lr=3e-3, points_per_crop=64)
    trainer = HeadTrainer(config, tmp_path / "run")
    encoder_before = {k: v.clone() for k, v in trainer.generator.encoder.state_dict().items()}
    first = trainer.run_epoch(0)
    from retint.model.checkpoint import load_checkpoint, load_generator

    resumed = HeadTrainer(config, tmp_path / "run", resume=True)
    assert resumed.start_epoch == 1
    history = resumed.fit()
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert history[-1]["loss"] < first["loss"]
    generator = load_generator(tmp_path / "run" / "last.pth")
    assert isinstance(generator, HypercolumnColourNet)
    for name, tensor in generator.encoder.state_dict().items():
        assert torch.equal(tensor, encoder_before[name]), f"the frozen encoder's {name} changed"
    payload = load_checkpoint(tmp_path / "run" / "last.pth")
    assert payload["generator_config"]["decoder"] == "hypercolumn"
    from retint.model.train import recorded_config

    assert recorded_config(payload).holdout == ("src1",) and recorded_config(payload).val_fraction == 0.0
    from retint.errors import InputError

    with pytest.raises(InputError, match="already holds a run"):
        HeadTrainer(config, tmp_path / "run")
    with pytest.raises(InputError, match="other settings"):
        HeadTrainer(HeadTrainConfig(**{**config.__dict__, "lr": 1e-2}), tmp_path / "run", resume=True)


def test_guided_upsampling_keeps_a_colour_inside_its_lightness_edge_and_flat_colour_flat():
    from retint.export.deploy import area_resize, guided_upsample

    lightness = torch.full((1, 1, 64, 64), -0.6)
    lightness[..., 37:] = 0.4  # a step edge between two cells of the 16 x 16 head grid
    truth = torch.zeros(1, 2, 64, 64)
    truth[:, 0, :, 37:] = 40.0  # red where it is light
    small = area_resize(truth, 16)
    bilinear = F.interpolate(small, size=(64, 64), mode="bilinear", align_corners=False)
    guided = guided_upsample(small, lightness)
    near_edge = slice(31, 43)
    assert (guided - truth)[..., near_edge].abs().mean() < 0.5 * (bilinear - truth)[..., near_edge].abs().mean()
    flat = torch.full((1, 2, 16, 16), 12.5)
    assert torch.allclose(guided_upsample(flat, lightness), torch.full((1, 2, 64, 64), 12.5), atol=1e-4)


@pytest.mark.slow
def test_a_hypercolumn_v2_exports_through_the_gates_and_colours_on_onnx_runtime(tmp_path):
    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export
    from retint.model.checkpoint import save_checkpoint
    from retint.model.config import config_to_dict
    from retint.runtime import load_engine

    torch.manual_seed(5)
    config = GeneratorConfig(arch="effnet-unet", base_channels=8, pretrained_encoder=False, render_size=64,
                             head="distribution", global_hint=True, decoder="hypercolumn")
    generator = build_generator(config)
    generator.train()
    with torch.no_grad():
        for _ in range(3):
            generator(torch.rand(4, 1, 64, 64) * 2 - 1)
    save_checkpoint(tmp_path / "hc.pth", {"generator_config": config_to_dict(config),
                                         "generator": generator.eval().state_dict(), "epoch": 0, "step": 0})
    run_export(ExportConfig(checkpoint=tmp_path / "hc.pth", output_dir=tmp_path / "out", onnx_only=True),
               log=lambda line: None)
    sidecar = json.loads((tmp_path / "out" / "hc.onnx.json").read_text())
    assert sidecar["colour_bins"]["head_stride"] == 4
    engine = load_engine(tmp_path / "out" / "hc.onnx", backend="onnxruntime")
    gray = np.random.default_rng(0).integers(0, 256, (1, 1, 90, 70), dtype=np.uint8)
    rgb = engine.colorize(gray)
    assert rgb.shape == (1, 90, 70, 3) and rgb.dtype == np.uint8


def test_a_lite2_cache_trains_a_head_whose_checkpoint_rebuilds_lite2(tmp_path):
    config = FeatureCacheConfig(data=(str(_photos(tmp_path / "photos", count=2)),), crop_size=64,
                                crops_per_image=2, shard_crops=4, encoder="efficientnet-lite2")
    manifest = build_feature_cache(config, tmp_path / "cache")
    assert manifest["config"]["encoder"] == "efficientnet-lite2"
    cached, _ = load_feature_cache(tmp_path / "cache")
    assert [skip.shape[1] for skip in cached.skips] == [24, 48, 120, 352]
    trainer = HeadTrainer(HeadTrainConfig(cache=str(tmp_path / "cache"), render_size=64, decoder_width=8,
                                          epochs=1, batch_size=2, points_per_crop=16), tmp_path / "run")
    trainer.fit()
    from retint.model.checkpoint import load_generator
    from retint.model.networks.efficientnet_lite import LITE2

    assert load_generator(tmp_path / "run" / "last.pth").encoder.variant is LITE2
    with pytest.raises(InputError, match="unknown encoder"):
        build_feature_cache(FeatureCacheConfig(**{**config.__dict__, "encoder": "resnet"}), tmp_path / "other")


def test_feature_noise_changes_what_the_head_sees_and_older_runs_resume_without_it(tiny_cache, tmp_path):
    cache_dir, _ = tiny_cache
    config = HeadTrainConfig(cache=str(cache_dir), render_size=64, decoder_width=8, epochs=2, batch_size=2,
                             points_per_crop=16)
    plain = HeadTrainer(config, tmp_path / "plain").run_epoch(0)["loss"]
    again = HeadTrainer(config, tmp_path / "again").run_epoch(0)["loss"]
    noisy = HeadTrainer(HeadTrainConfig(**{**config.__dict__, "feature_noise": 0.5}), tmp_path / "noisy").run_epoch(0)
    assert plain == again and noisy["loss"] != plain
    # A run saved before the field existed holds the default (no noise) and resumes.
    from retint.model.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(tmp_path / "plain" / "last.pth")
    for added_since in ("feature_noise", "rebalance_by", "tune_out"):
        del payload["head_config"][added_since]
    save_checkpoint(tmp_path / "plain" / "last.pth", payload)
    assert HeadTrainer(config, tmp_path / "plain", resume=True).start_epoch == 1


def test_a_tuned_out_source_is_left_out_of_training_and_named_in_the_record(tmp_path):
    """--tune-out drops exactly the crops of one source's photos from what the head trains on, and
    the checkpoint records it beside the held-out sources (so later tools treat it as unseen)."""
    config = FeatureCacheConfig(data=(str(_photos(tmp_path / "photos")),), crop_size=64, crops_per_image=3,
                                shard_crops=4, degrade=0.0)
    build_feature_cache(config, tmp_path / "cache")
    everything, manifest = load_feature_cache(tmp_path / "cache")
    without, _ = load_feature_cache(tmp_path / "cache", leave_out=("src1",))
    photos = [Path(path).name for path, _ in manifest["photos"]]
    # Crop i is of photo i % len(photos); the broken photo's crops are dropped from both loads.
    readable = [i for i in range(manifest["crops"]) if photos[i % len(photos)] != "broken.jpg"]
    kept = [row for row, i in enumerate(readable) if not photos[i % len(photos)].startswith("src1")]
    assert 0 < len(kept) < len(readable) and len(without) == len(kept)
    assert torch.equal(without.ab, everything.ab[kept])
    assert torch.equal(without.skips[0], everything.skips[0][kept])
    with pytest.raises(InputError, match="--tune-out src9"):
        load_feature_cache(tmp_path / "cache", leave_out=("src9",))
    with pytest.raises(InputError, match="nothing is left"):
        load_feature_cache(tmp_path / "cache", leave_out=("src", "broken"))

    head = HeadTrainConfig(cache=str(tmp_path / "cache"), render_size=64, decoder_width=8, epochs=1,
                           batch_size=2, points_per_crop=16, tune_out=("src1",))
    trainer = HeadTrainer(head, tmp_path / "run")
    assert len(trainer.features) == len(kept)
    trainer.fit()
    from retint.model.checkpoint import load_checkpoint
    from retint.model.train import recorded_config

    assert recorded_config(load_checkpoint(tmp_path / "run" / "last.pth")).holdout == ("src1",)
    assert HeadTrainer(head, tmp_path / "run", resume=True).start_epoch == 1
    with pytest.raises(InputError, match="tune_out"):
        HeadTrainer(HeadTrainConfig(**{**head.__dict__, "tune_out": ()}), tmp_path / "run", resume=True)


def test_rebalancing_by_chroma_gives_the_head_one_weight_per_chroma_ring(tiny_cache, tmp_path):
    cache_dir, _ = tiny_cache
    config = HeadTrainConfig(cache=str(cache_dir), render_size=64, decoder_width=8, epochs=1, batch_size=2,
                             points_per_crop=16, rebalance=0.9, rebalance_by="chroma")
    generator = HeadTrainer(config, tmp_path / "chroma").generator
    weights, centres = generator.bin_weights, generator.bin_centres
    binwise = HeadTrainer(HeadTrainConfig(**{**config.__dict__, "rebalance_by": "bin"}),
                          tmp_path / "bin").generator.bin_weights
    ring = torch.round(torch.hypot(centres[:, 0], centres[:, 1]) / BIN_STEP).long()
    spread_within_rings = max(float(weights[ring == r].max() - weights[ring == r].min()) for r in ring.unique())
    assert spread_within_rings < 1e-4 < float(weights.max() - weights.min())
    assert not torch.allclose(weights, binwise)


def test_the_generator_stage_applies_the_checkpoints_chroma_gain():
    """The stage the export traces reads its release's chroma gain: at the head's size its colours
    are the plain decode's with `regained_chroma` applied; a gain of 1 is the plain decode."""
    from dataclasses import replace

    from retint.export.deploy import GeneratorStage
    from retint.model.bins import regained_chroma

    torch.manual_seed(8)
    config = GeneratorConfig(arch="effnet-unet", base_channels=8, pretrained_encoder=False, render_size=64,
                             head="distribution", decoder="hypercolumn", decode="family-favoured")
    generator = build_generator(config).eval()
    generator.retint_config = config  # as load_generator attaches it
    generator.guided_upsampling = False  # compared at the head's own size
    lightness = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        plain = GeneratorStage(generator)(lightness)
        generator.retint_config = replace(config, chroma_gain=1.3)
        gained = GeneratorStage(generator)(lightness)
    assert plain.shape == (2, 2, 16, 16)
    assert torch.allclose(gained, regained_chroma(plain, 1.3), atol=1e-5)
    assert not torch.allclose(gained, plain)
