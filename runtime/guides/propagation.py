"""Hints that hold exactly, on every model: a user's colour points spread over the model's a*b*
along regions of similar lightness (Levin, Lischinski, Weiss 2004), by a fast global smoother
(Min et al. 2014: edge-aware weighted least squares, solved as 1-D tridiagonal systems along rows,
then columns, a few times with a shrinking weight; plain numpy: at the grid's 128 side it costs
about as much as OpenCV-contrib's filter would, without a second OpenCV).

At render size (the generator's a*b*, guided by the render-size lightness), for one image:

1. local: the hints' colours, and their mask, smoothed with edges at lightness steps, then
   divided (sparse-data interpolation: each pixel gets the colour of the hints its region
   reaches); their reach `c` (the smoothed mask over its value at the hints, with a soft knee)
   fades with distance and stops at edges;
2. non-local: where no hint reaches, pixels of a lightness near a hint's take part of its colour
   (a kernel over L*: what a photo's own colours per lightness band give, from the hints alone);
3. the model's colours are weakened by how far they are from the hints at the hints (a model that
   is wrong where the user looked is trusted less elsewhere);
4. out = c * local + (1 - c) * (non-local over the weakened model), and each hint's own patch
   is set to the hint's colour exactly, so the compose's bilinear upsampling shows the hint's
   a*b* at the hinted pixel whatever the network predicted there.

Every setting below was chosen by measurement on training photos and checked on held-out
sources (benchmarks/README.md, "Guides on every model", has the figures and the choices).
numpy and OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from retint.runtime.guides.hints import HINT_HALF_WIDTH

# Hints are smoothed on a grid of at most this side: the correction is smooth, and the compose
# upsamples the chroma anyway (a 256 side costs four times as much, and scored no better).
SMOOTHING_SIDE = 128
# L* values of the non-local kernel's table (0..100 in steps of 1).
LIGHTNESS_LEVELS = 101

# row, column (the a*b* grid's cell that holds the hinted pixel: `hints.grid_cell`), a*, b*. The hint
# covers HINT_HALF_WIDTH cells around it: the compose's bilinear upsampling of the hinted pixel then
# reads only hint-coloured cells, so the hinted pixel shows the hint exactly.
HintCell = tuple[int, int, float, float]


@dataclass(frozen=True)
class PropagationSettings:
    """How hints spread (module doc); defaults chosen by measurement."""

    smoothness: float = 2500.0  # the smoother's lambda on the SMOOTHING_SIDE grid (pixels^2)
    edge_lightness: float = 4.0  # neighbours' weight exp(-|delta L*| / this): an L* step this big is an edge
    iterations: int = 2  # the smoother's passes (rows then columns each)
    fade: float = 0.3  # the reach's knee: c = m / (m + fade * m_hint) * (1 + fade), capped at 1
    lightness_width: float = 5.0  # the non-local kernel's width in L*
    lightness_share: float = 0.5  # the largest share the non-local colours take
    disagreement: float = 40.0  # the model's colours are scaled by exp(-mean |hint - model| / this)


def fast_global_smooth(values: np.ndarray, lightness: np.ndarray, smoothness: float, edge_lightness: float,
                       iterations: int) -> np.ndarray:
    """values float32 [C,H,W] smoothed with edges where `lightness` [H,W] (L*) steps (Min et al. 2014):
    each pass solves (I + lambda_t A) u = f along every row, then every column, A the weighted
    1-D Laplacian; lambda_t = 1.5 lambda 4^(T-t) / (4^T - 1)."""
    values = np.ascontiguousarray(values, np.float32)
    guide = lightness.astype(np.float32)
    across = np.exp(-np.abs(np.diff(guide, axis=1)) / edge_lightness)  # [H, W-1]
    down = np.ascontiguousarray(np.exp(-np.abs(np.diff(guide, axis=0)) / edge_lightness).T)  # [W, H-1]
    for step in range(iterations):
        weight = 1.5 * smoothness * 4.0 ** (iterations - step - 1) / (4.0 ** iterations - 1.0)
        values = _solve_lines(values, across, weight)
        values = _solve_lines(values.transpose(0, 2, 1), down, weight).transpose(0, 2, 1)
    return np.ascontiguousarray(values)


def _solve_lines(values: np.ndarray, weights: np.ndarray, smoothness: float) -> np.ndarray:
    """(I + smoothness A) u = values along the last axis of values [C,H,W]; `weights` [H,W-1] couple
    neighbours. The Thomas algorithm, one sweep down and one up, every line and channel at once (a
    strictly diagonally dominant system: no pivoting needed)."""
    channels, height, width = values.shape
    coupling = (weights * smoothness).astype(np.float32)  # [H,W-1]
    diagonal = np.ones((height, width), np.float32)
    diagonal[:, :-1] += coupling
    diagonal[:, 1:] += coupling
    upper = np.empty((height, max(width - 1, 1)), np.float32)  # the sweep's modified super-diagonal
    swept = np.empty((channels, height, width), np.float32)
    denominator = diagonal[:, 0]
    if width > 1:
        upper[:, 0] = -coupling[:, 0] / denominator
    swept[:, :, 0] = values[:, :, 0] / denominator
    for column in range(1, width):
        denominator = diagonal[:, column] + coupling[:, column - 1] * upper[:, column - 1]
        if column < width - 1:
            upper[:, column] = -coupling[:, column] / denominator
        swept[:, :, column] = (values[:, :, column] + coupling[:, column - 1] * swept[:, :, column - 1]) / denominator
    solution = np.empty_like(swept)
    solution[:, :, -1] = swept[:, :, -1]
    for column in range(width - 2, -1, -1):
        solution[:, :, column] = swept[:, :, column] - upper[:, column] * solution[:, :, column + 1]
    return solution


def propagate_hints(ab: np.ndarray, lightness: np.ndarray, cells: Sequence[HintCell],
                    settings: PropagationSettings = PropagationSettings()) -> np.ndarray:
    """ab float32 [2,r,r] (the model's, CIELAB) with the hints `cells` spread over it (module doc),
    guided by `lightness` [r,r] (L* 0..100). No hints: `ab` itself."""
    if not cells:
        return ab
    side_y, side_x = ab.shape[1:]
    ab = ab.astype(np.float32)
    hinted = np.zeros((2, side_y, side_x), np.float32)
    mask = np.zeros((side_y, side_x), np.float32)
    for row, column, a, b in cells:
        rows = slice(max(0, row - HINT_HALF_WIDTH), row + HINT_HALF_WIDTH + 1)
        columns = slice(max(0, column - HINT_HALF_WIDTH), column + HINT_HALF_WIDTH + 1)
        hinted[0, rows, columns], hinted[1, rows, columns] = a, b
        mask[rows, columns] = 1.0
    local, reach = _local(hinted, mask, lightness, settings)
    hint_ab = np.array([[a, b] for _, _, a, b in cells], np.float32)  # [P,2]
    model_at_hints = np.array([ab[:, row, column] for row, column, _, _ in cells], np.float32)
    disagreement = float(np.linalg.norm(hint_ab - model_at_hints, axis=1).mean())
    base = ab * np.float32(np.exp(-disagreement / settings.disagreement))
    hint_lightness = np.array([lightness[row, column] for row, column, _, _ in cells], np.float32)
    base = _blend_by_lightness(base, lightness, hint_lightness, hint_ab, settings)
    out = reach * local + (1.0 - reach) * base
    return np.where(mask[None] > 0, hinted, out).astype(np.float32)


def _local(hinted: np.ndarray, mask: np.ndarray, lightness: np.ndarray,
           settings: PropagationSettings) -> tuple[np.ndarray, np.ndarray]:
    """(the hints' colours spread over their regions [2,r,r], their reach 0..1 [r,r])."""
    side_y, side_x = mask.shape
    small = (min(side_x, SMOOTHING_SIDE), min(side_y, SMOOTHING_SIDE))
    stack = np.concatenate([hinted * mask, mask[None]])
    if small != (side_x, side_y):
        stack = np.stack([cv2.resize(plane, small, interpolation=cv2.INTER_AREA) for plane in stack])
        guide = cv2.resize(lightness.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    else:
        guide = lightness.astype(np.float32)
    smooth = fast_global_smooth(stack, guide, settings.smoothness, settings.edge_lightness, settings.iterations)
    if small != (side_x, side_y):
        smooth = np.stack([cv2.resize(plane, (side_x, side_y), interpolation=cv2.INTER_LINEAR) for plane in smooth])
    mass = np.maximum(smooth[2], 0.0)
    local = smooth[:2] / np.maximum(mass, 1e-12)
    at_hints = float(np.median(mass[mask > 0]))
    knee = settings.fade * max(at_hints, 1e-12)
    reach = np.minimum(mass / (mass + knee) * (1.0 + settings.fade), 1.0)
    return local, reach


def _blend_by_lightness(base: np.ndarray, lightness: np.ndarray, hint_lightness: np.ndarray, hint_ab: np.ndarray,
                        settings: PropagationSettings) -> np.ndarray:
    """`base` with the hints' colours by lightness: a table over L* of the kernel-weighted mean hint
    colour and its share, read per pixel at its nearest level (the kernel is 5 levels wide)."""
    kernel = lightness_kernel(hint_lightness, settings.lightness_width)  # [levels,P]
    total = kernel.sum(1)
    colour = (kernel @ hint_ab / np.maximum(total, 1e-12)[:, None]).astype(np.float32)  # [levels,2]
    share = (settings.lightness_share * total / (total + 1.0)).astype(np.float32)
    level = level_index(lightness)
    weight, a, b = share[level], colour[level, 0], colour[level, 1]
    return np.stack([weight * a + (1 - weight) * base[0], weight * b + (1 - weight) * base[1]])


def lightness_kernel(centres: np.ndarray, width: float) -> np.ndarray:
    """[LIGHTNESS_LEVELS, P]: a Gaussian of `width` L* around each of the P L* values `centres`,
    at L* 0, 1, ..., 100 (the table `level_index` reads)."""
    levels = np.linspace(0.0, 100.0, LIGHTNESS_LEVELS, dtype=np.float32)
    return np.exp(-0.5 * ((levels[:, None] - centres[None]) / width) ** 2)


def level_index(lightness: np.ndarray) -> np.ndarray:
    """The row of a LIGHTNESS_LEVELS table (L* 0, 1, ..., 100) nearest each L* of `lightness`."""
    scale = (LIGHTNESS_LEVELS - 1) / 100.0
    return np.rint(np.clip(lightness, 0.0, 100.0) * scale).astype(np.intp)
