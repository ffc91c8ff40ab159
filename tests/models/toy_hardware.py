"""A hand-made hardware entry for exact cost and catalog tests: 1 GFLOP/s fp32 (2 fp16) at
efficiency 0.5, 1 GB/s at efficiency 0.25, 1 ms per call, 0.1 ms per block, 1 W idle and
10 W active."""

from __future__ import annotations

from typing import Any


def toy_fields(**changes: Any) -> dict[str, Any]:
    """The toy entry's fields with ``changes`` applied."""
    fields: dict[str, Any] = {
        "kind": "device",
        "description": "toy",
        "peak_flops_per_s": {"fp32": 1.0e9, "fp16": 2.0e9},
        "memory_bandwidth_bytes_per_s": 1.0e9,
        "memory_capacity_bytes": 1.0e9,
        "idle_power_w": 1.0,
        "active_power_w": 10.0,
        "efficiency_compute": 0.5,
        "efficiency_memory": 0.25,
        "call_overhead_s": 1.0e-3,
        "block_overhead_s": 1.0e-4,
    }
    fields.update(changes)
    return fields
