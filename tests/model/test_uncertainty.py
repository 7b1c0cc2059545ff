"""The uncertainty head's loss, and conformal calibration on synthetic data whose truth is known."""

import numpy as np
import pytest
import torch

from retint.model.uncertainty import (
    CalibrationError,
    IntervalHead,
    calibrate,
    constant_width_for,
    interval_pinball_loss,
    interval_width,
    miscoverage,
    scale_needed,
)


def synthetic(count, seed, size=32):
    """Predictions with Gaussian errors whose spread varies per pixel and is known."""
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(size)[None, :, None] < size // 2, 2.0, 20.0) * np.ones((count, size, size))
    ab = rng.normal(0, 10, (count, 2, size, size)).astype(np.float32)
    truth = (ab + rng.normal(0, 1, ab.shape) * sigma[:, None]).astype(np.float32)
    spreads = np.repeat((1.645 * sigma)[:, None], 4, axis=1).astype(np.float32)
    return ab, truth, spreads


def test_scale_needed_is_the_smallest_covering_lambda():
    ab = np.zeros((1, 2, 1, 2), np.float32)
    truth = np.array([[[[-4.0, 1.0]], [[3.0, 0.0]]]], np.float32)
    spreads = np.array([[[[2.0, 2.0]], [[1.0, 1.0]], [[5.0, 5.0]], [[1.5, 1.5]]]], np.float32)
    # pixel 0: a needs 4/2 (down), b needs 3/1.5 (up) -> 2; pixel 1: a needs 1/1 (up) -> 1
    assert scale_needed(ab, spreads, truth).ravel().tolist() == [2.0, 1.0]
    assert miscoverage(scale_needed(ab, spreads, truth), 1.5).tolist() == [0.5]


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_calibrated_intervals_cover_new_exchangeable_photos(alpha):
    ab, truth, spreads = synthetic(60, seed=1)
    calibration = calibrate(scale_needed(ab, spreads, truth), alpha)
    count = calibration.photos
    assert count / (count + 1) * calibration.empirical_risk + 1 / (count + 1) <= alpha
    # The smallest such lambda: a little less breaks the bound.
    smaller = count / (count + 1) * miscoverage(scale_needed(ab, spreads, truth), calibration.scale * 0.98).mean()
    assert smaller + 1 / (count + 1) > alpha
    new_ab, new_truth, new_spreads = synthetic(300, seed=2)
    coverage = 1 - miscoverage(scale_needed(new_ab, new_spreads, new_truth), calibration.scale).mean()
    assert coverage >= 1 - alpha - 0.02


def test_adaptive_intervals_beat_a_constant_one_only_when_they_track_the_error():
    ab, truth, spreads = synthetic(60, seed=3)
    calibration = calibrate(scale_needed(ab, spreads, truth), 0.1)
    coverage = 1 - miscoverage(scale_needed(ab, spreads, truth), calibration.scale).mean()
    constant = constant_width_for(coverage, ab, truth)
    assert interval_width(spreads, calibration.scale).mean() < 0.8 * constant
    flat = np.ones_like(spreads)
    flat_calibration = calibrate(scale_needed(ab, flat, truth), 0.1)
    flat_coverage = 1 - miscoverage(scale_needed(ab, flat, truth), flat_calibration.scale).mean()
    ratio = interval_width(flat, flat_calibration.scale).mean() / constant_width_for(flat_coverage, ab, truth)
    assert ratio == pytest.approx(1.0, abs=0.02)


def test_too_few_calibration_photos_for_alpha_is_an_error():
    ab, truth, spreads = synthetic(5, seed=4)
    with pytest.raises(CalibrationError, match="at least 9"):
        calibrate(scale_needed(ab, spreads, truth), 0.1)


def test_the_head_learns_quantiles_with_the_pinball_loss():
    torch.manual_seed(0)
    head = IntervalHead(width=4)
    lightness = torch.rand(8, 1, 32, 32) * 2 - 1
    ab = torch.zeros(8, 2, 32, 32)
    # Errors twice as large on the bright half: the head must say so.
    scale = torch.where(lightness > 0, 20.0, 5.0)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for step in range(150):
        truth = torch.randn(8, 2, 32, 32) * scale
        loss = interval_pinball_loss(ab, head(lightness, ab), truth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        spreads = head(lightness, ab)
    bright = spreads[(lightness > 0).expand_as(spreads)].mean()
    dark = spreads[(lightness <= 0).expand_as(spreads)].mean()
    assert bright > 2 * dark
    assert 0.6 * 1.645 * 20 < bright < 1.4 * 1.645 * 20
