"""Image-quality metrics in numpy: Lab of sRGB uint8, CIEDE2000, PSNR, Hasler-Suesstrunk
colourfulness, the warm-hue cast (how many sand/brick/wood/skin pixels a colouriser turns
green) with its counterweight (how many foliage pixels it keeps green), and colour families.

One implementation of each, without torch, so that `colorize-bench quality` scores an ONNX
or TensorRT engine on a machine that only colours; `retint.model.metrics` wraps these for
torch tensors (training validation, the export's parity gates). Images are [N,C,H,W] arrays,
computed in float64. CIEDE2000 follows Sharma, Wu & Dalal (2005); the Lab conversion uses
scikit-image's constants, as `retint.model.colour` does (a test holds the two together).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# sRGB (linear) -> XYZ and the D65 2-degree white, as in scikit-image (and model/colour.py).
XYZ_FROM_RGB = np.array([(0.412453, 0.357580, 0.180423),
                         (0.212671, 0.715160, 0.072169),
                         (0.019334, 0.119193, 0.950227)])
D65_WHITE = np.array([0.95047, 1.0, 1.08883])
LAB_EPSILON, LAB_KAPPA = 0.008856, 7.787
SRGB_KNEE = 0.04045

_POW25_7 = 25.0**7


def _linear_levels() -> np.ndarray:
    """Linear light of the 256 sRGB levels."""
    encoded = np.arange(256, dtype=np.float64) / 255.0
    return np.where(encoded > SRGB_KNEE, ((encoded + 0.055) / 1.055) ** 2.4, encoded / 12.92)


_LINEAR_LEVELS = _linear_levels()


def rgb_uint8_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB [N,H,W,3] (as photos are held) -> Lab float64 [N,3,H,W] (L in 0..100), D65."""
    linear = _LINEAR_LEVELS[np.asarray(rgb, dtype=np.uint8)]
    xyz = linear @ XYZ_FROM_RGB.T / D65_WHITE
    f = np.where(xyz > LAB_EPSILON, np.cbrt(np.maximum(xyz, LAB_EPSILON)), LAB_KAPPA * xyz + 16.0 / 116.0)
    lab = np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                   axis=1)
    return lab


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 between Lab images [N,3,H,W] -> [N,H,W] (float64)."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), 1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), 1, 0)
    chroma_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - np.sqrt(chroma_mean**7 / (chroma_mean**7 + _POW25_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.remainder(np.degrees(np.arctan2(b1, a1p)), 360.0)
    h2p = np.remainder(np.degrees(np.arctan2(b2, a2p)), 360.0)
    chroma_product = c1p * c2p
    zero_chroma = chroma_product == 0

    delta_l = l2 - l1
    delta_c = c2p - c1p
    hue_difference = h2p - h1p
    delta_h = np.where(hue_difference > 180.0, hue_difference - 360.0,
                       np.where(hue_difference < -180.0, hue_difference + 360.0, hue_difference))
    delta_h = np.where(zero_chroma, 0.0, delta_h)
    delta_big_h = 2.0 * np.sqrt(chroma_product) * np.sin(np.radians(delta_h) / 2.0)

    l_mean = (l1 + l2) / 2.0
    c_mean = (c1p + c2p) / 2.0
    hue_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) <= 180.0, hue_sum / 2.0,
                      np.where(hue_sum < 360.0, (hue_sum + 360.0) / 2.0, (hue_sum - 360.0) / 2.0))
    h_mean = np.where(zero_chroma, hue_sum, h_mean)

    t = (1.0 - 0.17 * np.cos(np.radians(h_mean - 30.0))
         + 0.24 * np.cos(np.radians(2.0 * h_mean))
         + 0.32 * np.cos(np.radians(3.0 * h_mean + 6.0))
         - 0.20 * np.cos(np.radians(4.0 * h_mean - 63.0)))
    delta_theta = 30.0 * np.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    r_c = 2.0 * np.sqrt(c_mean**7 / (c_mean**7 + _POW25_7))
    s_l = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / np.sqrt(20.0 + (l_mean - 50.0) ** 2)
    s_c = 1.0 + 0.045 * c_mean
    s_h = 1.0 + 0.015 * c_mean * t
    r_t = -np.sin(np.radians(2.0 * delta_theta)) * r_c
    term_l, term_c, term_h = delta_l / s_l, delta_c / s_c, delta_big_h / s_h
    return np.sqrt(np.maximum(term_l**2 + term_c**2 + term_h**2 + r_t * term_c * term_h, 0.0))


