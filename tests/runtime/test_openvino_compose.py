"""The compose stage on OpenVINO: its graph rewrites, its agreement with ONNX Runtime, its fallback.

Real OpenVINO and ONNX Runtime throughout; skipped where the 'openvino' extra
is not installed (CI installs it).
"""

import numpy as np
import pytest

from retint.runtime import load_engine

pytest.importorskip("openvino")


def compose_stage(exported):
    return exported["effnet-unet"].artefacts[0].with_name("tiny-effnet-unet.compose.onnx")


def compile_f32(model):
    from retint.runtime.openvino_runner import _core

    return _core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def test_log_by_square_roots_matches_numpy_from_the_srgb_knee_up():
    import openvino as ov
    import openvino.opset13 as ops

    from retint.runtime.openvino_graph import log_by_square_roots

    values = np.concatenate([np.geomspace(1e-4, 1.0, 4001), np.linspace(0.5, 8.0, 999)]).astype(np.float32)
    parameter = ops.parameter([values.size], np.float32, name="x")
    compiled = compile_f32(ov.Model([log_by_square_roots(parameter)], [parameter]))
    logged = compiled({"x": values})[0]
    reference = np.log(values.astype(np.float64))
    at_or_above_knee = values >= 0.0031308  # the smallest value the compose takes a log of
    assert np.abs(logged - reference)[at_or_above_knee].max() < 2e-5
    assert np.abs(logged - reference).max() < 2e-4
    # and it raised to the sRGB curve's power gives the same output level, to float32 rounding
    levels = 255 * 1.055 * np.exp(logged / 2.4)
    assert np.abs(levels - 255 * 1.055 * values.astype(np.float64) ** (1 / 2.4))[at_or_above_knee].max() < 1e-3


def test_the_compose_graph_is_rewritten_where_openvino_is_slow(exported):
    from retint.runtime.openvino_graph import adapt_for_openvino_cpu
    from retint.runtime.openvino_runner import _read

    model = _read(compose_stage(exported))
    rewritten = adapt_for_openvino_cpu(model)
    # four powers (the grey's and the three sRGB encodes), a and b upsampled, one RGB interleave
    assert rewritten == {"Log": 4, "Interpolate": 2, "Concat": 1}
    kinds = [node.get_type_name() for node in model.get_ordered_ops()]
    assert "Log" not in kinds
    assert [tuple(output.get_partial_shape().to_string() for output in model.outputs)] == [("[?,?,?,3]",)]


@pytest.mark.parametrize("size", [(37, 41), (240, 320), (768, 1024), (200, 300)])
def test_openvino_compose_agrees_with_onnx_runtime(exported, size):
    from retint.runtime.onnx_runner import CPU, OnnxCompose, open_session
    from retint.runtime.openvino_runner import OpenVinoCompose

    path = compose_stage(exported)
    on_openvino = OpenVinoCompose(path, streams=2)
    on_onnxruntime = OnnxCompose(open_session(path, [CPU]))
    rng = np.random.default_rng(size[0])
    render = int(open_session(path, [CPU]).get_inputs()[1].shape[-1])
    gray = rng.integers(0, 256, (2, 1, *size), dtype=np.uint8)
    # chroma from grey to far outside sRGB, so the gamut blend and both knees are exercised
    ab = (rng.standard_normal((2, 2, render, render)) * np.array([0.0, 60.0])[:, None, None, None]
          ).astype(np.float32)
    ours, theirs = on_openvino(gray, ab), on_onnxruntime(gray, ab)
    assert ours.shape == theirs.shape == (2, *size, 3) and ours.dtype == np.uint8
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    on_openvino.close()


def test_the_openvino_engine_composes_on_openvino_and_says_so(exported):
    engine = load_engine(exported["effnet-unet"].artefacts[0], backend="openvino")
    assert "the compose (f32)" in engine.spec.provider and "ONNX Runtime for the lightness" in engine.spec.provider
    engine.close()


def test_onnx_runtime_keeps_the_compose_where_openvino_cannot_compile_it(exported, monkeypatch):
    from retint.runtime import openvino_runner

    # A mode the CPU plugin refuses: the same failure a later OpenVINO without the property gives.
    monkeypatch.setattr(openvino_runner, "SNIPPETS_FOR_DYNAMIC_SHAPES", {"SNIPPETS_MODE": "NO_SUCH_MODE"})
    engine = load_engine(exported["effnet-unet"].artefacts[0], backend="openvino")
    assert "ONNX Runtime for the rest (OpenVINO's compose failed:" in engine.spec.provider
    reference = load_engine(exported["effnet-unet"].artefacts[0], backend="onnxruntime")
    gray = np.random.default_rng(1).integers(0, 256, (64, 96), dtype=np.uint8)
    assert np.abs(engine.colorize(gray).astype(int) - reference.colorize(gray).astype(int)).max() <= 6
    engine.close()


def test_onnx_runtime_keeps_the_compose_where_openvino_disagrees(exported, monkeypatch):
    from retint.runtime import backends

    monkeypatch.setattr(backends, "COMPOSE_TOLERANCE", -1)  # any result now counts as a disagreement
    engine = load_engine(exported["effnet-unet"].artefacts[0], backend="openvino")
    assert "OpenVINO's compose differed by 0 levels" in engine.spec.provider
    engine.close()


def test_read_only_inputs_are_composed_from_their_own_pixels(exported):
    """A decoded image is read-only; OpenVINO must read a copy that lives until the call is done."""
    from retint.runtime.onnx_runner import CPU, OnnxCompose, open_session
    from retint.runtime.openvino_runner import OpenVinoCompose

    path = compose_stage(exported)
    on_openvino = OpenVinoCompose(path)
    on_onnxruntime = OnnxCompose(open_session(path, [CPU]))
    rng = np.random.default_rng(7)
    render = int(open_session(path, [CPU]).get_inputs()[1].shape[-1])
    for _ in range(3):
        gray = rng.integers(0, 256, (1, 1, 96, 128), dtype=np.uint8)
        gray.setflags(write=False)
        ab = (rng.standard_normal((1, 2, render, render)) * 30).astype(np.float32)
        expected = on_onnxruntime(gray, ab)
        garbage = [np.full((1, 1, 96, 128), 255, np.uint8) for _ in range(8)]  # reuse freed memory, if any
        assert np.abs(on_openvino(gray, ab).astype(int) - expected.astype(int)).max() <= 1
        del garbage
    on_openvino.close()
