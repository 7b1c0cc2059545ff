"""colorize-uncertainty end to end: a tiny generator trained with two held-out
sources gets a head calibrated on one and measured on the other (a few
seconds: the generator and head are tiny)."""

import json
from pathlib import Path
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from retint.model.checkpoint import load_checkpoint
from retint.model.cli import main as train_main
from retint.model.uncertainty_cli import main as uncertainty_main

from imagemaker import learnable_dataset


def _train_tiny(tmp_path_factory, name: str, *head_options) -> Path:
    """A tiny generator trained one epoch with img00-09 and img20-23 held out (two sources)."""
    data = learnable_dataset(tmp_path_factory.mktemp(f"data-{name}"), count=24, size=64)
    run_dir = tmp_path_factory.mktemp(f"runs-{name}") / "tiny"
    result = CliRunner().invoke(train_main, [str(a) for a in (
        data, "-o", run_dir, "--holdout", "img0", "--holdout", "img2", "--epochs", 1, "--pretrain-epochs", 1,
        "--render-size", 64, "--batch-size", 4, "--base-channels", 8, "--workers", 0, "--no-progress", "--seed", 5,
        *head_options)],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run_dir / "last.pth"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """img00-09 and img20-23 are held out (two sources); img10-19 train."""
    return _train_tiny(tmp_path_factory, "regression", "--head", "regression")


def test_head_is_calibrated_on_one_source_and_measured_on_another(trained, tmp_path):
    output = tmp_path / "with-head.pth"
    result = CliRunner().invoke(uncertainty_main, [str(a) for a in (
        trained, "-o", output, "--calibrate-on", "img0", "--test-on", "img2", "--alpha", 0.2,
        "--report-alphas", "0.2", "--epochs", 1, "--crops-per-image", 1)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "alpha 0.2: lambda" in result.output and "test coverage" in result.output

    report = json.loads((tmp_path / "with-head.pth.json").read_text())
    uncertainty = report["uncertainty"]
    assert uncertainty["calibration_sources"] == ["img0"] and uncertainty["test_sources"] == ["img2"]
    assert uncertainty["training_photos"] == 10
    (row,) = report["alphas"]
    assert row["alpha"] == 0.2 and row["lambda"] > 0
    assert 0.0 <= row["test"]["coverage"] <= 1.0 and row["test"]["mean_width"] > 0

    payload = load_checkpoint(output)
    assert payload["uncertainty"]["alpha"] == 0.2
    assert payload["uncertainty_head"] and all(torch.isfinite(t).all() for t in payload["uncertainty_head"].values())
    # The generator is frozen: the released weights are the trained ones.
    source = load_checkpoint(trained)["generator"]
    assert all(torch.equal(payload["generator"][name].float(), source[name].float()) for name in source)


def test_report_alphas_too_small_for_the_calibration_photos_are_left_out_with_a_note(trained, tmp_path):
    """Issue 29: the default --report-alphas (0.05, 0.1, 0.2) on 4 calibration photos ran into a
    refusal of alpha 0.05 that the user never asked for; now 0.05 and 0.1 are left out, saying so."""
    output = tmp_path / "with-head.pth"
    process = subprocess.run([sys.executable, "-m", "retint.model.uncertainty_cli", str(trained), "-o", str(output),
                              "--calibrate-on", "img2", "--alpha", "0.2", "--epochs", "1", "--crops-per-image", "0"],
                             capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    note = next(line for line in process.stderr.splitlines() if "--report-alphas" in line)
    assert "leaving out 0.05, 0.1" in note and "0.05 needs 19" in note and "0.1 needs 9" in note
    report = json.loads((tmp_path / "with-head.pth.json").read_text())
    assert [row["alpha"] for row in report["alphas"]] == [0.2]
    assert report["left_out_report_alphas"] == [0.05, 0.1]
    assert "alpha 0.05: left out" in process.stdout


@pytest.mark.parametrize("arguments,message", [
    (("--calibrate-on", "img1"), "no photo among the generator's held-out photos"),
    (("--calibrate-on", "img0", "--test-on", "img0", "--alpha", 0.2, "--report-alphas", "0.2"), "share photos"),
    (("--calibrate-on", "img2", "--alpha", 0.05), "needs at least 19"),
])
def test_bad_sources_are_one_line_and_exit_2(trained, tmp_path, arguments, message):
    process = subprocess.run([sys.executable, "-m", "retint.model.uncertainty_cli", str(trained),
                              "-o", str(tmp_path / "out.pth"), *map(str, arguments)],
                             capture_output=True, text=True)
    assert process.returncode == 2, process.stderr
    # Progress bars may come first; the error is one line, the last.
    last_line = process.stderr.strip().splitlines()[-1]
    assert last_line.startswith("colorize-uncertainty: error:") and message in last_line
    assert not (tmp_path / "out.pth").exists()


@pytest.mark.parametrize("option", [("--decode", "family-favoured"), ("--chroma-gain", "1.1"), ("--temperature", "0.3")])
def test_decode_chroma_gain_and_temperature_are_refused_for_a_regression_model(trained, tmp_path, option):
    process = subprocess.run([sys.executable, "-m", "retint.model.uncertainty_cli", str(trained),
                              "-o", str(tmp_path / "out.pth"), "--calibrate-on", "img0", *option],
                             capture_output=True, text=True)
    assert process.returncode == 2, process.stderr
    assert "regression model" in process.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out.pth").exists()


@pytest.fixture(scope="module")
def trained_v2(tmp_path_factory):
    """A tiny colour model v2 (distribution head), img00-09 and img20-23 held out."""
    return _train_tiny(tmp_path_factory, "v2", "--head", "distribution", "--no-pretrained-encoder")


@pytest.mark.slow  # a whole export (most of a minute on two cores) after the calibration
def test_a_distribution_head_is_calibrated_from_its_own_distribution(trained_v2, tmp_path):
    """No head is trained: lambda is chosen on one held-out source for the distribution's own spreads,
    measured on another, and export-trt puts it in the distribution stage, which the runtime uses."""
    import numpy as np

    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export
    from retint.runtime import load_engine

    output = tmp_path / "v2-calibrated.pth"
    result = CliRunner().invoke(uncertainty_main, [str(a) for a in (
        trained_v2, "-o", output, "--calibrate-on", "img0", "--test-on", "img2", "--alpha", 0.2,
        "--report-alphas", "0.2")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "head epoch" not in result.output and "test coverage" in result.output
    payload = load_checkpoint(output)
    assert "uncertainty_head" not in payload
    calibration = payload["uncertainty"]
    assert calibration["method"] == "distribution" and calibration["alpha"] == 0.2 and calibration["lambda"] > 0
    row = json.loads((tmp_path / "v2-calibrated.pth.json").read_text())["alphas"][0]
    # Calibrated on img0: there, conformal risk control holds by construction.
    assert row["calibration"]["coverage"] >= 0.8 - 1e-6

    lines = []
    run_export(ExportConfig(checkpoint=output, output_dir=tmp_path / "export", onnx_only=True), log=lines.append)
    sidecar = json.loads((tmp_path / "export" / "v2-calibrated.distribution.onnx.json").read_text())
    assert sidecar["kind"] == "distribution" and sidecar["uncertainty"]["lambda"] == calibration["lambda"]
    assert any("uncertainty from the distribution" in line for line in lines)
    engine = load_engine(tmp_path / "export" / "v2-calibrated.onnx", backend="onnxruntime")
    assert engine.spec.uncertainty_alpha == 0.2
    gray = (np.random.default_rng(1).random((40, 50)) * 255).astype(np.uint8)
    rgb, interval = engine.colorize(gray, with_uncertainty=True)
    assert interval.shape == (1, 40, 50, 4) and (interval[..., 0] <= interval[..., 1]).all()
    assert np.abs(rgb.astype(int) - engine.colorize(gray).astype(int)).max() <= 1


@pytest.mark.slow  # a whole export after the calibration
def test_a_release_decoded_family_favoured_is_calibrated_and_exported_so(trained_v2, tmp_path):
    """--decode family-favoured --chroma-gain 1.25 --temperature 0.3: the release's config says so,
    its intervals are calibrated around the colours it shows, and the export (its parity gates
    against PyTorch passed) colours with it, names all three in its sidecar and decodes at 0.3 unless
    asked otherwise."""
    import numpy as np

    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export
    from retint.runtime import load_engine

    outputs = {}
    for decode in ("annealed-mean", "family-favoured"):
        outputs[decode] = tmp_path / f"{decode}.pth"
        result = CliRunner().invoke(uncertainty_main, [str(a) for a in (
            trained_v2, "-o", outputs[decode], "--calibrate-on", "img0", "--alpha", 0.2, "--report-alphas", "0.2",
            "--decode", decode,
            *(("--chroma-gain", 1.25, "--temperature", 0.3) if decode == "family-favoured" else ()))],
            catch_exceptions=False)
        assert result.exit_code == 0, result.output
    payload = load_checkpoint(outputs["family-favoured"])
    assert payload["generator_config"]["decode"] == "family-favoured"
    assert payload["uncertainty"]["decode"] == "family-favoured"
    assert payload["generator_config"]["chroma_gain"] == payload["uncertainty"]["chroma_gain"] == 1.25
    assert payload["generator_config"]["temperature"] == payload["uncertainty"]["temperature"] == 0.3
    assert load_checkpoint(outputs["annealed-mean"])["generator_config"].get("chroma_gain", 1.0) == 1.0
    run_export(ExportConfig(checkpoint=outputs["family-favoured"], output_dir=tmp_path / "export", onnx_only=True),
               log=lambda line: None)
    sidecar = json.loads((tmp_path / "export" / "family-favoured.onnx.json").read_text())
    assert sidecar["colour_bins"]["decode"] == "family-favoured" and sidecar["colour_bins"]["chroma_gain"] == 1.25
    assert sidecar["colour_bins"]["default_temperature"] == 0.3
    engine = load_engine(tmp_path / "export" / "family-favoured.onnx", backend="onnxruntime")
    assert engine.spec.temperature == pytest.approx(0.3)
    gray = (np.random.default_rng(2).random((40, 50)) * 255).astype(np.uint8)
    from retint.export.deploy import DeployColouriser
    from retint.model.checkpoint import load_generator

    for decode, path in outputs.items():
        generator = load_generator(path)
        graph = DeployColouriser(generator, generator.retint_config.render_size).eval()
        with torch.no_grad():
            expected = graph(torch.from_numpy(gray[None, None])).numpy()
        if decode == "family-favoured":
            assert np.abs(engine.colorize(gray).astype(int) - expected.astype(int)).max() <= 1
        else:
            annealed = expected
    assert np.abs(annealed.astype(int) - expected.astype(int)).max() > 0  # the decode changed the colours
