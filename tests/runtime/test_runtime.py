"""retint.runtime: load_engine and colorize on real ONNX Runtime sessions."""

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from retint.errors import BackendUnavailable, EngineError
from retint.runtime import load_engine

ARCHES = ["effnet-unet", "unet256"]

# Lab lightness of each grey level (what the graph computes from its input), from
# scikit-image in the test rather than retint's own code.
from skimage import color as _skcolor  # noqa: E402

LIGHTNESS_OF_LEVEL = _skcolor.rgb2lab(np.repeat((np.arange(256) / 255.0)[:, None, None], 3, -1))[:, 0, 0]


def photo(height=240, width=320):
    from retint.export.parity import load_parity_images

    return cv2.resize(load_parity_images(None)[0], (width, height), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("precision_index", [0, 1], ids=["fp32", "fp16"])
def test_colorize_keeps_shape_and_lightness(exported, arch, precision_index):
    with load_engine(exported[arch].artefacts[precision_index]) as engine:
        gray = np.stack([photo(), photo()[::-1].copy()])
        rgb = engine.colorize(gray)
        assert rgb.shape == (2, 240, 320, 3) and rgb.dtype == np.uint8
        lightness = _skcolor.rgb2lab(rgb / 255.0)[..., 0]
        # the grey level whose lightness is closest to the output's
        level = np.abs(lightness[..., None] - LIGHTNESS_OF_LEVEL).argmin(axis=-1)
        assert np.abs(level - gray.astype(int)).max() <= 1
        assert np.array_equal(engine.colorize(gray), rgb)  # deterministic


@pytest.mark.parametrize("shape", [(64, 48), (3, 64, 48), (1, 1, 64, 48)])
def test_accepts_hw_nhw_and_n1hw(exported, shape):
    engine = load_engine(exported["effnet-unet"].artefacts[0])
    gray = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    rgb = engine.colorize(gray)
    batch = 1 if len(shape) == 2 else shape[0]
    assert rgb.shape == (batch, 64, 48, 3)


def test_batches_above_max_batch_are_split(exported):
    engine = load_engine(exported["effnet-unet"].artefacts[0])
    assert engine.spec.limits.max_batch == 16
    gray = np.random.default_rng(1).integers(0, 256, (17, 16, 16), dtype=np.uint8)
    rgb = engine.colorize(gray)
    assert rgb.shape == (17, 16, 16, 3)
    assert np.array_equal(rgb[16], engine.colorize(gray[16])[0])


@pytest.mark.parametrize("bad,message", [
    (np.zeros((32, 32), np.float32), "uint8"),
    (np.zeros((1, 2, 32, 32), np.uint8), "shaped"),
    (np.zeros((0, 32, 32), np.uint8), "empty"),
    (np.zeros((8, 32), np.uint8), "outside the engine's limits"),
    (np.zeros((16, 8200), np.uint8), "outside the engine's limits"),
    ([[0, 1], [2, 3]], "numpy array"),
])
def test_bad_input_is_one_clear_error(exported, bad, message):
    engine = load_engine(exported["effnet-unet"].artefacts[0])
    with pytest.raises(EngineError, match=message) as error:
        engine.colorize(bad)
    assert "\n" not in str(error.value)


def test_spec_reports_what_the_engine_is(exported):
    spec = load_engine(exported["unet256"].artefacts[1], device="cpu").spec
    assert (spec.backend, spec.provider, spec.precision, spec.render_size) == (
        "onnxruntime", "CPUExecutionProvider", "fp16", 256)
    assert (spec.limits.min_side, spec.limits.max_side) == (16, 8192)


def test_metadata_props_serve_when_the_sidecar_is_gone(exported, tmp_path):
    source = exported["effnet-unet"].artefacts[0]
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(source.read_bytes())
    spec = load_engine(lonely).spec
    assert spec.precision == "fp32" and spec.metadata.arch == "effnet-unet"


def test_missing_wrong_and_unsupported_files(tmp_path, exported):
    with pytest.raises(EngineError, match="not found"):
        load_engine(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a graph")
    with pytest.raises(EngineError, match="ONNX Runtime cannot load it"):
        load_engine(garbage)
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(EngineError, match="unknown engine type"):
        load_engine(other)
    with pytest.raises(BackendUnavailable):
        load_engine(exported["effnet-unet"].artefacts[0], device="cuda")


def test_a_plan_without_tensorrt_or_gpu_is_a_clear_error(tmp_path):
    plan = tmp_path / "model.fp16.plan"
    plan.write_bytes(b"\0" * 64)
    with pytest.raises(BackendUnavailable):
        load_engine(plan)


def test_runtime_never_imports_torch(exported):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from retint.runtime import load_engine
        engine = load_engine({str(exported["effnet-unet"].artefacts[1])!r})
        rgb = engine.colorize(np.full((40, 30), 128, np.uint8))
        assert rgb.shape == (1, 40, 30, 3)
        print("torch" in sys.modules)
    """)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "False"


@pytest.mark.parametrize("arch", ARCHES)
def test_the_stages_chained_equal_the_fused_graph(exported, arch):
    fused = load_engine(exported[arch].artefacts[0], backend="onnxruntime")
    staged = load_engine(exported[arch].artefacts[0], backend="onnxruntime", by_stages=True)
    assert (staged.spec.backend, staged.spec.precision) == ("onnxruntime", "fp32")
    gray = np.stack([photo(), photo()[::-1].copy()])
    ab = staged.predict(gray)
    assert ab.shape == (2, 2, fused.spec.render_size, fused.spec.render_size) and ab.dtype == np.float32
    difference = np.abs(staged.compose(gray, ab).astype(int) - fused.colorize(gray).astype(int))
    assert difference.max() <= 1
    # a staged engine is an Engine: batches beyond max_batch split, and close() releases it
    many = np.stack([photo(64, 80)] * (fused.spec.limits.max_batch + 1))
    assert np.abs(staged.colorize(many).astype(int) - fused.colorize(many).astype(int)).max() <= 1
    staged.close()


def test_stages_missing_is_a_clear_error(exported, tmp_path):
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(exported["effnet-unet"].artefacts[0].read_bytes())
    with pytest.raises(EngineError, match="needs the engine's stages"):
        load_engine(lonely, backend="onnxruntime", by_stages=True)
    with pytest.raises((EngineError, BackendUnavailable), match="stages|openvino"):
        load_engine(lonely, backend="openvino")
    # auto quietly keeps ONNX Runtime, and says why
    engine = load_engine(lonely)
    assert engine.spec.backend == "onnxruntime" and engine.spec.reason.startswith("auto: ")


def test_a_backend_that_cannot_run_the_artefact_is_a_clear_error(exported, tmp_path):
    plan = tmp_path / "model.fp16.plan"
    plan.write_bytes(b"\0" * 64)
    with pytest.raises(EngineError, match="TensorRT plan"):
        load_engine(plan, backend="onnxruntime")
    with pytest.raises(EngineError, match="ONNX graph"):
        load_engine(exported["effnet-unet"].artefacts[0], backend="tensorrt")
    with pytest.raises(EngineError, match="unknown backend"):
        load_engine(exported["effnet-unet"].artefacts[0], backend="tpu")


# The OpenVINO tests skip where the 'openvino' extra is not installed (CI installs it).


@pytest.mark.parametrize("arch", ARCHES)
def test_openvino_backend_matches_onnx_runtime(exported, arch):
    pytest.importorskip("openvino")
    from retint.cpu import has_native_bf16

    reference = load_engine(exported[arch].artefacts[0], backend="onnxruntime")
    engine = load_engine(exported[arch].artefacts[0], backend="openvino", streams=2)
    assert engine.spec.backend == "openvino"
    assert engine.spec.precision == ("bf16" if has_native_bf16() else "fp32")
    assert "OpenVINO" in engine.spec.provider and engine.spec.reason
    gray = np.stack([photo(), photo()[::-1].copy()])
    ab = engine.predict(gray)
    assert ab.shape == (2, 2, reference.spec.render_size, reference.spec.render_size)
    from retint.export.parity import measure_parity, parity_cases

    cases = parity_cases([photo(), photo(300, 200)])
    report = measure_parity(reference.colorize, engine.colorize, cases)
    assert report.nonfinite == 0 and report.mean_ciede2000 <= 0.5 and report.p99_ciede2000 <= 2.0
    engine.close()


def test_openvino_runs_f32_without_a_recorded_bf16_gate(exported, tmp_path):
    pytest.importorskip("openvino")
    import json
    import shutil

    source = exported["effnet-unet"].artefacts[0]
    for path in source.parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    sidecar = tmp_path / "tiny-effnet-unet.generator.onnx.json"
    metadata = json.loads(sidecar.read_text())
    metadata["parity"].pop("openvino-bf16", None)
    sidecar.write_text(json.dumps(metadata))
    engine = load_engine(tmp_path / source.name, backend="openvino")
    assert engine.spec.precision == "fp32" and "f32" in engine.spec.reason
    # auto never runs OpenVINO without the gate
    assert load_engine(tmp_path / source.name).spec.backend == "onnxruntime"
