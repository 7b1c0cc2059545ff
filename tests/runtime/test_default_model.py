"""The bundled default model: loadable without torch, consistent, small enough."""

import hashlib
import json
import subprocess
import sys

import numpy as np

from retint.runtime import DEFAULT_MODEL, load_engine

FOLDER = DEFAULT_MODEL.parent


def test_load_engine_none_opens_the_bundled_model():
    with load_engine(None, backend="onnxruntime") as engine:
        assert engine.spec.path == DEFAULT_MODEL
        assert (engine.spec.render_size, engine.spec.precision, engine.spec.metadata.arch) == (256, "fp32", "effnet-unet")
        rgb = engine.colorize(np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1)))
        assert rgb.shape == (1, 200, 300, 3) and rgb.dtype == np.uint8


def test_auto_picks_openvino_bf16_only_on_a_cpu_with_native_bf16():
    from retint.cpu import has_native_bf16
    from retint.runtime.openvino_runner import openvino_installed

    with load_engine(None) as engine:
        if has_native_bf16() and openvino_installed():
            assert (engine.spec.backend, engine.spec.precision) == ("openvino", "bf16")
            assert "parity gate passed" in engine.spec.reason
        else:
            assert (engine.spec.backend, engine.spec.precision) == ("onnxruntime", "fp32")
            assert engine.spec.reason.startswith("auto: ")


def test_without_openvino_auto_runs_onnx_runtime_and_openvino_is_one_clear_error():
    code = ("import sys; sys.modules['openvino'] = None\n"
            "import numpy as np\n"
            "from retint.errors import BackendUnavailable\n"
            "from retint.runtime import load_engine\n"
            "engine = load_engine(None)\n"
            "print(engine.spec.backend, engine.colorize(np.full((64, 48), 90, np.uint8)).shape)\n"
            "try:\n"
            "    load_engine(None, backend='openvino')\n"
            "except BackendUnavailable as error:\n"
            "    print(error)\n")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    first, second = process.stdout.strip().splitlines()
    assert first == "onnxruntime (1, 64, 48, 3)"
    assert "pip install 'retint[openvino]'" in second


def test_bundled_model_works_with_torch_unimportable():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from retint.runtime import load_engine\n"
            "print(load_engine(None).colorize(np.full((64, 48), 90, np.uint8)).shape)\n")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "(1, 64, 48, 3)"


def test_bundled_files_are_consistent_and_within_40_mb(repo_root):
    """One checkpoint behind every graph (the one kept in releases/), its gates passed, its
    weights stored once, and 40 MB or less in all."""
    digest = hashlib.sha256((repo_root / "releases" / "retint-default.pth").read_bytes()).hexdigest()
    names = ("retint-default.onnx", "retint-default.lightness.onnx", "retint-default.generator.onnx",
             "retint-default.compose.onnx", "retint-default.distribution.onnx")
    for name in names:
        sidecar = json.loads((FOLDER / f"{name}.json").read_text())
        assert sidecar["checkpoint_sha256"] == digest, name
    fused = json.loads((FOLDER / "retint-default.onnx.json").read_text())["parity"]
    assert fused["fraction_within_one_level"] >= 0.999 and fused["mean_ciede2000"] <= 0.1
    # The OpenVINO bf16 gate was measured on a CPU with native bf16 and passed (auto relies on it).
    bf16 = json.loads((FOLDER / "retint-default.generator.onnx.json").read_text())["parity"]["openvino-bf16"]
    assert bf16["passed"] and bf16["mean_ciede2000"] <= 0.5 and bf16["p99_ciede2000"] <= 2.0
    # Intervals from the distribution: calibrated by conformal risk control at alpha 0.1.
    distribution = json.loads((FOLDER / "retint-default.distribution.onnx.json").read_text())
    assert distribution["uncertainty"]["alpha"] == 0.1 and distribution["uncertainty"]["calibration_photos"] >= 40
    # Weights once: the graphs hold only small tensors; the generator lives in one .weights file.
    weights = FOLDER / "retint-default.weights"
    assert all((FOLDER / name).stat().st_size < weights.stat().st_size / 10 for name in names)
    total = sum(path.stat().st_size for path in FOLDER.iterdir())
    assert total <= 40 * 1024 * 1024


def test_the_bundled_model_is_colour_model_v2_with_suggestions_and_intervals():
    with load_engine(None, backend="onnxruntime") as engine:
        assert engine.spec.suggests and engine.spec.colour_bins is not None
        assert engine.spec.metadata.generator_config["decoder"] == "hypercolumn"


def test_the_released_checkpoint_rebuilds_the_bundled_generator(repo_root):
    from retint.model.checkpoint import load_generator

    generator = load_generator(repo_root / "releases" / "retint-default.pth")
    assert generator.retint_config.decoder == "hypercolumn" and not generator.training


def test_readme_first_command_colours_every_sample(repo_root, tmp_path):
    output = tmp_path / "colourised"
    process = subprocess.run([sys.executable, "-m", "retint.batch.cli", str(repo_root / "examples"), "-o",
                              str(output), "--no-progress"], capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    samples = sorted(p.name for p in (repo_root / "examples").glob("*.jpg"))
    assert samples and sorted(p.name for p in output.glob("*.jpg")) == samples
