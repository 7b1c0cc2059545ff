import numpy as np
import pytest
import torch
from skimage import color

from retint.model.metrics import ciede2000, colourfulness, foliage_kept_green, psnr, warm_hue_cast


def test_ciede2000_matches_scikit_image_including_neutral_and_equal_pixels():
    rng = np.random.default_rng(1)
    first = np.stack([rng.uniform(0, 100, (30, 40)), rng.uniform(-100, 100, (30, 40)),
                      rng.uniform(-100, 100, (30, 40))], -1)
    second = first + rng.normal(0, 8, first.shape)
    second[:3] = first[:3]
    second[3:6, :, 1:] = 0
    first[6:8, :, 1:] = 0
    ours = ciede2000(torch.tensor(first).permute(2, 0, 1)[None], torch.tensor(second).permute(2, 0, 1)[None])
    assert np.abs(ours[0].numpy() - color.deltaE_ciede2000(first, second)).max() < 1e-9


def test_colourfulness_is_zero_for_grey_and_grows_with_saturation():
    grey = torch.full((1, 3, 8, 8), 120.0)
    assert float(colourfulness(grey)) == 0.0
    mild = torch.tensor([130.0, 120.0, 110.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    strong = torch.tensor([200.0, 100.0, 30.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    assert 0 < float(colourfulness(mild)) < float(colourfulness(strong))


def test_psnr_of_a_one_level_error():
    first = torch.zeros(1, 3, 4, 4)
    assert abs(float(psnr(first, first + 1 / 255)) - 20 * np.log10(255)) < 1e-6


def _lab(lightness: float, a: float, b: float, shape=(2, 8, 8)) -> torch.Tensor:
    image = torch.empty(shape[0], 3, *shape[1:], dtype=torch.float64)
    image[:, 0], image[:, 1], image[:, 2] = lightness, a, b
    return image


def test_warm_hue_cast_counts_sand_turned_olive_and_nothing_else():
    sand = _lab(70.0, 8.0, 25.0)  # hue 72 degrees, chroma 26: warm
    olive = _lab(70.0, -6.0, 20.0)
    grey = _lab(70.0, 0.0, 0.0)
    cast = warm_hue_cast(olive, sand)
    assert cast.share_of_pixels == 1.0 and cast.green_side == 1.0
    assert cast.mean_a_shift == pytest.approx(-14.0)
    assert warm_hue_cast(sand, sand).green_side == 0.0 and warm_hue_cast(sand, sand).mean_a_shift == 0.0
    assert warm_hue_cast(grey, sand).green_side == 0.0
    # Half the pixels warm, the other half sky (hue about -60 degrees): only the warm half counts.
    reference = sand.clone()
    reference[:, 1:, :, 4:] = torch.tensor([10.0, -20.0], dtype=torch.float64).view(1, 2, 1, 1)
    halves = warm_hue_cast(olive, reference)
    assert halves.share_of_pixels == 0.5 and halves.green_side == 1.0
    # A near-grey reference (chroma below 8) has no warm pixels to judge.
    assert warm_hue_cast(olive, _lab(70.0, 3.0, 4.0)).pixels == 0


def test_foliage_kept_green_shows_what_a_global_warm_shift_costs():
    leaves = _lab(50.0, -20.0, 25.0)  # hue 129 degrees: foliage
    sand = _lab(70.0, 8.0, 25.0)
    olive_leaves, beige_leaves = _lab(50.0, -3.0, 15.0), _lab(50.0, 3.0, 15.0)
    assert foliage_kept_green(leaves, leaves).green_side == 1.0
    assert foliage_kept_green(olive_leaves, leaves).green_side == 1.0
    # Moving every a* up by 6 clears the warm figure, and the foliage figure says what it took.
    assert foliage_kept_green(beige_leaves, leaves).green_side == 0.0
    assert foliage_kept_green(beige_leaves, leaves).mean_a_shift == pytest.approx(23.0)
    # The bands do not overlap: sand is not foliage, leaves are not warm.
    assert foliage_kept_green(sand, sand).pixels == 0 and warm_hue_cast(leaves, leaves).pixels == 0


def test_colour_families_count_right_and_clearly_wrong_hues():
    from retint.model.metrics import colour_families

    def lab(a, b):
        return torch.tensor([[[[50.0]], [[float(a)]], [[float(b)]]]])

    reference = torch.cat([lab(30, 30)] * 4, dim=3)  # hue 45 degrees, chroma 42
    candidate = reference.clone()
    candidate[0, 1:, 0, 1] = torch.tensor([35.0, 10.0])   # hue 16: within 30 degrees, right
    candidate[0, 1:, 0, 2] = torch.tensor([-30.0, 10.0])  # hue 162: clearly wrong
    candidate[0, 1:, 0, 3] = torch.tensor([1.0, 1.0])     # chroma 1.4: too grey to count either way
    families = colour_families(candidate, reference)
    assert families.pixels == 4
    assert families.right == pytest.approx(0.5) and families.clearly_wrong == pytest.approx(0.25)
    grey = reference.clone()
    grey[:, 1:] = 0
    assert colour_families(grey, reference).right == 0 == colour_families(grey, reference).clearly_wrong
    # Hue differences wrap around: 350 and 10 degrees are 20 apart.
    wrap_reference, wrap_candidate = lab(40, -7), lab(40, 7)
    assert colour_families(wrap_candidate, wrap_reference).right == 1.0
    # Nearly grey reference pixels are left out.
    assert colour_families(candidate, lab(3, 3)).pixels == 0


def test_the_numpy_lab_of_the_scores_is_the_torch_colour_maths():
    """colorize-bench quality converts in numpy (retint.colour_metrics, no torch); training and the
    export in torch (model/colour.py). Both must be the same Lab: every grey level and 20,000
    random colours, to float32 rounding."""
    from retint.colour_metrics import rgb_uint8_to_lab as numpy_lab
    from retint.model.colour import rgb_uint8_to_lab as torch_lab

    rng = np.random.default_rng(12)
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    colours = np.concatenate([levels, rng.integers(0, 256, (20000, 3), dtype=np.uint8)])[None, None]  # [1,1,P,3]
    expected = torch_lab(torch.from_numpy(colours).permute(0, 3, 1, 2)).double().numpy()
    assert np.abs(numpy_lab(colours) - expected).max() < 2e-3
