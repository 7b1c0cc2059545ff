"""The deploy module: the whole colouriser as one torch module, traced to ONNX.

    gray uint8 [N,1,H,W]
      -> L (Lab lightness of the grey)            full resolution, float32
      -> area-resize L to render size R x R       (TensorRT-friendly, see below)
      -> L/50 - 1 -> generator (eval) -> ab = 110 * out     (FP16 in the fp16 graph)
      -> bilinear upsample ab to H x W
      -> Lab(L, ab) -> sRGB -> clamp, round -> uint8 [N,H,W,3]

Only chroma is predicted; the output keeps the input's own full-resolution
lightness. All colour maths comes from `retint.model.colour`.

The same graph in three stages, for callers that run the parts on different
backends or process chroma between them: `LightnessStage` (gray -> L at
render size), `GeneratorStage` (L -> ab at render size: the only part with
weights, and the only one at a fixed shape) and `Composer` (gray + ab -> rgb).
A distribution head (colour model v2) has a fourth, `DistributionStage` (L and
the colour controls -> ab, calibrated intervals and the logits over the bins),
for suggestions and uncertainty. Where the checkpoint has a calibrated
uncertainty head (a regression), a fourth,
`IntervalStage` (L + ab -> a_low, a_high, b_low, b_high at render size, lambda
built in), reads the first two stages' outputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from retint.model.bins import decode_ab, decoding_of, distribution_spreads, release_temperature
from retint.model.uncertainty import IntervalHead, interval_bounds
from retint.model.colour import (
    GreyTerms,
    chroma_offsets,
    denormalize_ab,
    grey_terms,
    linear_rgb_in_gamut,
    linear_to_srgb_uint8,
    normalize_ab,
    normalize_lightness,
)

PRECISIONS = ("fp32", "fp16")
# The guided upsampling's window (cells of the head's grid either side) and regularisation (in
# (L/50 - 1)^2 units: 0.01 is a lightness spread of 5 L units; flatter regions keep the plain
# smooth colours). Chosen by measurement (MODEL_CARD.md, "Colour model v2").
GUIDE_RADIUS = 1
GUIDE_EPSILON = 0.01


def _grey_lightness_table() -> torch.Tensor:
    """L/50 - 1 of each grey level 0..255, float32 [256]."""
    levels = torch.arange(256, dtype=torch.float32).view(1, 1, 1, 256)
    return normalize_lightness(grey_terms(levels).lightness).flatten()


class _AlwaysEval(nn.Module):
    """A module that stays in eval mode: dropout off, BatchNorm running statistics.

    pix2pix's reference test script keeps dropout and batch statistics on,
    which is why exports made from it "give wrong results"; `.train()` on a
    deploy module is therefore ignored.
    """

    def train(self, mode: bool = True) -> "_AlwaysEval":
        return super().train(False)


def area_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize [N,C,H,W] to size x size, averaging like an area filter when shrinking.

    Plain bilinear aliases badly from a 4000-px scan, and ONNX Resize with
    antialias is not something every TensorRT parser takes. So: bilinear to
    (size*kh, size*kw) with kh = ceil(H/size), kw = ceil(W/size), then the
    mean of each kh x kw block (Resize, Reshape with a shape tensor and
    ReduceMean: all fine with dynamic shapes). When enlarging, kh = kw = 1
    and this is plain bilinear.
    """
    batch, channels, height, width = image.shape
    block_h = (height + size - 1) // size
    block_w = (width + size - 1) // size
    enlarged = F.interpolate(image, size=(size * block_h, size * block_w), mode="bilinear",
                             align_corners=False)
    blocks = enlarged.reshape(batch, channels, size, block_h, size, block_w)
    return blocks.mean(dim=(3, 5))


class LightnessStage(nn.Module):
    """gray uint8 [N,1,H,W] -> L/50 - 1 at render size, float32 [N,1,R,R].

    Standing alone, this stage needs only L, a function of 256 grey levels:
    one table read (ONNX Gather) per pixel instead of `grey_terms`' power and
    some twenty arithmetic passes (1.8 against 4 ms on a 1024x768 scan, one
    CPU thread). The fused graph computes the grey's terms for the compose
    anyway and derives L from them.
    """

    def __init__(self, render_size: int):
        super().__init__()
        self.render_size = render_size
        self.register_buffer("table", _grey_lightness_table())

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        """Grey uint8 [N,1,H,W] -> the generator's lightness [N,1,R,R]: each level looked up, then area-resized."""
        index = gray.to(torch.int32)
        # index_select exports as one Gather; indexing would export as GatherND.
        lightness = torch.index_select(self.table, 0, index.reshape(-1)).reshape(index.shape)
        return area_resize(lightness, self.render_size)


