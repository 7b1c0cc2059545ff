"""Colour maths in torch: sRGB <-> CIE Lab (D65), normalisation, grey -> L.

Written once and used everywhere: training converts batches with it on the
training device, and the export traces it into the ONNX graph, so the engine
does exactly this arithmetic. Constants follow scikit-image (`rgb2lab`,
`lab2rgb`): sRGB companding with the 0.04045 / 0.0031308 breakpoints, the
sRGB->XYZ matrix of `skimage.color.colorconv`, the D65 2-degree white
(0.95047, 1.0, 1.08883) and the CIE 0.008856 / 7.787 linear branch.

All functions are batched over `[N, C, H, W]`, device- and dtype-agnostic and
differentiable. Every power sees a clamped, positive base, so neither values
nor gradients are NaN. The arithmetic is shaped for the exported graph, where
each operation is a pass over a full-resolution image on ONNX Runtime's CPU
provider: no `Where`, powers as exp/log, one power for a grey input, and
channels kept as separate planes in the compose (see `grey_terms` and
`linear_rgb_in_gamut`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# sRGB (linear) -> XYZ, as in scikit-image.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# Its inverse, computed once in float64 (scikit-image uses linalg.inv too) and
# kept as plain numbers so the exported graph holds a constant, not an inverse.
RGB_FROM_XYZ = tuple(
    tuple(float(value) for value in row)
    for row in torch.linalg.inv(torch.tensor(XYZ_FROM_RGB, dtype=torch.float64)).tolist()
)
D65_WHITE = (0.95047, 1.0, 1.08883)

# Normalisation of the network's inputs and outputs.
L_SCALE = 50.0  # L in [0, 100] -> L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # ab in about [-110, 110] -> ab / 110 in [-1, 1]

_LAB_EPSILON = 0.008856
_LAB_KAPPA = 7.787
_LAB_F_AT_EPSILON = _LAB_EPSILON ** (1.0 / 3.0)
# scikit-image's breakpoint of the inverse transform (f(t) at t = epsilon, rounded).
_LAB_INVERSE_BREAK = 0.2068966
# The knees of the sRGB curve, in encoded and in linear values.
_SRGB_KNEE = 0.04045
_LINEAR_KNEE = 0.0031308


def _apply_matrix(matrix: tuple[tuple[float, ...], ...], image: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector by `matrix`: [N,3,H,W] -> [N,3,H,W].

    Written as scalar multiply-adds rather than einsum or a 1x1 convolution:
    both export, but TensorRT's Einsum support is partial and GPU convolutions
    may run in TF32, which costs the colour maths its float32 accuracy.
    """
    channels = image.unbind(dim=1)
    rows = [sum(weight * channel for weight, channel in zip(row, channels)) for row in matrix]
    return torch.stack(rows, dim=1)


