"""The a*b* bins of the distribution head: gamut, soft targets, rebalancing, decoding, histograms."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from retint.model.bins import (
    BIN_STEP,
    DEFAULT_TEMPERATURE,
    ab_histogram,
    annealed_mean,
    chroma_rebalancing_weights,
    colour_families_of_bins,
    decode_ab,
    decoding_of,
    gamut_bin_centres,
    nearest_bin,
    rebalancing_weights,
    rebalancing_weights_by,
    regained_chroma,
    soft_encode,
)
from retint.model.colour import lab_to_rgb, rgb_to_lab
from retint.model.config import GeneratorConfig


@pytest.fixture(scope="module")
def centres():
    return gamut_bin_centres()


def test_bins_are_the_in_gamut_cells_of_a_10_unit_grid(centres):
    assert centres.shape == (262, 2)
    assert np.all(np.mod(centres, BIN_STEP) == 0)
    assert [0.0, 0.0] in centres.tolist()
    # Every sRGB primary and secondary falls in a bin whose centre is within half a cell per axis.
    primaries = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]],
                             dtype=torch.float32).view(6, 3, 1, 1)
    ab = rgb_to_lab(primaries)[:, 1:, 0, 0].numpy()
    nearest = np.abs(ab[:, None] - centres[None]).max(-1).min(1)
    assert nearest.max() <= BIN_STEP / 2 + 1e-4
    # A cell far outside sRGB (saturated magenta-blue corner) is not a bin.
    assert [110.0, -110.0] not in centres.tolist()


def test_soft_targets_sum_to_one_and_peak_at_the_nearest_bin(centres):
    torch.manual_seed(0)
    ab = torch.randn(2, 2, 5, 7) * 40
    targets, nearest = soft_encode(ab, torch.from_numpy(centres))
    assert torch.allclose(targets.sum(1), torch.ones(2, 5, 7), atol=1e-6)
    assert (targets > 0).sum(1).eq(5).all()  # five neighbours
    assert torch.equal(targets.argmax(1), nearest)
    assert torch.equal(nearest, nearest_bin(ab, torch.from_numpy(centres)))


def test_annealed_mean_goes_from_the_mean_to_the_mode(centres):
    centres_t = torch.from_numpy(centres)
    logits = torch.zeros(1, len(centres), 1, 1)
    red, green = nearest_bin(torch.tensor([[[[50.0]], [[30.0]]], [[[-50.0]], [[30.0]]]]), centres_t).flatten()
    logits[0, red] = 3.0
    logits[0, green] = 2.5
    mode = centres_t[red]
    cold = annealed_mean(logits, centres_t, 0.01)[0, :, 0, 0]
    warm = annealed_mean(logits, centres_t, 0.38)[0, :, 0, 0]
    mean = annealed_mean(logits, centres_t, 1.0)[0, :, 0, 0]
    assert torch.allclose(cold, mode, atol=1e-3)
    # Lower temperatures move toward the mode, away from the hedged average.
    assert (cold - mode).norm() < (warm - mode).norm() < (mean - mode).norm()
    uniform = annealed_mean(torch.zeros(1, len(centres), 1, 1), centres_t, 1.0)[0, :, 0, 0]
    assert torch.allclose(uniform, centres_t.mean(0), atol=1e-4)
    # A tensor temperature (the exported graph's input) gives the same.
    assert torch.allclose(annealed_mean(logits, centres_t, torch.tensor([0.38]))[0, :, 0, 0], warm)


def test_family_favoured_decode_leans_to_the_likelier_family_and_keeps_a_single_one(centres):
    """Sand (warm) at 55% and grass (green) at 45%: the annealed mean averages them into an olive
    on the green side; family-favoured leans to sand. A distribution inside one family, or
    one all grey, is read as the annealed mean reads it; grey is a family of its own."""
    centres_t = torch.from_numpy(centres)
    families = colour_families_of_bins(centres_t)
    sand, grass, grey = nearest_bin(torch.tensor([[[[10.0]], [[30.0]]], [[[-30.0]], [[30.0]]], [[[0.0]], [[0.0]]]]),
                                    centres_t).flatten()
    split = torch.full((1, len(centres), 1, 1), -30.0)
    split[0, sand], split[0, grass] = np.log(0.55) * 0.38, np.log(0.45) * 0.38
    annealed = annealed_mean(split, centres_t)[0, :, 0, 0]
    favoured = decode_ab(split, centres_t, "family-favoured", families)[0, :, 0, 0]
    assert abs(float(annealed[0]) - (0.55 * 10 - 0.45 * 30)) < 0.1  # a* -8: green-side olive
    # Each bin weighted by its family's mass: sand's share grows from 0.55 to 0.55^2 / (0.55^2 + 0.45^2).
    share = 0.55**2 / (0.55**2 + 0.45**2)
    assert abs(float(favoured[0]) - (share * 10 - (1 - share) * 30)) < 0.1 and abs(float(favoured[1]) - 30) < 0.1
    orange = nearest_bin(torch.tensor([[[[20.0]], [[30.0]]]]), centres_t).flatten()[0]
    single = torch.full((1, len(centres), 1, 1), -30.0)
    single[0, sand], single[0, orange] = 1.0, 0.5
    assert torch.allclose(decode_ab(single, centres_t, "family-favoured", families), annealed_mean(single, centres_t),
                          atol=0.5)
    with pytest.raises(ValueError, match="unknown decode"):
        decode_ab(split, centres_t, "mode", families)
    # The families: symmetric, each bin in its own, grey bins one family.
    assert torch.equal(families, families.t()) and bool(families.diagonal().all())
    assert int(families[grey].sum()) == int((np.hypot(*centres.T) < 8).sum())


def test_rebalancing_weights_favour_rare_colours(centres):
    prior = np.ones(len(centres))
    grey = int(np.argmin(np.abs(centres).sum(1)))
    prior[grey] = 1000.0
    flat = rebalancing_weights(prior, centres, mix=1.0)
    assert np.allclose(flat, 1.0)
    weights = rebalancing_weights(prior, centres, mix=0.5)
    smoothed_prior = prior / prior.sum()
    assert weights[grey] < 1.0 < weights.max()
    far = int(np.argmax(np.abs(centres).sum(1)))
    assert weights[far] > weights[grey] * 1.5
    assert weights.min() > 0 and np.isfinite(weights).all()
    assert smoothed_prior[grey] > 0.5


def test_histogram_of_one_colour_is_one_bin(centres):
    centres_t = torch.from_numpy(centres)
    ab = torch.zeros(1, 2, 4, 4)
    ab[:, 0] = 41.0
    ab[:, 1] = 19.0
    histogram = ab_histogram(ab, centres_t)
    assert histogram.shape == (1, len(centres))
    assert float(histogram.sum()) == pytest.approx(1.0)
    assert centres[int(histogram.argmax())].tolist() == [40.0, 20.0]


def test_gamut_check_agrees_with_the_colour_maths(centres):
    # Decoded bin centres at mid lightness come back through lab_to_rgb without NaN.
    lab = torch.cat([torch.full((1, 1, len(centres), 1), 60.0),
                     torch.from_numpy(centres).T.reshape(1, 2, len(centres), 1)], dim=1)
    assert torch.isfinite(lab_to_rgb(lab)).all()


def test_chroma_rebalancing_weighs_a_ring_alike_and_keeps_the_hues_balance():
    """Bins of one chroma ring get one weight, a rarer ring a larger one; binwise rebalancing instead
    lifts a rare hue over a common one of the same chroma (the warm-to-green failure)."""
    centres = gamut_bin_centres()
    chroma = np.hypot(centres[:, 0], centres[:, 1])
    hue = np.degrees(np.arctan2(centres[:, 1], centres[:, 0])) % 360
    prior = np.exp(-chroma / 15.0) * np.where((hue > 20) & (hue < 90), 4.0, 1.0)  # warm four times as common
    weights = chroma_rebalancing_weights(prior, centres, 0.9)
    ring = np.rint(chroma / BIN_STEP).astype(int)
    for r in np.unique(ring):
        assert np.ptp(weights[ring == r]) < 1e-5 * weights[ring == r].max()
    by_ring = [weights[ring == r][0] for r in sorted(np.unique(ring))]
    assert all(later > earlier for earlier, later in zip(by_ring, by_ring[1:]))
    squared = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    smoothed = np.exp(-squared / (2 * 5.0**2)) @ (prior / prior.sum())
    assert (weights * smoothed / smoothed.sum()).sum() == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(rebalancing_weights_by(prior, centres, 0.9, "chroma"), weights)
    assert np.array_equal(rebalancing_weights_by(prior, centres, 0.9, "bin"), rebalancing_weights(prior, centres, 0.9))
    with pytest.raises(ValueError, match="unknown rebalancing 'hue'"):
        rebalancing_weights_by(prior, centres, 0.9, "hue")
    binwise = rebalancing_weights(prior, centres, 0.9)
    ring_two = ring == 2
    warm, other = ring_two & (hue > 30) & (hue < 80), ring_two & (hue > 200) & (hue < 300)
    assert binwise[warm].mean() < 0.8 * binwise[other].mean()


def test_the_family_favoured_decode_is_its_formula_at_every_pixel():
    """softmax(logits / T) = p; w = p * (families @ p); ab = sum(w * centres) / sum(w), per pixel,
    on a batch of two with pixels of their own (the decode runs as 1x1 convolutions)."""
    torch.manual_seed(5)
    centres = torch.as_tensor(gamut_bin_centres()).float()
    families = colour_families_of_bins(centres)
    logits = torch.randn(2, len(centres), 3, 5) * 4
    ab = decode_ab(logits, centres, "family-favoured", families, 0.38)
    for n in range(2):
        for y in range(3):
            for x in range(5):
                p = torch.softmax(logits[n, :, y, x].double() / 0.38, dim=0)
                w = p * (families.double() @ p)
                expected = (w[:, None] * centres.double()).sum(0) / w.sum()
                assert torch.allclose(ab[n, :, y, x].double(), expected, atol=1e-4)


def test_the_chroma_gain_stretches_colours_beyond_the_grey_family_and_keeps_every_hue():
    """decode_ab(..., chroma_gain=g): chroma c >= 8 becomes 8 + g (c - 8), under 8 it stays, and no hue
    turns, for either decode; decoding_of reads the gain and the temperature a checkpoint's config
    names (1 and DEFAULT_TEMPERATURE where it names none)."""
    ab = torch.tensor([[3.0, -4.0], [0.0, 0.0], [6.0, 8.0], [-30.0, 40.0], [0.5, -7.9]]).t().reshape(1, 2, 5, 1)
    chroma = torch.hypot(ab[:, 0], ab[:, 1])
    stretched = regained_chroma(ab, 1.5)
    expected = torch.where(chroma >= 8, 8 + 1.5 * (chroma - 8), chroma)
    assert torch.allclose(torch.hypot(stretched[:, 0], stretched[:, 1]), expected, atol=1e-5)
    assert torch.allclose(stretched[:, :, chroma[0, :, 0] < 8], ab[:, :, chroma[0, :, 0] < 8])
    coloured = chroma[0, :, 0] > 0
    assert torch.allclose(torch.atan2(stretched[:, 1], stretched[:, 0])[:, coloured],
                          torch.atan2(ab[:, 1], ab[:, 0])[:, coloured], atol=1e-6)

    torch.manual_seed(6)
    centres = torch.as_tensor(gamut_bin_centres()).float()
    families = colour_families_of_bins(centres)
    logits = torch.randn(2, len(centres), 4, 4) * 3
    for decode, family_table in (("annealed-mean", None), ("family-favoured", families)):
        plain = decode_ab(logits, centres, decode, family_table, 0.38)
        assert torch.equal(decode_ab(logits, centres, decode, family_table, 0.38, 1.0), plain)
        assert torch.allclose(decode_ab(logits, centres, decode, family_table, 0.38, 1.2),
                              regained_chroma(plain, 1.2), atol=1e-6)
    generator = SimpleNamespace(bin_centres=centres,
                                retint_config=GeneratorConfig(decode="family-favoured", chroma_gain=1.1,
                                                              temperature=0.3))
    decoding = decoding_of(generator)
    assert (decoding.decode, decoding.chroma_gain, decoding.temperature) == ("family-favoured", 1.1, 0.3)
    assert torch.equal(decoding.families, families)
    assert decoding_of(SimpleNamespace(bin_centres=centres))[2:] == (1.0, DEFAULT_TEMPERATURE)
