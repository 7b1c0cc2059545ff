"""Colour model v2 at run time: hint planes, a reference photo's histogram and the temperature, on
real backends (the guides that hold on every model: tests/runtime/test_guides_runtime.py).

The tiny v2 generator is exported through the real gates; its engines run on ONNX Runtime and
(where installed) OpenVINO, and every figure is compared with PyTorch fed the same inputs.
"""

import numpy as np
import pytest
import torch

from retint.errors import EngineError
from retint.runtime import load_engine
from retint.runtime.guides.hints import rasterise_hints
from retint.runtime.guides.palette import reference_histogram



def fused(exported_distribution):
    return next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")


def grey_images(count=2, height=90, width=70, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(20, 235, width, dtype=np.float32)[None, :] + rng.normal(0, 12, (height, width))
    return np.clip(np.stack([base + 10 * index for index in range(count)]), 0, 255).astype(np.uint8)


def test_points_land_on_their_render_size_pixels():
    hint_ab, mask = rasterise_hints([[(0, 0, 30, -10)], [(69, 89, -5, 60)]], (90, 70), 2, 64)
    assert hint_ab.shape == (2, 2, 64, 64) and mask.shape == (2, 1, 64, 64)
    assert mask[0, 0, 0, 0] == 1 and mask[0, 0, 2, 2] == 0 and mask[0].sum() == 4  # clipped at the corner
    assert mask[1, 0, 63, 63] == 1 and hint_ab[1, 1, 63, 63] == 60
    assert np.all(hint_ab[0, 0][mask[0, 0] > 0] == 30)
    assert rasterise_hints(None, (90, 70), 3, 64)[1].sum() == 0


@pytest.mark.parametrize("bad,words", [([[(70, 5, 1, 1)]], "outside"), ([[(1, 2, 3)]], "(x, y, a, b)"),
                                       ([[(1, 2, float("nan"), 0)]], "finite"), ([[], []], "one list per image")])
def test_malformed_hints_are_one_clear_error(bad, words):
    with pytest.raises(EngineError, match=words.replace("(", r"\(").replace(")", r"\)")):
        rasterise_hints(bad, (90, 70), 1, 64)


def test_reference_histogram_follows_the_photos_colours(exported_distribution):
    engine = load_engine(fused(exported_distribution), backend="onnxruntime")
    centres = engine.spec.colour_bins.centres
    red = np.zeros((40, 50, 3), np.uint8)
    red[..., 0] = 200
    histogram = reference_histogram(red, centres)
    assert histogram.shape == (len(centres) + 1,) and histogram[-1] == 1
    assert histogram[:-1].sum() == pytest.approx(1.0)
    assert centres[int(histogram[:-1].argmax()), 0] > 40  # a strongly positive a*: red
    with pytest.raises(EngineError, match="uint8 RGB"):
        reference_histogram(np.zeros((4, 4), np.uint8), centres)


def test_reference_histograms_are_each_photos_own_through_the_cache():
    """Taken once per photo (a digest of its pixels), never confused with another's, never shared."""
    rng = np.random.default_rng(4)
    centres = rng.uniform(-80, 80, (30, 2)).astype(np.float32)
    photos = [rng.integers(0, 256, (70, 90, 3), dtype=np.uint8) for _ in range(12)]

    def exact(photo: np.ndarray) -> np.ndarray:  # the pairwise nearest bin, without the cache
        import cv2

        ab = cv2.cvtColor(photo.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)[:, 1:]
        nearest = ((ab[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        return np.bincount(nearest, minlength=len(centres)) / len(nearest)

    for _ in range(2):  # more photos than the cache keeps, twice over
        for photo in photos:
            histogram = reference_histogram(photo, centres)
            assert np.allclose(histogram[:-1], exact(photo), atol=1e-6) and histogram[-1] == 1
            histogram[:] = 0  # a caller's changes never reach the next caller
    assert np.allclose(reference_histogram(photos[-1], centres)[:-1], exact(photos[-1]), atol=1e-6)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_hints_reference_and_temperature_match_pytorch(exported_distribution, distribution_checkpoint, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    from retint.export.deploy import DeployColouriser
    from retint.model.checkpoint import load_generator

    engine = load_engine(fused(exported_distribution), backend=backend)
    assert engine.spec.colour_bins is not None and engine.spec.colour_bins.global_hint
    gray = grey_images()
    reference = (np.random.default_rng(1).random((30, 40, 3)) * 255).astype(np.uint8)
    hints = [[(10, 20, 50, 30), (60, 80, -40, 40), (40, 50, 12, -8)], []]
    automatic = engine.colorize(gray)
    hinted = engine.colorize(gray, hints=hints)
    warm = engine.colorize(gray, temperature=1.5)
    guided = engine.colorize(gray, reference=reference)
    assert np.array_equal(engine.colorize(gray, hints=[[], []]), automatic)  # no points: automatic
    for changed in (warm, guided):
        assert np.abs(changed.astype(int) - automatic).mean() > 0.2
    # A hint changes the colours around its point, and only in its own image.
    near = np.abs(hinted[0, 10:30, 0:20].astype(int) - automatic[0, 10:30, 0:20]).max()
    assert near > 3
    assert np.abs(hinted[1].astype(int) - automatic[1]).max() <= 1

    # The graph's own inputs (hint planes, global hint, temperature) reach it as PyTorch's do: the
    # model alone, before the guides (which make the hints hold and blend the palette), is compared.
    graph = DeployColouriser(load_generator(distribution_checkpoint), 64).eval()
    controls = engine.controls_for(gray[:, None], hints, 1.5, reference)
    with torch.no_grad():
        expected = graph(torch.from_numpy(gray[:, None]),
                         *[torch.from_numpy(controls.feeds()[name]) for name in
                           ("hint_ab", "hint_mask", "global_hint", "temperature")]).numpy()
    actual = engine._run(gray[:, None], controls)
    tolerance = 1 if backend == "onnxruntime" else 12  # OpenVINO runs bf16 where the CPU has it
    assert np.abs(actual.astype(int) - expected).max() <= tolerance
    if backend == "openvino":
        assert np.abs(actual.astype(int) - expected).mean() < 1.0
    # With the guides, every hint holds at its own pixel (tests/runtime/test_guides_runtime.py has the rest).
    guided_all = engine.colorize(gray, hints=hints, temperature=1.5, reference=reference)
    held = 0
    for x, y, a, b in hints[0]:
        shown = _lab(guided_all[0, y, x])
        if _in_gamut(shown[0], a, b):  # out of sRGB's gamut the compose pulls a colour toward grey
            assert abs(shown[1] - a) < 2.5 and abs(shown[2] - b) < 2.5, (x, y, shown)
            held += 1
    assert held
    engine.close()


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb.reshape(1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]


def _in_gamut(lightness: float, a: float, b: float) -> bool:
    import cv2

    rgb = cv2.cvtColor(np.array([[[lightness, a, b]]], np.float32), cv2.COLOR_Lab2RGB)[0, 0]
    return bool(np.all(rgb > 0.01) and np.all(rgb < 0.99))


def test_temperature_outside_its_range_is_refused(exported_distribution):
    engine = load_engine(fused(exported_distribution), backend="onnxruntime")
    with pytest.raises(EngineError, match="temperature"):
        engine.colorize(grey_images(1), temperature=0.0)


def test_a_regression_engine_refuses_a_temperature_in_the_one_wording(exported):
    from retint.runtime.refusals import temperature_refusal

    path = exported["effnet-unet"].artefacts[0]
    engine = load_engine(path, backend="onnxruntime")
    with pytest.raises(EngineError) as raised:
        engine.colorize(grey_images(1), temperature=0.5)
    assert str(raised.value) == temperature_refusal(path.name)


def test_an_engines_temperature_is_the_default_of_every_call(exported_distribution, exported):
    gray = grey_images()
    with load_engine(fused(exported_distribution), backend="onnxruntime", temperature=1.5) as warm, \
            load_engine(fused(exported_distribution), backend="onnxruntime") as default:
        assert warm.spec.colour_bins.default_temperature == 1.5
        assert np.array_equal(warm.colorize(gray), default.colorize(gray, temperature=1.5))
        assert np.array_equal(warm.colorize(gray, temperature=0.38), default.colorize(gray))
    with pytest.raises(EngineError, match="regression model"):
        load_engine(exported["effnet-unet"].artefacts[0], backend="onnxruntime", temperature=0.5)