def psnr(rgb1: np.ndarray, rgb2: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """PSNR in dB per image of two RGB batches [N,...] on the same scale."""
    difference = np.asarray(rgb1, dtype=np.float64) - np.asarray(rgb2, dtype=np.float64)
    mse = (difference**2).reshape(len(difference), -1).mean(axis=1)
    return 10.0 * np.log10(peak**2 / np.maximum(mse, 1e-12))


def colourfulness(rgb: np.ndarray) -> np.ndarray:
    """Hasler & Suesstrunk (2003) colourfulness per image; rgb [N,3,H,W] in 0..255."""
    red, green, blue = np.moveaxis(np.asarray(rgb, dtype=np.float64), 1, 0)
    rg = (red - green).reshape(len(red), -1)
    yb = (0.5 * (red + green) - blue).reshape(len(red), -1)
    spread = np.sqrt(rg.var(axis=1) + yb.var(axis=1))
    centre = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
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


def hue_band_rendering(candidate_lab: np.ndarray, reference_lab: np.ndarray,
                       degrees: tuple[float, float]) -> HueBandRendering:
    """On pixels whose reference hue lies in `degrees` (chroma >= 8), the share the candidate
    gives a green-side a* and the mean a* shift. Lab arrays [N,3,H,W]."""
    a, b = reference_lab[:, 1], reference_lab[:, 2]
    hue = np.degrees(np.arctan2(b, a))
    band = (hue >= degrees[0]) & (hue <= degrees[1]) & (np.hypot(a, b) >= HUE_MIN_CHROMA)
    count = int(band.sum())
    if count == 0:
        return HueBandRendering(0, 0.0, 0.0, 0.0)
    candidate_a = np.asarray(candidate_lab[:, 1][band], dtype=np.float64)
    return HueBandRendering(pixels=count, share_of_pixels=count / band.size,
                            green_side=float((candidate_a < GREEN_A_STAR).mean()),
                            mean_a_shift=float((candidate_a - a[band]).mean()))


def warm_hue_cast(candidate_lab: np.ndarray, reference_lab: np.ndarray) -> HueBandRendering:
    """The olive cast of a mean-seeking colouriser as a number: of the pixels whose reference is
    warm (hue 20-90 degrees), the share the candidate turned green (`green_side`; lower is
    better). A grey candidate scores 0 and the reference itself 0."""
    return hue_band_rendering(candidate_lab, reference_lab, WARM_HUE_DEGREES)


def foliage_kept_green(candidate_lab: np.ndarray, reference_lab: np.ndarray) -> HueBandRendering:
    """Of the pixels whose reference is green (hue 100-170 degrees), the share the candidate kept
    green (`green_side`; higher is better). A grey candidate scores 0."""
    return hue_band_rendering(candidate_lab, reference_lab, FOLIAGE_HUE_DEGREES)


@dataclass(frozen=True)
class ColourFamilies:
    """How often the candidate gives a coloured reference pixel its colour family."""

    pixels: int  # reference pixels with chroma >= FAMILY_MIN_REFERENCE_CHROMA
    right: float  # share with candidate chroma >= FAMILY_MIN_CANDIDATE_CHROMA, hue within 30 degrees
    clearly_wrong: float  # share with candidate chroma >= FAMILY_MIN_CANDIDATE_CHROMA, hue over 60 degrees off


def colour_families(candidate_lab: np.ndarray, reference_lab: np.ndarray) -> ColourFamilies:
    """Over the reference pixels of chroma >= 10, the share the candidate colours in the right
    family (chroma >= 5 and hue within 30 degrees) and the share clearly wrong (chroma >= 5 and
    hue more than 60 degrees off). A grey candidate scores 0 on both. Lab arrays [N,3,H,W]."""
    a, b = reference_lab[:, 1], reference_lab[:, 2]
    coloured = np.hypot(a, b) >= FAMILY_MIN_REFERENCE_CHROMA
    count = int(coloured.sum())
    if count == 0:
        return ColourFamilies(0, 0.0, 0.0)
    ca, cb = candidate_lab[:, 1][coloured], candidate_lab[:, 2][coloured]
    shown = np.hypot(ca, cb) >= FAMILY_MIN_CANDIDATE_CHROMA
    difference = np.abs(np.degrees(np.arctan2(cb, ca) - np.arctan2(b[coloured], a[coloured]))) % 360.0
    difference = np.minimum(difference, 360.0 - difference)
    return ColourFamilies(pixels=count,
                          right=float((shown & (difference <= FAMILY_RIGHT_DEGREES)).mean()),
                          clearly_wrong=float((shown & (difference > FAMILY_WRONG_DEGREES)).mean()))
