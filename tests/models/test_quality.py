"""The quality harness on MobileNetV2 (fast, real weights): lossless links change nothing,
lossy codecs cost fidelity and bytes are counted per sample."""

from __future__ import annotations

import pytest
import torch

import codec
from models.mobilenetv2 import build_mobilenetv2
from models.quality import Channel, evaluate
from models.split import ModelError
from models.vision import MobileNetV2Split


@pytest.fixture(scope="module")
def mobilenet() -> MobileNetV2Split:
    return MobileNetV2Split()


def test_uncompressed_split_matches_unsplit_model(mobilenet: MobileNetV2Split) -> None:
    report = evaluate(mobilenet, 7, None, limit=3)
    assert report.metrics == report.uncompressed
    assert report.metrics["top1_agreement"] == 1.0
    assert report.metrics["kl_divergence"] == pytest.approx(0.0, abs=1e-6)
    assert report.raw_bytes == report.payload_bytes == 32 * 28 * 28 * 4


def test_lossy_codec_costs_fidelity_and_saves_bytes(mobilenet: MobileNetV2Split) -> None:
    tight = evaluate(mobilenet, 7, codec.get_codec({"id": "slicer", "max_nmse": 0.001}), limit=3)
    loose = evaluate(mobilenet, 7, codec.get_codec({"id": "slicer", "max_nmse": 0.3}), limit=3)
    assert loose.payload_bytes < tight.payload_bytes < tight.raw_bytes / 4
    assert loose.metrics["kl_divergence"] > tight.metrics["kl_divergence"] > 0


def test_topk_destroys_what_slicer_keeps(mobilenet: MobileNetV2Split) -> None:
    """The metric can fail: keeping 5% of a feature map loses the class on most images."""
    report = evaluate(mobilenet, 14, codec.get_codec({"id": "topk", "keep": 0.05}), limit=4)
    assert report.metrics["top1_agreement"] < 0.75


def test_random_weights_are_refused() -> None:
    torch.manual_seed(0)
    model = MobileNetV2Split(build_mobilenetv2())
    model.pretrained = False
    with pytest.raises(ModelError, match="random weights"):
        evaluate(model, 3, None, limit=1)


def test_channel_counts_ids_as_int32() -> None:
    channel = Channel(codec.get_codec("fp16"))
    ids = torch.arange(10)
    assert channel.send(ids, units=10) is ids
    floats = channel.send(torch.ones(4, 8), units=1)
    assert floats.dtype == torch.float32
    assert channel.raw_bytes == 40 + 128
    assert channel.payload_bytes == 40 + len(codec.get_codec("fp16").encode(torch.ones(4, 8)))
    assert channel.per_unit()[0] == pytest.approx((40 + 128) / 11)
