"""Training pieces of the distribution head: simulated hints, global hints, the loss, pasting."""

import numpy as np
import torch

from retint.model.bins import gamut_bin_centres, nearest_bin
from retint.model.colour import AB_SCALE
from retint.model.data import paste_cut_out
from retint.model.distribution_training import (
    distribution_loss,
    head_sized,
    simulate_global_hint,
    simulate_point_hints,
)

CENTRES = torch.from_numpy(gamut_bin_centres())


def test_no_hints_when_the_fraction_is_zero():
    ab = torch.randn(4, 2, 32, 32) * 30
    hint_ab, mask = simulate_point_hints(ab, 0.0, torch.Generator().manual_seed(0))
    assert hint_ab.abs().sum() == 0 and mask.sum() == 0


def test_hints_hold_the_truths_patch_colour():
    ab = torch.zeros(8, 2, 32, 32)
    ab[:, 0], ab[:, 1] = 35.0, -20.0  # one flat colour: every patch mean is that colour
    hint_ab, mask = simulate_point_hints(ab, 1.0, torch.Generator().manual_seed(1))
    assert (mask.flatten(1).sum(1) > 0).all()  # every sample got at least one point
    hinted = mask[:, 0] > 0
    assert torch.allclose(hint_ab[:, 0][hinted] * AB_SCALE, torch.tensor(35.0), atol=1e-4)
    assert torch.allclose(hint_ab[:, 1][hinted] * AB_SCALE, torch.tensor(-20.0), atol=1e-4)
    assert (hint_ab.abs().sum(1) > 0).eq(mask[:, 0] > 0).all()  # colour only where the mask is
    assert mask.unique().tolist() == [0.0, 1.0]


def test_hints_are_seeded():
    ab = torch.randn(4, 2, 32, 32) * 30
    first = simulate_point_hints(ab, 0.5, torch.Generator().manual_seed(2))
    second = simulate_point_hints(ab, 0.5, torch.Generator().manual_seed(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_global_hint_is_the_windows_histogram_with_a_flag():
    ab = torch.zeros(16, 2, 16, 16)
    ab[:, 0], ab[:, 1] = -40.0, 40.0
    hints = simulate_global_hint(ab, CENTRES, 0.5, torch.Generator().manual_seed(3))
    assert hints.shape == (16, len(CENTRES) + 1)
    given = hints[:, -1] == 1
    assert given.any() and (~given).any()
    assert hints[~given].abs().sum() == 0
    expected_bin = int(nearest_bin(ab[:1, :, :1, :1], CENTRES).flatten())
    assert torch.allclose(hints[given][:, expected_bin], torch.ones(int(given.sum())))


def test_loss_prefers_logits_on_the_true_colour():
    ab = torch.zeros(2, 2, 8, 8)
    ab[:, 0], ab[:, 1] = 20.0, 50.0
    weights = torch.ones(len(CENTRES))
    right = torch.zeros(2, len(CENTRES), 8, 8)
    right[:, int(nearest_bin(ab[:1, :, :1, :1], CENTRES).flatten())] = 8.0
    uniform = torch.zeros_like(right)
    assert distribution_loss(right, ab, CENTRES, weights) < distribution_loss(uniform, ab, CENTRES, weights)
    # Rebalancing weights scale the loss of the pixels whose colour they weigh.
    assert torch.isclose(distribution_loss(uniform, ab, CENTRES, 2 * weights),
                         2 * distribution_loss(uniform, ab, CENTRES, weights))
    assert head_sized(torch.randn(1, 2, 16, 16), (8, 8)).shape == (1, 2, 8, 8)


def test_pasted_cut_out_covers_where_opaque():
    rng = np.random.default_rng(0)
    crop = np.zeros((64, 64, 3), np.uint8)
    cut_out = np.zeros((40, 40, 4), np.uint8)
    cut_out[..., 0] = 200
    cut_out[..., 3] = 255  # fully opaque
    pasted = paste_cut_out(crop, cut_out, rng)
    red = pasted[..., 0] == 200
    assert red.sum() >= (0.25 * 64) ** 2 * 0.9  # at least the smallest paste size
    assert (pasted[~red] == 0).all()
    assert crop.sum() == 0  # the crop itself is untouched


def test_cut_outs_keep_only_images_with_alpha_shrunk(tmp_path):
    import cv2
    import pytest

    from retint.errors import InputError
    from retint.model.data import CUT_OUT_KEPT_SIDE, load_cut_outs

    cv2.imwrite(str(tmp_path / "cat.png"), np.full((300, 400, 4), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "flat.jpg"), np.full((30, 40, 3), 90, np.uint8))
    cut_outs = load_cut_outs(tmp_path)
    assert len(cut_outs) == 1 and cut_outs[0].shape == (192, CUT_OUT_KEPT_SIDE, 4)
    (tmp_path / "cat.png").unlink()
    with pytest.raises(InputError, match="alpha"):
        load_cut_outs(tmp_path)


def test_a_reference_prior_leans_every_pixel_toward_the_references_colours_and_none_is_automatic():
    from retint.model.networks.effnet_distribution import EffNetDistributionUNet

    torch.manual_seed(0)
    network = EffNetDistributionUNet(CENTRES, decoder_width=8, pretrained=False).eval()
    lightness = torch.rand(2, 1, 64, 64) * 2 - 1
    red = nearest_bin(torch.tensor([[[[60.0]], [[40.0]]]]), CENTRES).item()
    reference = torch.zeros(2, len(CENTRES) + 1)
    reference[:, red], reference[:, -1] = 1.0, 1.0  # a reference photo all of one red
    with torch.no_grad():
        automatic = network(lightness)
        absent = network(lightness, global_hint=torch.zeros(2, len(CENTRES) + 1))
        guided = network(lightness, global_hint=reference)
    assert torch.equal(automatic, absent)  # the flag 0: exactly automatic colouring
    share = lambda logits: logits.softmax(1)[:, red].mean()  # noqa: E731
    assert share(guided) > 2 * share(automatic)
