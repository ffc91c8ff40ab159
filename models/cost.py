"""Time and energy of running a range of model blocks on one hardware entry: a roofline per
block plus fixed overheads. The simulator takes durations from here, never from wall time.

For a block with profile ``p`` on hardware ``hw`` in ``dtype``::

    compute_s = p.flops / (hw.peak(dtype) * hw.efficiency_compute)
    memory_s  = traffic_bytes / (hw.memory_bandwidth_bytes_per_s * hw.efficiency_memory)
    block_s   = hw.block_overhead_s + max(compute_s, memory_s)

with ``traffic_bytes = (p.weight_bytes + p.activation_bytes + p.kv_read_bytes) * scale``:
``BlockProfile`` counts fp32 bytes, so ``scale`` is the dtype's width over 4 (0.5 for fp16).
A call runs blocks ``[start, stop)`` once: ``hw.call_overhead_s`` plus the block times; a range
of no blocks is no call and costs nothing. Weights are read once per call whatever the batch,
so time per item falls with the batch until the blocks turn compute-bound.

Energy is ``hw.active_power_w * time_s``: the hardware draws its active power (TDP or power-mode
budget, an upper bound) for the whole call. Idle draw is the simulator's business: it charges
``hw.idle_power_w`` for the time a device or replica is not running a call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from models.hardware import HardwareSpec

if TYPE_CHECKING:  # models.split imports torch; this module only reads the profiles' fields
    from models.split import BlockProfile

Bound = Literal["compute", "memory", "none"]

#: Bytes per element; ``BlockProfile`` byte counts are for fp32 (4 bytes).
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}
PROFILE_DTYPE_BYTES = 4


@dataclass(frozen=True)
class Cost:
    """What one call over a block range costs. ``bound`` is ``"memory"`` when the range's total
    memory time exceeds its total compute time, else ``"compute"`` (``"none"``: no blocks)."""

    time_s: float
    energy_j: float
    flops: float
    traffic_bytes: float  # bytes moved to and from memory, in the call's dtype
    bound: Bound
    block_bounds: tuple[Bound, ...]  # per block of the range, in order


def traffic_bytes(profile: BlockProfile, dtype: str = "fp32") -> float:
    """Bytes the block reads and writes in ``dtype``: weights, activations and KV cache."""
    moved = profile.weight_bytes + profile.activation_bytes + profile.kv_read_bytes
    return moved * _dtype_bytes(dtype) / PROFILE_DTYPE_BYTES


def compute_time_s(profile: BlockProfile, hw: HardwareSpec, dtype: str = "fp32") -> float:
    return profile.flops / (hw.peak(dtype) * hw.efficiency_compute)


def memory_time_s(profile: BlockProfile, hw: HardwareSpec, dtype: str = "fp32") -> float:
    bytes_per_s = hw.memory_bandwidth_bytes_per_s * hw.efficiency_memory
    return traffic_bytes(profile, dtype) / bytes_per_s


def block_time_s(profile: BlockProfile, hw: HardwareSpec, dtype: str = "fp32") -> float:
    """One block's time: its overhead plus the larger of its compute and memory times."""
    roofline_s = max(compute_time_s(profile, hw, dtype), memory_time_s(profile, hw, dtype))
    return hw.block_overhead_s + roofline_s


def block_bound(profile: BlockProfile, hw: HardwareSpec, dtype: str = "fp32") -> Bound:
    """``"memory"`` when the memory time exceeds the compute time, else ``"compute"``."""
    memory_bound = memory_time_s(profile, hw, dtype) > compute_time_s(profile, hw, dtype)
    return "memory" if memory_bound else "compute"


def range_cost(
    profiles: Sequence[BlockProfile],
    start: int,
    stop: int,
    hw: HardwareSpec,
    dtype: str = "fp32",
) -> Cost:
    """Cost of one call running ``profiles[start:stop]`` on ``hw`` in ``dtype``."""
    _check_range(len(profiles), start, stop)
    hw.peak(dtype)  # a dtype the hardware lacks fails even for an empty range
    blocks = profiles[start:stop]
    if not blocks:
        return Cost(0.0, 0.0, 0.0, 0.0, "none", ())
    time_s = hw.call_overhead_s + sum(block_time_s(p, hw, dtype) for p in blocks)
    compute_s = sum(compute_time_s(p, hw, dtype) for p in blocks)
    memory_s = sum(memory_time_s(p, hw, dtype) for p in blocks)
    return Cost(
        time_s=time_s,
        energy_j=hw.active_power_w * time_s,
        flops=sum(p.flops for p in blocks),
        traffic_bytes=sum(traffic_bytes(p, dtype) for p in blocks),
        bound="memory" if memory_s > compute_s else "compute",
        block_bounds=tuple(block_bound(p, hw, dtype) for p in blocks),
    )


def _check_range(num_blocks: int, start: int, stop: int) -> None:
    ok = all(isinstance(i, int) and not isinstance(i, bool) for i in (start, stop))
    if not ok or not 0 <= start <= stop <= num_blocks:
        raise ValueError(
            f"block range [{start!r}, {stop!r}) is not within 0..{num_blocks}: "
            "start and stop must be integers with 0 <= start <= stop <= len(profiles)"
        )


def _dtype_bytes(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {list(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]
