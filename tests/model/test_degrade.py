"""Old-photo damage (model/degrade.py) and the grey it starts from."""

import numpy as np
import pytest
from skimage.color import rgb2lab

from retint.model.degrade import degrade_grey, grey_from_rgb


def test_grey_from_rgb_has_the_photos_lab_lightness():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    grey = grey_from_rgb(rgb)
    assert grey.shape == (40, 50) and grey.dtype == np.uint8
    photo_lightness = rgb2lab(rgb)[..., 0]
    grey_lightness = rgb2lab(np.repeat(grey[..., None], 3, axis=2))[..., 0]
    # One grey level is at most about 0.4 L* apart at the steepest (dark) end.
    assert np.abs(photo_lightness - grey_lightness).max() < 0.5


def _photo_like_grey(size=96, seed=0):
    rng = np.random.default_rng(seed)
    low = rng.random((6, 6)).astype(np.float32)
    import cv2

    return (cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def test_damage_keeps_size_and_type_changes_pixels_and_is_seeded():
    grey = _photo_like_grey()
    outputs = [degrade_grey(grey, np.random.default_rng(seed)) for seed in range(12)]
    for damaged in outputs:
        assert damaged.shape == grey.shape and damaged.dtype == np.uint8
        assert np.abs(damaged.astype(int) - grey).mean() > 0.5
    again = degrade_grey(grey, np.random.default_rng(5))
    np.testing.assert_array_equal(again, outputs[5])
    assert len({damaged.tobytes() for damaged in outputs}) == len(outputs)


@pytest.mark.parametrize("seed", range(30))
def test_damage_leaves_the_picture_recognisable(seed):
    """Damage, not destruction: the damaged grey still follows the picture."""
    grey = _photo_like_grey(seed=seed)
    damaged = degrade_grey(grey, np.random.default_rng(seed)).astype(float)
    assert np.corrcoef(damaged.ravel(), grey.astype(float).ravel())[0, 1] > 0.5
