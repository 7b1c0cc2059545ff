"""Suggested colours (`Engine.suggest`) and a distribution head's intervals, on the tiny v2 artefact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from imagemaker import grey_photo
from retint.errors import EngineError
from retint.runtime import load_engine
from retint.runtime.guides.suggestions import FAMILY_RADIUS, colour_families, probabilities_at

# The made-up calibration's lambda; serve/test_guides.py takes the same, so one export serves both.
CALIBRATED_LAMBDA = 1.0

@pytest.fixture(scope="module")
def fused(exported_distribution):
    return next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")


@pytest.fixture(scope="module")
def calibrated(export_calibrated_distribution):
    """The tiny v2 generator with a made-up distribution calibration, exported."""
    return export_calibrated_distribution(CALIBRATED_LAMBDA)


def _torch_logits(checkpoint, gray: np.ndarray, hints=()) -> np.ndarray:
    from retint.export.deploy import LightnessStage
    from retint.model.checkpoint import load_generator
    from retint.runtime.guides.hints import rasterise_hints

    generator = load_generator(checkpoint).eval()
    size = generator.retint_config.render_size
    hint_ab, hint_mask = rasterise_hints([list(hints)], gray.shape, 1, size)
    with torch.no_grad():
        lightness = LightnessStage(size)(torch.from_numpy(gray)[None, None])
        return generator(lightness, torch.from_numpy(hint_ab) / 110.0, torch.from_numpy(hint_mask)).numpy()[0]


def test_suggestions_are_the_distributions_colour_families_most_probable_first(fused, distribution_checkpoint):
    gray = grey_photo(72, 96, 5)
    points = [(0, 0), (40.5, 30.25), (95.9, 71.9)]
    answer = load_engine(fused, backend="onnxruntime").suggest(gray, points, k=4)
    assert len(answer) == 3 and all(1 <= len(suggestions) <= 4 for suggestions in answer)
    logits = _torch_logits(distribution_checkpoint, gray)
    centres = load_engine(fused).spec.colour_bins.centres
    for point, suggestions in zip(points, answer):
        probabilities = [s.probability for s in suggestions]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
        expected = colour_families(probabilities_at(logits, point, 72, 96), centres, 4)
        for suggestion, (a, b, probability) in zip(suggestions, expected):
            assert abs(suggestion.a - a) < 0.5 and abs(suggestion.b - b) < 0.5
            assert abs(suggestion.probability - probability) < 1e-3
        for first, second in zip(suggestions, suggestions[1:]):  # families, not shades of one
            assert np.hypot(first.a - second.a, first.b - second.b) > FAMILY_RADIUS - 10
        assert all(s.rgb.startswith("#") and len(s.rgb) == 7 for s in suggestions)
        assert json.loads(json.dumps(suggestions[0].as_json()))["rgb"] == suggestions[0].rgb


def test_every_backend_suggests_the_same_and_hints_change_the_distribution(fused):
    gray = grey_photo(64, 64, 7)
    fused_answer = load_engine(fused, backend="onnxruntime").suggest(gray, [(20, 20)], k=3)
    staged_answer = load_engine(fused, backend="openvino").suggest(gray, [(20, 20)], k=3)
    assert fused_answer == staged_answer
    hinted = load_engine(fused).suggest(gray, [(20, 20)], k=3, hints=[(20, 20, 60.0, 50.0)])
    assert hinted != fused_answer


def test_a_bad_suggest_call_is_one_clear_error(fused, exported):
    engine = load_engine(fused, backend="onnxruntime")
    gray = grey_photo(40, 50, 1)
    for call, words in ((lambda: engine.suggest(gray, [(50, 0)]), "outside the 50x40 image"),
                        (lambda: engine.suggest(gray, [(1, 1)], k=0), "k must be"),
                        (lambda: engine.suggest(gray, [("a", 1)]), r"expected \(x, y\) numbers"),
                        (lambda: engine.suggest(np.stack([gray, gray]), [(1, 1)]), "one image")):
        with pytest.raises(EngineError, match=words):
            call()
    # A regression model has no distribution: nothing to suggest without a reference (the page's
    # picker alone), its palette's colours with one.
    regression = load_engine(exported["effnet-unet"].artefacts[0], backend="onnxruntime")
    assert regression.suggest(gray, [(1, 1), (20, 30)]) == [[], []]
    reference = np.zeros((20, 20, 3), np.uint8)
    reference[...] = (40, 160, 60)
    assert all(per_point and per_point[0].a < -10 for per_point in
               regression.suggest(np.full((40, 50), 120, np.uint8), [(1, 1)], reference=reference))


def test_without_a_calibration_suggestions_work_and_uncertainty_is_refused(fused):
    engine = load_engine(fused)
    assert engine.spec.uncertainty_alpha is None
    with pytest.raises(EngineError, match="no uncertainty head"):
        engine.colorize(grey_photo(32, 32, 1), with_uncertainty=True)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_calibrated_distribution_gives_intervals_around_the_colours_it_shows(calibrated, distribution_checkpoint,
                                                                               backend):
    from retint.model.bins import annealed_mean, distribution_spreads
    from retint.model.uncertainty import interval_bounds

    engine = load_engine(calibrated, backend=backend)
    assert engine.spec.uncertainty_alpha == 0.1
    gray = grey_photo(80, 100, 3)
    hints = [(30, 30, -40.0, 30.0)]
    rgb, interval = engine.colorize(gray, with_uncertainty=True, hints=[hints])
    # With uncertainty the colours come from the fp32 distribution stage; OpenVINO's plain colours
    # from its bf16 generator.
    tolerance = 1 if backend == "onnxruntime" else 6
    assert np.abs(rgb.astype(int) - engine.colorize(gray, hints=[hints]).astype(int)).max() <= tolerance
    assert interval.shape == (1, 80, 100, 4)
    logits = torch.from_numpy(_torch_logits(distribution_checkpoint, gray, hints))[None]
    centres = torch.from_numpy(engine.spec.colour_bins.centres)
    ab = annealed_mean(logits, centres, engine.spec.temperature)
    small = interval_bounds(ab, distribution_spreads(logits, centres, ab), CALIBRATED_LAMBDA)
    expected = torch.nn.functional.interpolate(small, size=(80, 100), mode="bilinear",
                                               align_corners=False).permute(0, 2, 3, 1).numpy()
    assert np.abs(interval - expected).max() < 0.05
    muted = load_engine(calibrated, backend=backend, mute_uncertain=True).colorize(gray)
    assert muted.shape == rgb.shape


def test_without_its_distribution_stage_an_engine_suggests_nothing(fused, tmp_path):
    import shutil

    for path in fused.parent.iterdir():
        if ".distribution." not in path.name:
            shutil.copy(path, tmp_path / path.name)
    assert load_engine(fused).spec.suggests
    engine = load_engine(tmp_path / fused.name, backend="onnxruntime")
    assert not engine.spec.suggests and engine.spec.as_dict()["suggests"] is False
    # Without its distribution there is nothing to suggest from (empty lists: the page's picker alone).
    assert engine.suggest(grey_photo(32, 32, 1), [(1, 1)]) == [[]]


def test_a_broad_family_outranks_a_lone_higher_bin():
    """Families are ranked by their mass, not by their highest bin: a lone bin of 20% does not push
    out a family of nine bins holding 80%, whose peak is 30% (a defect a review found)."""
    centres = np.array([(a, b) for a in range(-60, 70, 10) for b in range(-60, 70, 10)], np.float32)
    probabilities = np.zeros(len(centres))
    lone = int(np.flatnonzero((centres[:, 0] == -50) & (centres[:, 1] == -50))[0])
    probabilities[lone] = 0.2
    broad = np.flatnonzero((np.abs(centres[:, 0] - 50) <= 10) & (np.abs(centres[:, 1] - 50) <= 10))
    probabilities[broad] = 0.5 / (len(broad) - 1)
    probabilities[int(np.flatnonzero((centres[:, 0] == 50) & (centres[:, 1] == 50))[0])] = 0.3
    (a, b, mass), = colour_families(probabilities, centres, 1)
    assert abs(a - 50) < 1 and abs(b - 50) < 1 and abs(mass - 0.8) < 1e-6
    assert [round(family[2], 3) for family in colour_families(probabilities, centres, 2)] == [0.8, 0.2]
