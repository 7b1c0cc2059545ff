"""Colour maths in torch: sRGB <-> CIE Lab (D65), normalisation, grey -> L.

Written once and used everywhere: training converts batches with it on the
training device, and the export traces it into the ONNX graph, so the engine
does exactly this arithmetic. Constants follow scikit-image (`rgb2lab`,
`lab2rgb`): sRGB companding with the 0.04045 / 0.0031308 breakpoints, the
sRGB->XYZ matrix of `skimage.color.colorconv`, the D65 2-degree white
(0.95047, 1.0, 1.08883) and the CIE 0.008856 / 7.787 linear branch.

All functions are batched over `[N, C, H, W]`, device- and dtype-agnostic and
differentiable. Every `pow` sees a clamped, positive base so that neither the
value nor the gradient of the branch that `torch.where` discards is NaN.
"""

from __future__ import annotations

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
_LAB_OFFSET = 16.0 / 116.0
# f(t) at t = epsilon: the breakpoint of the inverse transform.
_LAB_INVERSE_BREAK = 0.2068966


def _apply_matrix(matrix: tuple[tuple[float, ...], ...], image: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's 3-vector by `matrix`: [N,3,H,W] -> [N,3,H,W].

    Written as scalar multiply-adds rather than einsum or a 1x1 convolution:
    both export, but TensorRT's Einsum support is partial and GPU convolutions
    may run in TF32, which costs the colour maths its float32 accuracy.
    """
    channels = image.unbind(dim=1)
    rows = [sum(weight * channel for weight, channel in zip(row, channels)) for row in matrix]
    return torch.stack(rows, dim=1)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo sRGB companding; `rgb` in [0, 1]."""
    curved = ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(rgb > 0.04045, curved, rgb / 12.92)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply sRGB companding; the result is not clamped."""
    curved = 1.055 * linear.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(linear > 0.0031308, curved, linear * 12.92)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    cube_root = t.clamp(min=_LAB_EPSILON) ** (1.0 / 3.0)
    return torch.where(t > _LAB_EPSILON, cube_root, _LAB_KAPPA * t + _LAB_OFFSET)


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    cube = f.clamp(min=_LAB_INVERSE_BREAK) ** 3
    return torch.where(f > _LAB_INVERSE_BREAK, cube, (f - _LAB_OFFSET) / _LAB_KAPPA)


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


def gray_to_lightness(gray: torch.Tensor) -> torch.Tensor:
    """Lab lightness of the grey sRGB colour (g, g, g).

    `gray` holds 0..255 values (uint8 or float), any shape; the result is L in
    [0, 100], float32 (or the input's float dtype). Since the rows of the
    sRGB->XYZ matrix give Y = 1.0 * linear(g) for a neutral grey, L depends on
    Y alone.
    """
    values = gray.float() if not gray.is_floating_point() else gray
    luminance = srgb_to_linear(values / 255.0)
    return 116.0 * _lab_f(luminance) - 16.0


def normalize_lightness(lightness: torch.Tensor) -> torch.Tensor:
    return lightness / L_SCALE - 1.0


def denormalize_lightness(normalized: torch.Tensor) -> torch.Tensor:
    return (normalized + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(normalized: torch.Tensor) -> torch.Tensor:
    return normalized * AB_SCALE


def fit_to_gamut(linear: torch.Tensor) -> torch.Tensor:
    """Bring linear RGB [N,3,H,W] into [0, 1] without changing its luminance Y.

    An out-of-gamut colour is blended toward the grey of the same luminance,
    (Y, Y, Y), just far enough that every channel fits. Since Y is linear in
    RGB and the grey has the same Y, the blend keeps Y and so Lab L exactly,
    where clamping each channel would brighten or darken the pixel. The scale
    has a closed form, so this is a handful of elementwise operations.
    """
    red, green, blue = linear.unbind(dim=1)
    weights = XYZ_FROM_RGB[1]
    luminance = (weights[0] * red + weights[1] * green + weights[2] * blue).clamp(0.0, 1.0).unsqueeze(1)
    excess_high = (linear - luminance).clamp(min=1e-9)
    excess_low = (luminance - linear).clamp(min=1e-9)
    room = torch.where(linear > 1.0, (1.0 - luminance) / excess_high,
                       torch.where(linear < 0.0, luminance / excess_low, torch.ones_like(linear)))
    scale = room.amin(dim=1, keepdim=True).clamp(0.0, 1.0)
    return luminance + scale * (linear - luminance)


def compose_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L [N,1,H,W] and ab [N,2,H,W] in Lab units -> sRGB [N,3,H,W] in [0,1].

    Unlike `lab_to_rgb` (which clips per channel, like scikit-image), colours
    outside sRGB are desaturated at constant luminance (`fit_to_gamut`), so
    the result keeps the given lightness.
    """
    linear = _apply_matrix(RGB_FROM_XYZ, lab_to_xyz(torch.cat((lightness, ab), dim=1)))
    return linear_to_srgb(fit_to_gamut(linear)).clamp(0.0, 1.0)


def rgb_uint8_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [N,3,H,W] (any device) -> Lab float32 [N,3,H,W]."""
    return rgb_to_lab(rgb.float() / 255.0)


def rgb_to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """[0,1] float -> uint8, rounding half up (what the exported graph does)."""
    return torch.floor(rgb.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
