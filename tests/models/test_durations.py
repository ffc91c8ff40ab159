"""Simulated durations from the cost model: heads, tails, decode steps, KV bytes."""

from __future__ import annotations

import pytest

from models.cost import range_cost
from models.durations import ModelCosts
from models.hardware import get_hardware
from models.zoo import load

MODEL = "synthetic:smollm2-135m"


def test_head_and_tail_match_the_cost_model() -> None:
    costs = ModelCosts(MODEL, seq_len=64)
    phone, h100 = get_hardware("flagship-phone"), get_hardware("h100-sxm")
    profiles = load(MODEL).block_profiles(seq_len=64, batch=4)
    expected_s = range_cost(profiles, 8, len(profiles), h100, "fp16").time_s
    assert costs.tail_s(h100, "fp16", 8, 4) == expected_s
    time_s, energy_j = costs.head(phone, "fp32", 8)
    assert time_s > 0 and energy_j == pytest.approx(phone.active_power_w * time_s)
    assert costs.head(phone, "fp32", 0) == (0.0, 0.0)  # split 0 runs nothing on the device


def test_decode_step_time_per_token_falls_with_the_batch() -> None:
    costs = ModelCosts(MODEL, seq_len=64)
    h100 = get_hardware("h100-sxm")
    one = costs.tail_step_s(h100, "fp16", 16, [100])
    many = costs.tail_step_s(h100, "fp16", 16, [100] * 32)
    assert many > one  # more work per step
    assert many / 32 < one / 4  # but far less per token: the weights are read once per step
    longer = costs.tail_step_s(h100, "fp16", 16, [4000] * 32)
    assert longer > many  # each sequence's KV cache is read every step
    # mixed contexts cost as their mean: exact for the linear KV and attention terms
    assert costs.tail_step_s(h100, "fp16", 16, [50, 150]) == costs.tail_step_s(
        h100, "fp16", 16, [100, 100]
    )
    assert costs.tail_step_s(get_hardware("ideal"), "fp16", 16, [100]) == 0.0
    with pytest.raises(ValueError, match="at least one sequence"):
        costs.tail_step_s(h100, "fp16", 16, [])


def test_kv_bytes_per_token_sums_the_blocks() -> None:
    costs = ModelCosts(MODEL, seq_len=64)
    profiles = load(MODEL).block_profiles()
    expected = sum(p.kv_bytes_per_token for p in profiles[16:])
    assert costs.kv_bytes_per_token(16, len(profiles)) == expected > 0
    assert costs.kv_bytes_per_token(0, 0) == 0.0
