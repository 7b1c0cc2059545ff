import numpy as np
import torch
from skimage import color

from retint.model.metrics import ciede2000, colourfulness, psnr


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
