import numpy as np
import pytest
import torch
from skimage import color, data

from retint.model import colour as lab

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


def test_grey_lightness_is_lab_lightness_of_neutral_grey():
    grey = np.arange(256, dtype=np.uint8)
    ours = lab.grey_terms(torch.from_numpy(grey)).lightness.double().numpy()
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


def _textbook_linear(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded > 0.04045, ((encoded + 0.055) / 1.055) ** 2.4, encoded / 12.92)


def _textbook_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)


def test_grey_terms_match_the_piecewise_definitions_at_every_level():
    levels = np.arange(256)
    terms = lab.grey_terms(torch.arange(256, dtype=torch.uint8))
    luminance = _textbook_linear(levels / 255.0)
    assert np.abs(terms.luminance.double().numpy() - luminance).max() < 1e-6
    assert np.abs(terms.f_y.double().numpy() - _textbook_f(luminance)).max() < 1e-6
    assert terms.luminance.dtype == torch.float32


def test_linear_to_srgb_uint8_rounds_like_the_float_formula():
    linear = np.linspace(-0.05, 1.05, 400_001)
    encoded = np.where(linear > 0.0031308, 1.055 * np.clip(linear, 0.0031308, None) ** (1 / 2.4) - 0.055,
                       12.92 * linear)
    scaled = np.clip(encoded, 0.0, 1.0) * 255.0 + 0.5
    expected = np.floor(scaled)
    ours = lab.linear_to_srgb_uint8(torch.tensor(linear, dtype=torch.float32)).numpy()
    differs = ours != expected
    # float32 may round the other way only right at a rounding boundary
    near_boundary = np.abs(scaled - np.round(scaled)) < 2e-3
    assert not (differs & ~near_boundary).any()
    assert np.abs(ours.astype(int) - expected).max() <= 1
    assert ours.dtype == np.uint8


def test_compose_rgb_is_lab_to_rgb_for_colours_inside_srgb():
    rgb = data.astronaut()[::4, ::4] / 255.0
    reference_lab = color.rgb2lab(rgb)
    values = to_tensor(reference_lab)
    ours = to_numpy(lab.compose_rgb(values[:, :1], values[:, 1:]))
    assert np.abs(ours - rgb).max() < 1e-4


def test_compose_rgb_keeps_lightness_where_clipping_would_not():
    rng = np.random.default_rng(2)
    lightness = torch.tensor(rng.uniform(5, 95, (1, 1, 48, 48)), dtype=torch.float32)
    ab = torch.tensor(rng.uniform(-110, 110, (1, 2, 48, 48)), dtype=torch.float32)
    fitted = lab.rgb_to_lab(lab.compose_rgb(lightness, ab))[:, 0]
    clipped = lab.rgb_to_lab(lab.lab_to_rgb(torch.cat((lightness, ab), dim=1)))[:, 0]
    assert (fitted - lightness[:, 0]).abs().max() < 0.01
    assert (clipped - lightness[:, 0]).abs().max() > 5  # the case the fit exists for
    out_of_gamut = lab.lab_to_rgb(torch.cat((lightness, ab), dim=1))
    assert ((out_of_gamut == 0) | (out_of_gamut == 1)).any()
