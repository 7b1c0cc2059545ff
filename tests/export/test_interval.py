"""An artefact with an uncertainty head: export gates, the runtime API, muting, colorize-batch --uncertainty."""

import json

import cv2
import numpy as np
import pytest
import torch

from batchrun import batch
from imagemaker import grey_photo
from retint.errors import EngineError
from retint.runtime import load_engine
from retint.runtime.uncertainty import WIDE_INTERVAL, interval_width


# The regression model's interval head needs its own export (most of a minute on two cores): these
# run in the slow tier; a distribution's intervals (the default model's) stay in the fast one
# (tests/runtime/test_suggest.py).
SLOW_EXPORT = pytest.mark.slow


@pytest.fixture(scope="module")
def with_head(tiny_checkpoints, tmp_path_factory):
    """The tiny effnet-unet with a seeded head and a made-up calibration, exported with its gates."""
    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export
    from retint.model.checkpoint import save_checkpoint
    from retint.model.uncertainty import IntervalHead

    from retint.model.uncertainty import interval_pinball_loss

    # A head that has learned something: chroma errors are wide on bright pixels, narrow on dark ones.
    torch.manual_seed(3)
    head = IntervalHead(width=4)
    optimizer = torch.optim.Adam(head.parameters(), lr=2e-2)
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(8, 1, 32, 32)
    for step in range(150):
        lightness = ramp.flip(-1) if step % 2 else ramp
        ab = torch.randn(8, 2, 32, 32) * 10
        truth = ab + torch.randn(8, 2, 32, 32) * torch.where(lightness > 0, 40.0, 3.0)
        loss = interval_pinball_loss(ab, head(lightness, ab), truth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head.eval()
    payload = torch.load(tiny_checkpoints["effnet-unet"], weights_only=True)
    payload["uncertainty_head"] = head.state_dict()
    payload["uncertainty"] = {"alpha": 0.1, "lambda": 1.3, "head_width": 4, "calibration_photos": 20,
                              "calibration_sources": ["synthetic"]}
    folder = tmp_path_factory.mktemp("with-head")
    checkpoint = folder / "tiny-head.pth"
    save_checkpoint(checkpoint, payload)
    output = folder / "export"
    lines = []
    run_export(ExportConfig(checkpoint=checkpoint, output_dir=output, onnx_only=True), log=lines.append)
    return output / "tiny-head.onnx", head, lines


@SLOW_EXPORT
def test_export_gates_and_records_the_interval_stage(with_head):
    fused, _, lines = with_head
    interval = fused.with_name("tiny-head.interval.onnx")
    sidecar = json.loads(interval.with_name(interval.name + ".json").read_text())
    assert sidecar["kind"] == "interval" and sidecar["uncertainty"]["alpha"] == 0.1
    assert sidecar["parity"]["after-fp32-generator"]["p99_abs_lab"] <= 0.5
    assert sidecar["parity"]["after-fp16-generator"]["nonfinite"] == 0
    assert any("tiny-head.generator.fp16.onnx + tiny-head.interval.onnx" in line for line in lines)


@SLOW_EXPORT
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_colorize_with_uncertainty_matches_pytorch_and_leaves_plain_colour_unchanged(with_head, backend):
    from retint.export.deploy import GeneratorStage, LightnessStage
    from retint.model.checkpoint import load_generator
    from retint.model.uncertainty import interval_bounds

    fused, head, _ = with_head
    engine = load_engine(fused, backend=backend)
    assert engine.spec.uncertainty_alpha == 0.1 and not engine.spec.mute_uncertain
    gray = np.stack([grey_photo(96, 160, seed) for seed in (1, 2)])[:, None]
    plain = engine.colorize(gray)
    rgb, interval = engine.colorize(gray, with_uncertainty=True)
    assert np.array_equal(rgb, plain)
    assert interval.shape == (2, 96, 160, 4) and interval.dtype == np.float32
    assert (interval[..., 0] <= interval[..., 1]).all() and (interval[..., 2] <= interval[..., 3]).all()

    generator = GeneratorStage(load_generator(fused.parent.parent / "tiny-head.pth"))
    with torch.no_grad():
        lightness = LightnessStage(128)(torch.from_numpy(gray))
        small = interval_bounds(generator(lightness), head(lightness, generator(lightness)), 1.3)
        expected = torch.nn.functional.interpolate(small, size=(96, 160), mode="bilinear",
                                                   align_corners=False).permute(0, 2, 3, 1).numpy()
    tolerance = 0.05 if backend == "onnxruntime" else 3.0  # OpenVINO may run the generator in bf16
    assert np.abs(interval - expected).mean() < tolerance


@SLOW_EXPORT
def test_mute_uncertain_shrinks_chroma_where_the_interval_is_wide(with_head):
    fused, _, _ = with_head
    # Dark on the left, bright on the right: narrow and wide intervals for the head above.
    ramp = np.linspace(0, 255, 128)[None, :] * np.ones((128, 1))
    gray = np.clip(ramp + (grey_photo(128, 128, 4) - 128.0) * 0.2, 0, 255).astype(np.uint8)[None, None]
    plain, interval = load_engine(fused, backend="onnxruntime").colorize(gray, with_uncertainty=True)
    muted = load_engine(fused, backend="onnxruntime", mute_uncertain=True).colorize(gray)
    assert load_engine(fused, mute_uncertain=True).spec.mute_uncertain
    lab_plain = cv2.cvtColor(plain[0], cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_muted = cv2.cvtColor(muted[0], cv2.COLOR_RGB2LAB).astype(np.float32)
    chroma_plain = np.hypot(lab_plain[..., 1] - 128, lab_plain[..., 2] - 128)
    chroma_muted = np.hypot(lab_muted[..., 1] - 128, lab_muted[..., 2] - 128)
    wide = interval_width(interval, channels_last=True)[0] > 1.5 * WIDE_INTERVAL
    narrow = interval_width(interval, channels_last=True)[0] < 0.9 * WIDE_INTERVAL  # mute leaves these
    assert wide.any() and narrow.any()
    assert chroma_muted[wide].mean() < 0.7 * chroma_plain[wide].mean()
    assert np.abs(chroma_muted[narrow] - chroma_plain[narrow]).mean() < 1.5


def test_an_artefact_without_a_head_says_so(exported):
    fused = exported["effnet-unet"].artefacts[0]
    engine = load_engine(fused, backend="onnxruntime")
    assert engine.spec.uncertainty_alpha is None
    with pytest.raises(EngineError, match="no uncertainty head"):
        engine.colorize(np.zeros((32, 32), np.uint8), with_uncertainty=True)
    with pytest.raises(EngineError, match="no uncertainty head"):
        load_engine(fused, mute_uncertain=True)


@SLOW_EXPORT
def test_batch_uncertainty_writes_heat_maps_and_manifest_widths(with_head, tmp_path):
    fused, _, _ = with_head
    sources = tmp_path / "in"
    sources.mkdir()
    for name, seed in (("a.jpg", 1), ("a.png", 2), ("b.png", 3)):
        cv2.imwrite(str(sources / name), grey_photo(120, 90, seed))
    output = tmp_path / "out"
    result = batch(sources, "-o", output, "--engine", fused, "--uncertainty", "--no-progress")
    assert result.returncode == 0, result.stderr
    lines = {json.loads(line)["source"]: json.loads(line)
             for line in (output / "manifest.jsonl").read_text().splitlines() if '"source"' in line}
    maps = sorted(line["uncertainty"]["map"] for line in lines.values())
    # a.jpg and a.png both have the stem "a": one map keeps the output's whole name.
    assert maps == ["a.jpg.uncertainty.png", "a.uncertainty.png", "b.uncertainty.png"] or \
        maps == ["a.png.uncertainty.png", "a.uncertainty.png", "b.uncertainty.png"]
    for line in lines.values():
        heat = cv2.imread(str(output / line["uncertainty"]["map"]))
        assert heat.shape == (120, 90, 3)
        assert line["uncertainty"]["mean_width"] > 0 and 0 <= line["uncertainty"]["wide_fraction"] <= 1

    plain = batch(sources, "-o", tmp_path / "plain", "--engine", fused.with_name("nothing.onnx"), "--no-progress")
    assert plain.returncode == 2
    muted = batch(sources, "-o", tmp_path / "muted", "--engine", fused, "--mute-uncertain", "--no-progress")
    assert muted.returncode == 0, muted.stderr


def test_batch_uncertainty_without_a_head_is_one_clear_error(exported, tmp_path):
    fused = exported["effnet-unet"].artefacts[0]
    sources = tmp_path / "in"
    sources.mkdir()
    cv2.imwrite(str(sources / "a.png"), grey_photo(64, 64, 1))
    result = batch(sources, "-o", tmp_path / "out", "--engine", fused, "--uncertainty", "--no-progress")
    assert result.returncode == 2 and "no uncertainty head" in result.stderr
    assert not (tmp_path / "out" / "a.png").exists()


def test_batch_uncertainty_on_the_bundled_model_writes_heat_maps_and_widths(tmp_path):
    """The default model's intervals come from its distribution stage: no export needed (fast tier)."""
    sources = tmp_path / "in"
    sources.mkdir()
    for name, seed in (("a.png", 2), ("b.png", 3)):
        cv2.imwrite(str(sources / name), grey_photo(120, 90, seed))
    output = tmp_path / "out"
    result = batch(sources, "-o", output, "--uncertainty", "--no-progress")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines() if '"source"' in line]
    assert sorted(line["uncertainty"]["map"] for line in lines) == ["a.uncertainty.png", "b.uncertainty.png"]
    for line in lines:
        assert cv2.imread(str(output / line["uncertainty"]["map"])).shape == (120, 90, 3)
        assert line["uncertainty"]["mean_width"] > 0 and 0 <= line["uncertainty"]["wide_fraction"] <= 1
