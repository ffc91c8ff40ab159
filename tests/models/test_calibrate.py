"""Calibration: timing a tiny hand-made split model, fitting on exact synthetic data, the
report's YAML round trip, and the CUDA path where a GPU exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from models.calibrate import CalibrationReport, Workload, calibrate, fit_efficiency
from models.cost import block_time_s
from models.hardware import get_hardware, load_catalog, read_entries, spec_from_dict
from models.split import BlockProfile, Sample, SplitModel
from models.timing import (
    device_of,
    measure_block_times,
    measure_memory_bandwidth,
    measure_peak_flops,
    time_blocks,
)

BATCH = 64
# ("dense", d_in, d_out): Linear + ReLU on every row, compute-bound at this batch.
# ("pooled", d, d): h + mean(h) @ W, one matrix-vector product: memory-bound.
LAYERS = (
    ("dense", 512, 2048),
    ("pooled", 2048, 2048),
    ("dense", 2048, 2048),
    ("pooled", 2048, 2048),
    ("dense", 2048, 1024),
    ("pooled", 1024, 1024),
)


class LinearStack(SplitModel):
    """Six linear blocks with analytic profiles; weights total 64 MB, more than the L3 cache."""

    name = "test-linear-stack"
    task = "image-classification"
    pretrained = False

    def __init__(self, device: str = "cpu") -> None:
        torch.manual_seed(0)
        self.weights = [
            torch.randn(d_in, d_out, device=device) / math.sqrt(d_in) for _, d_in, d_out in LAYERS
        ]

    @property
    def blocks(self) -> tuple[str, ...]:
        return tuple(f"{kind}{i}" for i, (kind, _, _) in enumerate(LAYERS))

    def _block(self, h: torch.Tensor, i: int) -> torch.Tensor:
        if LAYERS[i][0] == "dense":
            return torch.relu(h @ self.weights[i])
        return h + h.mean(dim=0, keepdim=True) @ self.weights[i]

    def head(self, x: torch.Tensor, split: int) -> torch.Tensor:
        for i in range(self.check_split(split)):
            x = self._block(x, i)
        return x

    def tail(self, h: torch.Tensor, split: int) -> torch.Tensor:
        for i in range(self.check_split(split), self.num_blocks):
            h = self._block(h, i)
        return h

    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        return stack_profiles(batch)

    def samples(self) -> Sequence[Sample]:
        return []


class IsolatedLinearStack(LinearStack):
    """The same model offering ``run_blocks``, so each block is timed alone."""

    def run_blocks(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for i in range(start, stop):
            h = self._block(h, i)
        return h


def stack_profiles(batch: int) -> list[BlockProfile]:
    return [_profile(f"{k}{i}", k, d_in, d_out, batch) for i, (k, d_in, d_out) in enumerate(LAYERS)]


def _profile(name: str, kind: str, d_in: int, d_out: int, batch: int) -> BlockProfile:
    if kind == "dense":  # matmul, then ReLU reads and writes the output
        flops = 2.0 * batch * d_in * d_out + batch * d_out
        act = 4.0 * batch * (d_in + 3 * d_out)
    else:  # mean over rows, matrix-vector product, broadcast add
        flops = 2.0 * d_in * d_out + 2.0 * batch * d_in
        act = 4.0 * batch * (2 * d_in + d_out)
    return BlockProfile(name, flops, 4.0 * d_in * d_out, act, 0.0, 4.0 * batch * d_out, 0.0)


def test_calibrated_model_predicts_measured_block_times(tmp_path: Path) -> None:
    model = IsolatedLinearStack()
    x = torch.randn(BATCH, LAYERS[0][1])
    small = Workload(torch.randn(1, LAYERS[0][1]), batch=1)
    report = calibrate(model, x, "test-cpu", batch=BATCH, more=[small], repeats=5, threads=1)
    print("\n" + report.to_yaml())
    for row in report.rows():
        print(row)
    assert report.method == "isolated" and report.threads == 1
    assert len(report.measured_s) == 2 * model.num_blocks
    assert report.workloads[0] == "seq_len=1,batch=64" and report.workloads[-1].endswith("=1")
    assert report.median_relative_error < 0.5
    assert report.bounds[0] == "compute" and report.bounds[1] == "memory"
    assert set(report.bounds[model.num_blocks :]) == {"memory"}  # batch 1 reads weights
    # The fitted entry round-trips through YAML into the catalog machinery.
    path = report.write_yaml(tmp_path / "fitted" / "this-cpu.yaml")
    assert load_catalog(path) == {"test-cpu": report.spec}
    assert get_hardware("test-cpu", read_entries(path)) == report.spec


def test_differenced_timing_without_run_blocks() -> None:
    model = LinearStack()
    x = torch.randn(8, LAYERS[0][1])
    times = time_blocks(model, x, repeats=2)
    assert times.method == "differenced"
    assert len(times.block_s) == model.num_blocks
    assert all(t >= 0.0 for t in times.block_s) and sum(times.block_s) > 0.0
    assert times.call_overhead_s >= 0.0


def test_measure_block_times_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    times = measure_block_times(IsolatedLinearStack(), torch.randn(4, 512), 1, threads=1)
    assert len(times) == len(LAYERS) and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        measure_block_times(IsolatedLinearStack(), torch.randn(4, 512), 1, threads=0)


def test_inputs_on_cpu_are_timed_without_cuda_synchronisation() -> None:
    @dataclass(frozen=True)
    class Batch:
        x: torch.Tensor
        mask: torch.Tensor

    cpu = torch.device("cpu")
    assert device_of(Batch(torch.zeros(1), torch.zeros(1))) == cpu
    assert device_of([{"a": torch.zeros(1)}, "text"]) == cpu
    assert device_of("not a tensor") == cpu


def test_micro_benchmarks_return_positive_rates() -> None:
    assert measure_peak_flops(size=128, repeats=1) > 0.0
    assert measure_memory_bandwidth(size_bytes=2**20, repeats=1) > 0.0


BASE = spec_from_dict(
    "base",
    {
        "kind": "device",
        "peak_flops_per_s": {"fp32": 1.0e11},
        "memory_bandwidth_bytes_per_s": 1.0e10,
        "memory_capacity_bytes": 1.0e10,
        "idle_power_w": 0.0,
        "active_power_w": 10.0,
        "efficiency_compute": 1.0,
        "efficiency_memory": 1.0,
        "call_overhead_s": 0.0,
        "block_overhead_s": 0.0,
    },
)


def test_fit_recovers_known_factors_from_exact_times() -> None:
    truth = replace(BASE, efficiency_compute=0.3, efficiency_memory=0.6, block_overhead_s=2e-5)
    profiles = stack_profiles(BATCH) + stack_profiles(1)
    measured = [block_time_s(p, truth) for p in profiles]
    fitted = fit_efficiency(profiles, measured, BASE)
    assert fitted.efficiency_compute == pytest.approx(0.3, rel=1e-3)
    assert fitted.efficiency_memory == pytest.approx(0.6, rel=1e-3)
    assert fitted.block_overhead_s == pytest.approx(2e-5, rel=1e-2)
    assert fitted.name == "base" and fitted.peak_flops_per_s == BASE.peak_flops_per_s


def test_fit_keeps_the_base_factor_the_data_cannot_see() -> None:
    """Every block memory-bound: the compute efficiency stays at the base entry's value."""
    base = replace(BASE, efficiency_compute=0.7)
    truth = replace(BASE, efficiency_compute=0.9, efficiency_memory=0.5)
    profiles = stack_profiles(1)
    fitted = fit_efficiency(profiles, [block_time_s(p, truth) for p in profiles], base)
    assert fitted.efficiency_memory == pytest.approx(0.5, rel=1e-3)
    assert fitted.efficiency_compute == pytest.approx(0.7, rel=1e-3)


