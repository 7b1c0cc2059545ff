"""Guides on every model (runtime/guides/): hints that hold exactly, a reference's palette, suggestions
from the palette, the capabilities record and the one wording of refusals.

The tiny regression model (`exported`) takes no guide in its graph: everything it does with hints
and a reference is the runtime's. Images are small synthetic ones: two flat regions of different
lightness, so that "spreads along regions of similar lightness" can be seen.
"""

import cv2
import numpy as np
import pytest

from retint.errors import EngineError
from retint.runtime import load_engine
from retint.runtime.capabilities import Capabilities
from retint.runtime.guides.palette import Palette
from retint.runtime.guides.propagation import fast_global_smooth, propagate_hints


def regression(exported):
    return exported["effnet-unet"].artefacts[0]


def two_regions(height=64, width=96):
    """A grey photo: a dark left half, a light right half, a little noise (seeded)."""
    gray = np.full((height, width), 70, np.float32)
    gray[:, width // 2:] = 180
    gray += np.random.default_rng(0).normal(0, 2, gray.shape)
    return np.clip(gray, 0, 255).astype(np.uint8)


def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def test_the_smoother_keeps_a_constant_and_stops_at_edges():
    guide = np.zeros((20, 30), np.float32)
    guide[:, 15:] = 60
    flat = np.full((1, 20, 30), 7.0, np.float32)
    assert np.allclose(fast_global_smooth(flat, guide, 500, 4, 2), 7.0, atol=1e-4)
    spike = np.zeros((1, 20, 30), np.float32)
    spike[0, 10, 5] = 1.0
    smooth = fast_global_smooth(spike, guide, 500, 4, 2)[0]
    assert smooth[10, 14] > 50 * smooth[10, 16]  # the mass spreads in its region, not across the step


def test_hints_hold_exactly_and_spread_within_their_region():
    ab = np.zeros((2, 32, 32), np.float32)
    lightness = np.full((32, 32), 30.0, np.float32)
    lightness[:, 16:] = 80.0
    out = propagate_hints(ab, lightness, [(10, 5, 40.0, -20.0)])
    assert np.array_equal(out[:, 9:12, 4:7], np.broadcast_to(np.array([40.0, -20.0], np.float32)[:, None, None],
                                                              (2, 3, 3)))
    assert out[0, 10, 14] > 20  # along its region
    assert abs(out[0, 10, 20]) < out[0, 10, 14] / 2  # much less across the lightness step
    assert np.array_equal(propagate_hints(ab, lightness, []), ab)


def test_no_guides_is_byte_for_byte_automatic(exported):
    engine = load_engine(regression(exported), backend="onnxruntime")
    gray = np.stack([two_regions(), two_regions()[::-1]])
    automatic = engine.colorize(gray)
    assert np.array_equal(engine.colorize(gray, hints=None, reference=None), automatic)
    assert np.array_equal(engine.colorize(gray, hints=[[], []]), automatic)


def test_a_regression_model_takes_hints_which_hold_at_their_pixels(exported):
    engine = load_engine(regression(exported), backend="onnxruntime")
    assert engine.spec.capabilities.guides and not engine.spec.capabilities.hint_planes
    gray = two_regions()
    hints = [(10.0, 30.0, 25.0, 30.0), (80.0, 12.0, -20.0, 15.0)]
    automatic = engine.colorize(gray)[0]
    guided = engine.colorize(gray, hints=[hints])[0]
    shown = lab(guided)
    for x, y, a, b in hints:
        assert abs(shown[int(y), int(x), 1] - a) < 1.5 and abs(shown[int(y), int(x), 2] - b) < 1.5
    # One hint colours its own (dark, left) region far more than the light one beyond the edge.
    one = lab(engine.colorize(gray, hints=[hints[:1]])[0])
    left = np.abs(one[:, :40, 1:] - lab(automatic)[:, :40, 1:]).mean()
    right = np.abs(one[:, 56:, 1:] - lab(automatic)[:, 56:, 1:]).mean()
    assert left > 2 * right
    # The full-resolution lightness is the input's, guided or not.
    assert np.abs(lab(guided)[..., 0] - lab(automatic)[..., 0]).max() < 1.0


def test_a_hint_outside_its_image_is_one_clear_error(exported):
    engine = load_engine(regression(exported), backend="onnxruntime")
    with pytest.raises(EngineError, match="outside the 96x64 image"):
        engine.colorize(two_regions(), hints=[[(96.0, 3.0, 10.0, 10.0)]])
    with pytest.raises(EngineError, match="outside"):
        engine.check_guides((64, 96), [[(1.0, 64.0, 10.0, 10.0)]])


def test_a_reference_palette_guides_a_regression_model(exported):
    engine = load_engine(regression(exported), backend="onnxruntime")
    gray = two_regions()
    # A reference whose dark pixels are red and light pixels blue.
    reference = np.zeros((40, 40, 3), np.uint8)
    reference[:, :20] = (150, 30, 30)
    reference[:, 20:] = (140, 190, 250)
    guided = lab(engine.colorize(gray, reference=reference)[0])
    automatic = lab(engine.colorize(gray)[0])
    assert guided[:, :40, 1].mean() > automatic[:, :40, 1].mean() + 10  # dark region: redder (a* up)
    assert guided[:, 56:, 2].mean() < automatic[:, 56:, 2].mean() - 5  # light region: bluer (b* down)


def test_suggestions_come_from_the_palette_or_there_are_none(exported):
    engine = load_engine(regression(exported), backend="onnxruntime")
    gray = two_regions()
    assert engine.suggest(gray, [(10, 10), (80, 10)]) == [[], []]  # no distribution, no reference: none
    reference = np.zeros((40, 40, 3), np.uint8)
    reference[:, :20] = (150, 30, 30)
    reference[:, 20:] = (140, 190, 250)
    dark, light = engine.suggest(gray, [(10, 10), (80, 10)], k=3, reference=reference)
    assert dark and dark[0].a > 20  # the reference's red at the dark pixel's lightness
    assert light and light[0].b < -10  # its blue at the light one's
    assert all(0 < suggestion.probability <= 1 for suggestion in dark + light)


def test_the_palette_keeps_the_model_where_the_reference_has_no_such_lightness():
    reference = np.full((30, 30, 3), (200, 40, 40), np.uint8)  # one lightness only
    palette = Palette.of(reference)
    ab = np.full((2, 16, 16), 5.0, np.float32)
    far = palette.apply(ab, np.full((16, 16), 97.0, np.float32))
    assert np.allclose(far, 5.0, atol=0.5)


def test_capabilities_and_refusals_are_worded_once(exported, tmp_path):
    import shutil

    from retint.runtime.refusals import stages_refusal, temperature_refusal

    source = regression(exported)
    alone = tmp_path / source.name
    shutil.copy(source, alone)
    shutil.copy(str(source) + ".json", str(alone) + ".json")
    engine = load_engine(alone, backend="onnxruntime")
    assert engine.spec.capabilities == Capabilities(guides=False)
    with pytest.raises(EngineError) as raised:
        engine.colorize(two_regions(), hints=[[(1.0, 1.0, 5.0, 5.0)]])
    assert str(raised.value) == stages_refusal(alone.name, ["hints"])
    with pytest.raises(EngineError) as raised:
        engine.colorize(two_regions(), temperature=0.5)
    assert str(raised.value) == temperature_refusal(alone.name)
    assert load_engine(source, backend="onnxruntime").spec.capabilities.as_dict() == {
        "kind": "regression", "guides": True, "hint_planes": False, "global_hint": False, "suggests": False,
        "intervals": False, "temperature": None, "temperature_range": None}
