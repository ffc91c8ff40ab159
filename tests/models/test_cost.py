"""The roofline cost model: exact arithmetic on a toy entry, ranges, dtypes, batching, ideal."""

from __future__ import annotations

import itertools

import pytest

from models.cost import Cost, block_bound, block_time_s, range_cost, traffic_bytes
from models.hardware import HardwareError, get_hardware, spec_from_dict
from models.split import BlockProfile
from tests.models.toy_hardware import toy_fields

# 1 GFLOP/s at efficiency 0.5, 1 GB/s at efficiency 0.25, 1 ms per call, 0.1 ms per block, 10 W.
TOY = spec_from_dict("toy", toy_fields(peak_flops_per_s={"fp32": 1.0e9, "fp16": 4.0e9}))


def profile(name: str, flops: float, weight: float, act: float, kv: float = 0.0) -> BlockProfile:
    return BlockProfile(name, flops, weight, act, kv, out_bytes=act / 2, kv_bytes_per_token=0.0)


# compute 1e6 / 0.5e9 = 2 ms; memory (2e5 + 1e5 + 1e5) / 0.25e9 = 1.6 ms -> compute-bound
COMPUTE = profile("compute", 1.0e6, 2.0e5, 1.0e5, 1.0e5)
# compute 1e5 / 0.5e9 = 0.2 ms; memory 1e6 / 0.25e9 = 4 ms -> memory-bound
MEMORY = profile("memory", 1.0e5, 9.0e5, 1.0e5)


def test_block_time_is_overhead_plus_the_larger_roofline_term() -> None:
    assert block_time_s(COMPUTE, TOY) == pytest.approx(1.0e-4 + 2.0e-3, rel=1e-12)
    assert block_time_s(MEMORY, TOY) == pytest.approx(1.0e-4 + 4.0e-3, rel=1e-12)
    assert (block_bound(COMPUTE, TOY), block_bound(MEMORY, TOY)) == ("compute", "memory")


def test_range_cost_adds_one_call_overhead_and_charges_active_power() -> None:
    cost = range_cost([COMPUTE, MEMORY, COMPUTE], 0, 2, TOY)
    time_s = 1.0e-3 + (1.0e-4 + 2.0e-3) + (1.0e-4 + 4.0e-3)
    assert cost.time_s == pytest.approx(time_s, rel=1e-12)
    assert cost.energy_j == pytest.approx(10.0 * time_s, rel=1e-12)
    assert cost.flops == 1.1e6
    assert cost.traffic_bytes == 4.0e5 + 1.0e6
    assert cost.block_bounds == ("compute", "memory")
    assert cost.bound == "memory"  # 5.6 ms of memory time against 2.2 ms of compute time
    assert range_cost([COMPUTE, MEMORY, COMPUTE], 2, 3, TOY).bound == "compute"


def test_empty_range_is_no_call_and_costs_nothing() -> None:
    assert range_cost([COMPUTE], 1, 1, TOY) == Cost(0.0, 0.0, 0.0, 0.0, "none", ())


def test_fp16_uses_its_peak_and_half_the_bytes() -> None:
    assert traffic_bytes(COMPUTE, "fp16") == 2.0e5
    # compute 1e6 / 2e9 = 0.5 ms; memory 2e5 / 0.25e9 = 0.8 ms
    assert block_time_s(COMPUTE, TOY, "fp16") == pytest.approx(1.0e-4 + 0.8e-3, rel=1e-12)
    assert block_bound(COMPUTE, TOY, "fp16") == "memory"


def test_bad_ranges_and_dtypes_are_errors() -> None:
    for start, stop in [(-1, 1), (1, 0), (0, 3), (0.0, 1)]:
        with pytest.raises(ValueError, match=r"0 <= start <= stop <= len\(profiles\)"):
            range_cost([COMPUTE, MEMORY], start, stop, TOY)  # type: ignore[arg-type]
    with pytest.raises(HardwareError, match="'toy' has no peak_flops_per_s for dtype 'int8'"):
        range_cost([COMPUTE], 0, 0, TOY, "int8")


def test_ideal_hardware_costs_zero_time_and_energy() -> None:
    ideal = get_hardware("ideal")
    huge = profile("huge", 1.0e15, 1.0e12, 1.0e12, 1.0e12)
    for dtype in ("fp32", "bf16", "int8"):
        assert range_cost([huge, huge], 0, 2, ideal, dtype).time_s == 0.0
        assert range_cost([huge, huge], 0, 2, ideal, dtype).energy_j == 0.0


def linear_profile(batch: int, d_in: int = 2048, d_out: int = 2048) -> BlockProfile:
    """A linear layer: weights read once per call, activations and FLOPs grow with the batch."""
    return profile(
        f"linear-b{batch}",
        flops=2.0 * batch * d_in * d_out,
        weight=4.0 * d_in * d_out,
        act=4.0 * batch * (d_in + d_out),
    )


def test_batching_amortises_weights_until_compute_bound() -> None:
    l4 = get_hardware("l4")
    batches = [1, 4, 16, 64, 256, 1024, 4096]
    costs = {b: range_cost([linear_profile(b)] * 4, 0, 4, l4) for b in batches}
    per_item_s = [costs[b].time_s / b for b in batches]
    assert all(a > b for a, b in itertools.pairwise(per_item_s))
    assert costs[1].bound == "memory" and set(costs[1].block_bounds) == {"memory"}
    assert costs[4096].bound == "compute" and set(costs[4096].block_bounds) == {"compute"}
    # memory-bound: a batch of 4 costs hardly more than one item (same weight reads)
    assert costs[4].time_s < 1.01 * costs[1].time_s
    # compute-bound: time grows in proportion to the batch, overheads aside
    overhead_s = l4.call_overhead_s + 4 * l4.block_overhead_s
    ratio = (costs[4096].time_s - overhead_s) / (costs[1024].time_s - overhead_s)
    assert ratio == pytest.approx(4.0, rel=1e-9)