class GeneratorStage(_AlwaysEval):
    """L/50 - 1 float32 [N,1,R,R] -> ab float32 [N,2,R,R] in Lab units (FP16 inside the fp16 graph).

    A distribution head (colour model v2) also takes its colour controls, hint_ab [N,2,R,R] in
    Lab units, hint_mask [N,1,R,R], global_hint [N,Q+1] (where the generator has that input) and
    temperature [1], and gives its bins decoded as its checkpoint says (the annealed mean, or
    family-favoured: `model/bins.py`) at its own size, R/2: the softmax and the expectation run
    in float32 after the generator's Cast back. Missing controls
    (PyTorch callers) are automatic colouring.
    """

    def __init__(self, generator: nn.Module, precision: str = "fp32"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        self.generator = generator.eval()
        self.precision = precision
        self.distribution = is_distribution_head(generator)
        if self.distribution:
            # Kept in float32 outside the half-precision generator.
            self.register_buffer("bin_centres", generator.bin_centres.detach().float().clone())
            self.decode, families, self.chroma_gain, _ = decoding_of(generator)
            self.register_buffer("bin_families", families)
        if precision == "fp16":
            self.generator.half()
        self.eval()

    def forward(self, lightness: torch.Tensor, *controls: torch.Tensor) -> torch.Tensor:
        """`controls`: as `control_examples` orders them, or none (automatic)."""
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        if not self.distribution:
            return denormalize_ab(self.generator(lightness.to(dtype)).float())
        if not controls:
            controls = control_examples(self.generator, lightness.shape[0], lightness.shape[-1])
        hint_ab, hint_mask, *global_hint, temperature = controls
        global_input = global_hint[0].to(dtype) if global_hint else None
        logits = self.generator(lightness.to(dtype), normalize_ab(hint_ab).to(dtype), hint_mask.to(dtype),
                                global_input)
        ab = decode_ab(logits.float(), self.bin_centres, self.decode, self.bin_families, temperature,
                       self.chroma_gain)
        if getattr(self.generator, "guided_upsampling", False):
            ab = guided_upsample(ab, lightness.float())
        return ab


def generator_stage_side(generator: nn.Module, render_size: int) -> int:
    """The side of the a*b* the generator stage gives: the render size, or a distribution head's
    own size (render size / its stride) where it is not brought up to the render size."""
    if not is_distribution_head(generator) or getattr(generator, "guided_upsampling", False):
        return render_size
    return render_size // generator.head_stride


def guided_upsample(ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
    """ab [N,2,r,r] at a head's size -> [N,2,R,R] at the lightness's size, its edges where the
    lightness has them: He and Sun's fast guided filter (2015). Locally ab ~ a * L + b is fitted
    on the head's grid (L area-averaged to it; box of GUIDE_RADIUS cells), and the coefficients,
    smoothed and upsampled, are applied to the full render-size L. Plain bilinear upsampling of
    a stride-4 head lets a colour run over an edge into the next region; this keeps it inside."""
    side = ab.shape[-1]
    guide = area_resize(lightness, side)

    def box(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2 * GUIDE_RADIUS + 1, stride=1, padding=GUIDE_RADIUS, count_include_pad=False)

    mean_guide = box(guide)
    variance = box(guide * guide) - mean_guide * mean_guide
    mean_ab = box(ab)
    covariance = box(guide * ab) - mean_guide * mean_ab
    slope = covariance / (variance + GUIDE_EPSILON)
    offset = mean_ab - slope * mean_guide
    size = lightness.shape[-2:]
    slope = F.interpolate(box(slope), size=size, mode="bilinear", align_corners=False)
    offset = F.interpolate(box(offset), size=size, mode="bilinear", align_corners=False)
    return slope * lightness + offset


class DistributionStage(_AlwaysEval):
    """A distribution head's stage for what the fused graph does not output: L/50 - 1 [N,1,R,R] +
    colour controls -> (ab [N,2,r,r] at the controls' temperature, calibrated intervals [N,4,r,r]
    around it, logits [N,Q,r,r]). float32 throughout; `scale` is the calibrated lambda (1 where the
    checkpoint has no calibration: the runtime then offers no intervals).

    Suggestions read the logits; uncertainty reads the intervals, whose half-widths are the
    distribution's own spread about the shown colour (`distribution_spreads`)."""

    def __init__(self, generator: nn.Module, scale: float):
        super().__init__()
        self.generator = GeneratorStage(generator, "fp32")
        self.scale = float(scale)
        self.eval()

    def forward(self, lightness: torch.Tensor, *controls: torch.Tensor):
        """(ab, interval, logits), see the class doc."""
        inner = self.generator
        if not controls:
            controls = control_examples(inner.generator, lightness.shape[0], lightness.shape[-1])
        hint_ab, hint_mask, *global_hint, temperature = controls
        logits = inner.generator(lightness, normalize_ab(hint_ab), hint_mask,
                                 global_hint[0] if global_hint else None).float()
        ab = decode_ab(logits, inner.bin_centres, inner.decode, inner.bin_families, temperature, inner.chroma_gain)
        spreads = distribution_spreads(logits, inner.bin_centres, ab)
        return ab, interval_bounds(ab, spreads, self.scale), logits


class IntervalStage(_AlwaysEval):
    """L/50 - 1 [N,1,R,R] + ab [N,2,R,R] -> calibrated intervals [N,4,R,R] (a_low, a_high, b_low, b_high)."""

    def __init__(self, head: IntervalHead, scale: float):
        super().__init__()
        self.head = head.eval()
        self.scale = float(scale)
        self.eval()

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Lightness and predicted ab -> calibrated [a_low, a_high, b_low, b_high] bounds."""
        return interval_bounds(ab, self.head(lightness, ab), self.scale)


class Composer(nn.Module):
    """gray uint8 [N,1,H,W] + ab float32 [N,2,r,r] -> rgb uint8 [N,H,W,3]."""

    def forward(self, gray: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Grey uint8 at full size + ab at render size -> rgb uint8 [N,H,W,3] on the grey's own L."""
        return compose(grey_terms(gray), ab)


def compose(grey: GreyTerms, ab: torch.Tensor) -> torch.Tensor:
    """Full-size grey terms + ab at render size -> rgb uint8 [N,H,W,3].

    Each operation here runs over every pixel of a full-resolution scan, so
    the a and b offsets are scaled while small and upsampled one channel at a
    time, and the channels meet only in the final uint8 stack.
    """
    size = grey.f_y.shape[-2:]
    offsets = chroma_offsets(ab)
    offset_a, offset_b = (
        F.interpolate(offsets[:, index:index + 1], size=size, mode="bilinear", align_corners=False)
        for index in (0, 1))
    channels = linear_rgb_in_gamut(grey, offset_a, offset_b)
    return torch.stack([linear_to_srgb_uint8(channel)[:, 0] for channel in channels], dim=-1)


class DeployColouriser(_AlwaysEval):
    """gray uint8 [N,1,H,W] (+ a distribution head's colour controls) -> rgb uint8 [N,H,W,3]:
    the fused graph."""

    def __init__(self, generator: nn.Module, render_size: int, precision: str = "fp32"):
        super().__init__()
        self.render_size = render_size
        self.generator = GeneratorStage(generator, precision)
        self.eval()

    def forward(self, gray: torch.Tensor, *controls: torch.Tensor) -> torch.Tensor:
        """Grey uint8 [N,1,H,W] (+ colour controls) -> rgb uint8 [N,H,W,3]: the whole colouriser."""
        grey = grey_terms(gray)
        lightness = area_resize(normalize_lightness(grey.lightness), self.render_size)
        return compose(grey, self.generator(lightness, *controls))


def is_distribution_head(generator: nn.Module) -> bool:
    """Whether `generator` predicts logits over a*b* bins (colour model v2)."""
    return hasattr(generator, "bin_centres")


def control_examples(generator: nn.Module, batch: int, render_size: int) -> tuple[torch.Tensor, ...]:
    """Example colour controls for tracing a distribution head, in its input order:
    hint_ab, hint_mask, [global_hint,] temperature. Empty for a regression generator."""
    if not is_distribution_head(generator):
        return ()
    controls = [torch.zeros(batch, 2, render_size, render_size), torch.zeros(batch, 1, render_size, render_size)]
    if generator.global_hint is not None:
        controls.append(torch.zeros(batch, generator.bins + 1))
    controls.append(torch.full((1,), release_temperature(generator)))
    return tuple(controls)
