"""Image-quality metrics in torch: CIEDE2000, PSNR, Hasler-Suesstrunk colourfulness, and the
warm-hue cast (how many sand/brick/wood/skin pixels a colouriser turns green) with its
counterweight (how many foliage pixels it keeps green).

Used by training validation, the export parity gates and the benchmarks, so
there is one implementation of each. CIEDE2000 follows Sharma, Wu & Dalal
(2005) and is computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_POW25_7 = 25.0**7


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 between Lab images [N,3,H,W] -> [N,H,W] (float64)."""
    l1, a1, b1 = lab1.double().unbind(dim=1)
    l2, a2, b2 = lab2.double().unbind(dim=1)
    chroma_mean = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - torch.sqrt(chroma_mean**7 / (chroma_mean**7 + _POW25_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.remainder(torch.rad2deg(torch.atan2(b1, a1p)), 360.0)
    h2p = torch.remainder(torch.rad2deg(torch.atan2(b2, a2p)), 360.0)
    chroma_product = c1p * c2p
    zero_chroma = chroma_product == 0

    delta_l = l2 - l1
    delta_c = c2p - c1p
    hue_difference = h2p - h1p
    delta_h = torch.where(hue_difference > 180.0, hue_difference - 360.0,
                          torch.where(hue_difference < -180.0, hue_difference + 360.0, hue_difference))
    delta_h = torch.where(zero_chroma, torch.zeros_like(delta_h), delta_h)
    delta_big_h = 2.0 * torch.sqrt(chroma_product) * torch.sin(torch.deg2rad(delta_h) / 2.0)

    l_mean = (l1 + l2) / 2.0
    c_mean = (c1p + c2p) / 2.0
    hue_sum = h1p + h2p
    h_mean = torch.where(
        (h1p - h2p).abs() <= 180.0,
        hue_sum / 2.0,
        torch.where(hue_sum < 360.0, (hue_sum + 360.0) / 2.0, (hue_sum - 360.0) / 2.0),
    )
    h_mean = torch.where(zero_chroma, hue_sum, h_mean)

    t = (1.0 - 0.17 * torch.cos(torch.deg2rad(h_mean - 30.0))
         + 0.24 * torch.cos(torch.deg2rad(2.0 * h_mean))
         + 0.32 * torch.cos(torch.deg2rad(3.0 * h_mean + 6.0))
         - 0.20 * torch.cos(torch.deg2rad(4.0 * h_mean - 63.0)))
    delta_theta = 30.0 * torch.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    r_c = 2.0 * torch.sqrt(c_mean**7 / (c_mean**7 + _POW25_7))
    s_l = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / torch.sqrt(20.0 + (l_mean - 50.0) ** 2)
    s_c = 1.0 + 0.045 * c_mean
    s_h = 1.0 + 0.015 * c_mean * t
    r_t = -torch.sin(torch.deg2rad(2.0 * delta_theta)) * r_c
    term_l, term_c, term_h = delta_l / s_l, delta_c / s_c, delta_big_h / s_h
    return torch.sqrt((term_l**2 + term_c**2 + term_h**2 + r_t * term_c * term_h).clamp(min=0.0))


def psnr(rgb1: torch.Tensor, rgb2: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB per image of two RGB batches [N,3,H,W] on the same scale."""
    mse = (rgb1.double() - rgb2.double()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(peak**2 / mse.clamp(min=1e-12))


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness per image; rgb [N,3,H,W] in 0..255."""
    red, green, blue = rgb.double().unbind(dim=1)
    rg = (red - green).flatten(1)
    yb = (0.5 * (red + green) - blue).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    centre = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return spread + 0.3 * centre


# Warm colours: sand, brick, wood, bark, skin. Hue angle h_ab = atan2(b*, a*) in degrees.
WARM_HUE_DEGREES = (20.0, 90.0)
# Green colours: foliage, grass, moss. The counterweight to the warm figure: a
# colouriser that cannot tell the two apart can empty the warm figure only by
# taking the green out of foliage too, and this band shows that.
FOLIAGE_HUE_DEGREES = (100.0, 170.0)
# Below this chroma a reference pixel is nearly grey and its hue means little.
HUE_MIN_CHROMA = 8.0
# An output pixel leans green when its a* is below this (not 0: uint8 rounding of a grey
# gives |a*| of a few tenths).
GREEN_A_STAR = -1.0
# Colour families (issue 31): a reference pixel of chroma >= 10 is coloured in
# the right family when the candidate has chroma >= 5 and a hue within 30
# degrees of the reference's, clearly wrong when over 60 degrees off.
FAMILY_MIN_REFERENCE_CHROMA = 10.0
FAMILY_MIN_CANDIDATE_CHROMA = 5.0
FAMILY_RIGHT_DEGREES = 30.0
FAMILY_WRONG_DEGREES = 60.0


@dataclass(frozen=True)
class HueBandRendering:
    """How the candidate renders the reference's pixels of one hue band, pooled over all images."""

    pixels: int  # reference pixels with a hue in the band and chroma >= HUE_MIN_CHROMA
    share_of_pixels: float  # pixels / all pixels
    green_side: float  # share of those pixels whose candidate a* < GREEN_A_STAR
    mean_a_shift: float  # mean candidate a* - reference a* over them (negative: greener)


def hue_band_rendering(candidate_lab: torch.Tensor, reference_lab: torch.Tensor,
                       degrees: tuple[float, float]) -> HueBandRendering:
    """On pixels whose reference hue lies in `degrees` (chroma >= 8), the share the candidate
    gives a green-side a* and the mean a* shift. Lab tensors [N,3,H,W]."""
    a, b = reference_lab[:, 1], reference_lab[:, 2]
    hue = torch.rad2deg(torch.atan2(b, a))
    band = (hue >= degrees[0]) & (hue <= degrees[1]) & (torch.hypot(a, b) >= HUE_MIN_CHROMA)
    count = int(band.sum())
    if count == 0:
        return HueBandRendering(0, 0.0, 0.0, 0.0)
    candidate_a = candidate_lab[:, 1][band]
    return HueBandRendering(pixels=count, share_of_pixels=count / band.numel(),
                            green_side=float((candidate_a < GREEN_A_STAR).double().mean()),
                            mean_a_shift=float((candidate_a - a[band]).double().mean()))


def warm_hue_cast(candidate_lab: torch.Tensor, reference_lab: torch.Tensor) -> HueBandRendering:
    """The olive cast of a mean-seeking colouriser as a number: of the pixels whose reference is
    warm (hue 20-90 degrees), the share the candidate turned green (`green_side`; lower is
    better). A grey candidate scores 0 and the reference itself 0."""
    return hue_band_rendering(candidate_lab, reference_lab, WARM_HUE_DEGREES)


def foliage_kept_green(candidate_lab: torch.Tensor, reference_lab: torch.Tensor) -> HueBandRendering:
    """Of the pixels whose reference is green (hue 100-170 degrees), the share the candidate kept
    green (`green_side`; higher is better). A grey candidate scores 0."""
    return hue_band_rendering(candidate_lab, reference_lab, FOLIAGE_HUE_DEGREES)


@dataclass(frozen=True)
class ColourFamilies:
    """How often the candidate gives a coloured reference pixel its colour family."""

    pixels: int  # reference pixels with chroma >= FAMILY_MIN_REFERENCE_CHROMA
    right: float  # share with candidate chroma >= FAMILY_MIN_CANDIDATE_CHROMA, hue within 30 degrees
    clearly_wrong: float  # share with candidate chroma >= FAMILY_MIN_CANDIDATE_CHROMA, hue over 60 degrees off


def colour_families(candidate_lab: torch.Tensor, reference_lab: torch.Tensor) -> ColourFamilies:
    """Over the reference pixels of chroma >= 10, the share the candidate colours in the right
    family (chroma >= 5 and hue within 30 degrees) and the share clearly wrong (chroma >= 5 and
    hue more than 60 degrees off). A grey candidate scores 0 on both. Lab tensors [N,3,H,W]."""
    a, b = reference_lab[:, 1], reference_lab[:, 2]
    coloured = torch.hypot(a, b) >= FAMILY_MIN_REFERENCE_CHROMA
    count = int(coloured.sum())
    if count == 0:
        return ColourFamilies(0, 0.0, 0.0)
    ca, cb = candidate_lab[:, 1][coloured], candidate_lab[:, 2][coloured]
    shown = torch.hypot(ca, cb) >= FAMILY_MIN_CANDIDATE_CHROMA
    difference = torch.rad2deg(torch.atan2(cb, ca) - torch.atan2(b[coloured], a[coloured])).abs() % 360.0
    difference = torch.minimum(difference, 360.0 - difference)
    return ColourFamilies(pixels=count,
                          right=float((shown & (difference <= FAMILY_RIGHT_DEGREES)).double().mean()),
                          clearly_wrong=float((shown & (difference > FAMILY_WRONG_DEGREES)).double().mean()))