def _power(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """base ** exponent for a positive base, as exp(exponent * log(base)).

    The same value to float32 rounding, but ONNX Runtime's CPU Pow is a
    scalar loop (2.2 ms per megapixel-sized image here) where Log + Mul + Exp
    take 1.2 ms, and every base here is clamped above zero first.
    """
    return torch.exp(exponent * torch.log(base))


# Every piecewise curve below is written as curve(max(x, knee)) + slope * (min(x, knee) - knee).
# The two pieces meet at the knee (to within 4e-8), so this equals the
# textbook `where(x > knee, curve, line)` without a Where: ONNX Runtime runs
# Where several times slower than arithmetic, and the pow only ever sees a
# base at or above the knee, so neither the value nor the gradient is NaN.


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo sRGB companding; `rgb` in [0, 1]."""
    curved = _power((rgb.clamp(min=_SRGB_KNEE) + 0.055) / 1.055, 2.4)
    return curved + (rgb.clamp(max=_SRGB_KNEE) - _SRGB_KNEE) / 12.92


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply sRGB companding; the result is not clamped."""
    curved = 1.055 * _power(linear.clamp(min=_LINEAR_KNEE), 1.0 / 2.4) - 0.055
    return curved + 12.92 * (linear.clamp(max=_LINEAR_KNEE) - _LINEAR_KNEE)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    cube_root = _power(t.clamp(min=_LAB_EPSILON), 1.0 / 3.0)
    return cube_root + _LAB_KAPPA * (t.clamp(max=_LAB_EPSILON) - _LAB_EPSILON)


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    top = f.clamp(min=_LAB_INVERSE_BREAK)
    # Multiplications, not `** 3`: the exporter would emit a Pow, which is slow.
    return top * top * top + (f.clamp(max=_LAB_INVERSE_BREAK) - _LAB_INVERSE_BREAK) / _LAB_KAPPA


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], [N,3,H,W] -> Lab [N,3,H,W] (L in [0,100])."""
    linear = srgb_to_linear(rgb)
    xyz = _apply_matrix(XYZ_FROM_RGB, linear)
    white = torch.tensor(D65_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    fx, fy, fz = _lab_f(xyz / white).unbind(dim=1)
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((lightness, a, b), dim=1)


def lab_to_xyz(lab: torch.Tensor) -> torch.Tensor:
    """Lab [N,3,H,W] -> XYZ [N,3,H,W] (D65)."""
    lightness, a, b = lab.unbind(dim=1)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    # scikit-image clips a negative f(Z) to 0 (with a warning) before inverting.
    fz = torch.clamp(fy - b / 200.0, min=0.0)
    white = torch.tensor(D65_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    return _lab_f_inverse(torch.stack((fx, fy, fz), dim=1)) * white


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab [N,3,H,W] -> sRGB [N,3,H,W], clipped to [0, 1] per channel like scikit-image."""
    linear = _apply_matrix(RGB_FROM_XYZ, lab_to_xyz(lab))
    return linear_to_srgb(linear).clamp(0.0, 1.0)


class GreyTerms(NamedTuple):
    """What Lab needs of a neutral grey (g, g, g), per pixel, float32 [N,1,H,W].

    For a neutral grey every linear channel equals the luminance Y (the rows
    of the sRGB->XYZ matrix for Y sum to 1), so `luminance` is also the linear
    R, G and B; `f_y` is Lab's f(Y), from which L = 116 f(Y) - 16.
    """

    f_y: torch.Tensor
    luminance: torch.Tensor

    @property
    def lightness(self) -> torch.Tensor:
        """Lab L of the grey: 116 f(Y) - 16."""
        return 116.0 * self.f_y - 16.0


def grey_terms(gray: torch.Tensor) -> GreyTerms:
    """f(Y) and Y of the grey sRGB colour (g, g, g); `gray` holds 0..255 values.

    One pow for both: above the sRGB knee Y = u**2.4 with u = (g/255 + 0.055)/1.055,
    so u**0.8 is Y's cube root, which is f(Y) above Lab's knee, and its cube
    is Y. Below either knee the straight segments take over, as in
    `srgb_to_linear` and `_lab_f` (the tests compare with both).
    """
    values = gray.float() if not gray.is_floating_point() else gray
    encoded = (values / 255.0 + 0.055) / 1.055
    knee = (_SRGB_KNEE + 0.055) / 1.055
    cube_root = _power(encoded.clamp(min=knee), 0.8)
    level_knee = 255.0 * _SRGB_KNEE
    luminance = cube_root * cube_root * cube_root + (values.clamp(max=level_knee) - level_knee) / (255.0 * 12.92)
    f_y = cube_root.clamp(min=_LAB_F_AT_EPSILON) + _LAB_KAPPA * (luminance.clamp(max=_LAB_EPSILON) - _LAB_EPSILON)
    return GreyTerms(f_y, luminance)


def normalize_lightness(lightness: torch.Tensor) -> torch.Tensor:
    """Lab L in [0, 100] -> the generator's input range [-1, 1] (L / 50 - 1)."""
    return lightness / L_SCALE - 1.0


