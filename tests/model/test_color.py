import numpy as np
import pytest
import torch
from skimage import color, data

from retint.model import color as lab

from imagemaker import natural_like_image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).double().numpy()


IMAGES = {
    "astronaut": lambda: data.astronaut(),
    "chelsea": lambda: data.chelsea(),
    "random": lambda: (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8),
    "synthetic": lambda: natural_like_image(96, 128, 3),
}


@pytest.mark.parametrize("name", IMAGES)
def test_rgb_to_lab_matches_scikit_image(name):
    rgb = IMAGES[name]() / 255.0
    ours = to_numpy(lab.rgb_to_lab(to_tensor(rgb)))
    assert np.abs(ours - color.rgb2lab(rgb)).max() < 1e-3


@pytest.mark.parametrize("name", IMAGES)
def test_lab_to_rgb_matches_scikit_image_and_round_trips(name):
    rgb = IMAGES[name]() / 255.0
    reference_lab = color.rgb2lab(rgb)
    ours = to_numpy(lab.lab_to_rgb(to_tensor(reference_lab)))
    assert np.abs(ours - color.lab2rgb(reference_lab)).max() < 1e-3 / 100
    round_trip = to_numpy(lab.lab_to_rgb(lab.rgb_to_lab(to_tensor(rgb))))
    assert np.abs(round_trip - rgb).max() < 1 / 255


def test_lab_to_rgb_out_of_gamut_matches_scikit_image():
    rng = np.random.default_rng(1)
    values = np.stack([rng.uniform(0, 100, (40, 40)), rng.uniform(-110, 110, (40, 40)),
                       rng.uniform(-110, 110, (40, 40))], -1)
    with pytest.warns(UserWarning):  # scikit-image warns about negative Z values
        reference = color.lab2rgb(values)
    assert np.abs(to_numpy(lab.lab_to_rgb(to_tensor(values))) - reference).max() < 1e-4


def test_gray_to_lightness_is_lab_lightness_of_neutral_grey():
    grey = np.arange(256, dtype=np.uint8)
    ours = lab.gray_to_lightness(torch.from_numpy(grey)).double().numpy()
    neutral = np.repeat((grey / 255.0)[:, None, None], 3, axis=-1)
    assert np.abs(ours - color.rgb2lab(neutral)[:, 0, 0]).max() < 1e-3


def test_normalisation_round_trips():
    values = torch.linspace(0, 100, 11)
    assert torch.allclose(lab.denormalize_lightness(lab.normalize_lightness(values)), values)
    assert lab.normalize_lightness(torch.tensor([0.0, 100.0])).tolist() == [-1.0, 1.0]
    ab = torch.linspace(-110, 110, 11)
    assert torch.allclose(lab.denormalize_ab(lab.normalize_ab(ab)), ab)


def test_conversions_are_batched_and_differentiable():
    rgb = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    rgb[0, :, 0, 0] = 0.0  # the branch points must not produce NaN gradients
    rgb[1, :, 0, 0] = 1.0
    rgb.requires_grad_(True)
    out = lab.lab_to_rgb(lab.rgb_to_lab(rgb))
    out.sum().backward()
    assert out.shape == rgb.shape
    assert torch.isfinite(rgb.grad).all()