def test_fit_rejects_mismatched_or_bad_times() -> None:
    profiles = stack_profiles(1)
    with pytest.raises(ValueError, match="one measured time per profile"):
        fit_efficiency(profiles, [1.0], BASE)
    with pytest.raises(ValueError, match="finite and >= 0"):
        fit_efficiency(profiles, [-1.0] * len(profiles), BASE)


def test_report_statistics() -> None:
    report = CalibrationReport(
        model_name="m",
        spec=BASE,
        block_names=("a", "b", "c"),
        workloads=("w",) * 3,
        measured_s=(1.0, 2.0, 4.0),
        predicted_s=(1.5, 2.0, 2.0),
        bounds=("compute",) * 3,
        method="isolated",
        threads=1,
        dtype="fp32",
    )
    assert report.relative_errors == (0.5, 0.0, 0.5)
    assert report.median_relative_error == 0.5
    assert report.rows()[0] == ("a", "w", 1.0, 1.5, 0.5, "compute")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_timing_synchronises() -> None:
    model = IsolatedLinearStack(device="cuda")
    x = torch.randn(BATCH, LAYERS[0][1], device="cuda")
    report = calibrate(model, x, "test-gpu", batch=BATCH, repeats=5)
    assert all(t > 0.0 for t in report.measured_s)
    assert "cuda" in report.spec.description