def denormalize_lightness(normalized: torch.Tensor) -> torch.Tensor:
    """The generator's [-1, 1] lightness back to Lab L in [0, 100]."""
    return (normalized + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Lab a, b -> the generator's output scale, about [-1, 1] (ab / 110)."""
    return ab / AB_SCALE


def denormalize_ab(normalized: torch.Tensor) -> torch.Tensor:
    """The generator's a*b* output (ab / 110) back to Lab units."""
    return normalized * AB_SCALE


def chroma_offsets(ab: torch.Tensor) -> torch.Tensor:
    """Lab a, b [N,2,h,w] -> the offsets they add to f(Y): (a/500, -b/200).

    Linear, so it commutes with a bilinear resize: the deploy graph scales the
    small render-size map and upsamples the result, saving two full-size passes.
    """
    scale = torch.tensor((1.0 / 500.0, -1.0 / 200.0), dtype=ab.dtype, device=ab.device).view(1, 2, 1, 1)
    return ab * scale


def linear_rgb_in_gamut(grey: GreyTerms, offset_a: torch.Tensor, offset_b: torch.Tensor) -> list[torch.Tensor]:
    """Lab (grey's L, a, b) -> linear R, G, B [N,1,H,W] each, fitted into [0, 1].

    The offsets are `chroma_offsets` at full size. Channels stay separate
    tensors (no stack, split or broadcast over channels): at full resolution
    every pass over the pixels counts.

    Colours outside sRGB are blended toward the grey of the same luminance,
    (Y, Y, Y), just far enough that every channel fits. Y is linear in RGB
    and the grey has the same Y, so the blend keeps Y and with it Lab L
    exactly, where clamping each channel would brighten or darken the pixel.
    The blend factor has a closed form: for each channel, the room left
    between Y and the bound it crosses.
    """
    luminance = grey.luminance
    x_over_white = _lab_f_inverse(grey.f_y + offset_a)
    # scikit-image clips a negative f(Z) to 0 (with a warning) before inverting.
    z_over_white = _lab_f_inverse((grey.f_y + offset_b).clamp(min=0.0))
    # Each channel's distance from Y, M (X, Y, Z) - Y, with the white point and
    # the "- Y" folded into the coefficients (Y's white is 1).
    away = [(row[0] * D65_WHITE[0]) * x_over_white + (row[1] - 1.0) * luminance + (row[2] * D65_WHITE[2]) * z_over_white
            for row in RGB_FROM_XYZ]
    above = torch.maximum(torch.maximum(away[0], away[1]), away[2])
    below = torch.minimum(torch.minimum(away[0], away[1]), away[2])
    # Y is in [0, 1], so the room above is 1 - Y and below is Y; a channel
    # inside the bounds leaves a ratio of at least 1, so the clamp at 1 keeps it.
    room_above = (1.0 - luminance) / above.clamp(min=1e-9)
    room_below = luminance / (-below).clamp(min=1e-9)
    blend = torch.minimum(room_above, room_below).clamp(max=1.0)
    return [luminance + blend * channel for channel in away]


def compose_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L [N,1,H,W] and ab [N,2,H,W] in Lab units -> sRGB [N,3,H,W] in [0,1].

    Unlike `lab_to_rgb` (which clips per channel, like scikit-image), colours
    outside sRGB are desaturated at constant luminance (`linear_rgb_in_gamut`),
    so the result keeps the given lightness.
    """
    f_y = (lightness + 16.0) / 116.0
    grey = GreyTerms(f_y, _lab_f_inverse(f_y))
    offsets = chroma_offsets(ab)
    channels = linear_rgb_in_gamut(grey, offsets[:, :1], offsets[:, 1:])
    return linear_to_srgb(torch.cat(channels, dim=1)).clamp(0.0, 1.0)


def linear_to_srgb_uint8(linear: torch.Tensor) -> torch.Tensor:
    """Linear [0, 1] -> sRGB uint8, the same values as `rgb_to_uint8(linear_to_srgb(x))`.

    The 255 and the rounding half are folded into the curve's constants (one
    pass fewer each); the explicit floor makes the cast exact whatever
    rounding mode the backend's float-to-int cast uses.
    """
    curved = (255.0 * 1.055) * _power(linear.clamp(min=_LINEAR_KNEE), 1.0 / 2.4)
    straight = (255.0 * 12.92) * linear.clamp(max=_LINEAR_KNEE)
    offset = 255.0 * (-0.055 - 12.92 * _LINEAR_KNEE) + 0.5
    return torch.floor((curved + straight + offset).clamp(0.0, 255.0)).to(torch.uint8)


def rgb_uint8_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [N,3,H,W] (any device) -> Lab float32 [N,3,H,W]."""
    return rgb_to_lab(rgb.float() / 255.0)


def rgb_to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """[0,1] float -> uint8, rounding half up (what the exported graph does)."""
    return torch.floor(rgb.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
