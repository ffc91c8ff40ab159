"""Codec times in the simulation: the fitted cost model, scaled by CPU score, with a named
fallback for unfitted settings and published figures for decode on the accelerator."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from models.codec_cost import CallCost, CodecCosts
from models.codec_time import CodecCostError, CodecTimes, codec_id_of, gpu_decode_s
from models.hardware import get_hardware

FP16 = '{"id":"fp16"}'
COST = CallCost(fixed_s=1e-5, per_element_s=1e-9, per_payload_byte_s=0.0)


def _times(score: float = 1000.0) -> CodecTimes:
    costs = {FP16: {"encode": COST, "decode": COST}}
    return CodecTimes(CodecCosts(costs, machine="m", cpu_core_score=score, defaults={"fp16": FP16}))


def test_a_call_costs_the_fit_scaled_by_the_cpu_score() -> None:
    h100 = get_hardware("h100-sxm")  # host score 1600 in the catalog
    times = _times(score=800.0)
    expected_s = COST.seconds(1000, 10) * 800.0 / h100.cpu_core_score
    assert times.seconds("decode", FP16, 4000, 10, h100) == pytest.approx(expected_s)
    assert times.seconds("encode", FP16, 4000, 10, get_hardware("ideal")) == 0.0
    with pytest.raises(ValueError, match="direction must be encode or decode"):
        times.seconds("transcode", FP16, 4000, 10, h100)
    unscored = dataclasses.replace(h100, cpu_core_score=math.nan)
    assert times.factor(unscored) == 1.0  # no score: as fast as the calibration machine


def test_an_unfitted_setting_is_charged_as_its_codec_defaults_and_named() -> None:
    times = _times()
    key = json.dumps({"id": "fp16", "extra": 1})
    assert times.resolve(key) == FP16
    assert times.substitutes == {key: FP16}
    with pytest.raises(CodecCostError, match="slicer calibrate-codecs --codec"):
        times.resolve('{"id":"zstd"}')


def test_the_bundled_fits_cover_every_codec() -> None:
    from codec import available

    times = CodecTimes.read()
    assert times.costs.cpu_core_score > 0
    assert sorted(times.costs.defaults) == sorted(available())


def test_decode_on_the_accelerator_uses_the_published_figures() -> None:
    l4 = get_hardware("l4")
    cast_s = gpu_decode_s(["fp16"], [4e6], [2e6], l4)
    entropy_s = gpu_decode_s(["slicer"], [4e6], [0.5e6], l4)
    assert cast_s == pytest.approx(l4.call_overhead_s + 6e6 / (300e9 * 0.8))
    assert entropy_s > cast_s  # ANS on a GPU runs at a fraction of its bandwidth
    assert gpu_decode_s([], [], [], l4) == 0.0
    assert gpu_decode_s(["fp16"], [4e6], [2e6], get_hardware("ideal")) == 0.0


def test_a_codec_key_names_its_codec() -> None:
    assert codec_id_of('{"id":"slicer","max_nmse":0.001}') == "slicer"
    with pytest.raises(CodecCostError, match="not a codec key"):
        codec_id_of("slicer")


def test_a_stream_frame_has_its_own_fit_or_is_charged_as_a_container() -> None:
    frame_cost = CallCost(fixed_s=2e-6, per_element_s=1e-10, per_payload_byte_s=0.0)
    h100 = get_hardware("h100-sxm")
    plain = _times(score=math.nan)
    assert plain.seconds("decode", FP16, 2304, 1154, h100, frame=True) == COST.seconds(576, 1154)
    assert plain.frames_as_containers == {FP16}
    both = {"encode": COST, "decode": COST, "frame_encode": frame_cost, "frame_decode": frame_cost}
    times = CodecTimes(CodecCosts({FP16: both}, defaults={"fp16": FP16}))
    assert times.seconds("encode", FP16, 2304, 1154, h100, frame=True) == frame_cost.seconds(
        576, 1154
    )
    assert times.seconds("encode", FP16, 2304, 1154, h100) == COST.seconds(576, 1154)
    assert times.frames_as_containers == set()
