"""Fit a hardware entry to this machine: time each block of a ``SplitModel``, fit the cost
model's efficiency factors and per-block overhead to those times, report predicted against
measured per block, and write the fitted entry as YAML that ``get_hardware`` takes as ``extra``.

Measurements come from ``models.timing``.

Fitting (``fit_efficiency``): minimise the mean pseudo-Huber loss of the log ratio of
predicted to measured time: a relative error that weighs over- and under-prediction alike, is
quadratic up to about 5% and linear beyond, so a few outlying blocks do not sway the fit (the
target is the median relative error). The search runs over log efficiencies and a linear
``block_overhead_s`` in [0, shortest measured block]: a 33-point grid a side, twice refined to
11 points within one step of the best point, then a compass search that follows the narrow
valley where overhead trades against memory efficiency. On exact synthetic times it recovers
the factors to 0.01%. Blocks measured under 1 us (differencing noise) are left out. A factor
the data cannot pin down (no block is bound by it) stays at the base entry's value through a
tiny pull toward it, and efficiencies above 1 (beating the peak) are penalised. One workload
(one ``seq_len`` and ``batch``) calibrates one regime: blocks of one arithmetic intensity fit a
compute-bound and a memory-bound reading alike, so pass ``more`` workloads to ``calibrate``
(an LM: a prefill and a one-token step) to pin both rooflines.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from models.cost import Bound, block_bound, block_time_s, traffic_bytes
from models.hardware import MAX_EFFICIENCY, HardwareSpec
from models.split import BlockProfile, SplitModel
from models.timing import benchmark_spec, device_of, time_blocks, torch_threads

MIN_MEASURED_S = 1e-6  # shorter (e.g. differenced to 0) times are left out of fits
MIN_EFFICIENCY = 1e-3
_PULL = 1e-6  # per squared log unit from the base entry's efficiency: a tie-breaker only
_ABOVE_PEAK = 0.1  # per squared log unit above efficiency 1 (about a 2% misfit at 1.5)
_HUBER = 0.05  # log ratios beyond about 5% weigh in linearly, not squared
_GRID_POINTS = 33
_REFINE_POINTS = 11
_REFINEMENTS = 2
_POLISH_ROUNDS = 400  # at most, in the final compass search (6 evaluations each)
_POLISH_HALVINGS = 14  # it stops once its steps have halved this often
_TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# -- fitting ----------------------------------------------------------------------------------
def fit_efficiency(
    profiles: Sequence[BlockProfile],
    measured_s: Sequence[float],
    base_hw: HardwareSpec,
    dtype: str = "fp32",
) -> HardwareSpec:
    """``base_hw`` with ``efficiency_compute``, ``efficiency_memory`` and ``block_overhead_s``
    fitted so that ``block_time_s`` matches ``measured_s`` (see the module docstring)."""
    measured, keep = _check_measured(profiles, measured_s)
    compute_s = np.array([p.flops for p in profiles])[keep] / base_hw.peak(dtype)
    memory_s = np.array([traffic_bytes(p, dtype) for p in profiles])[keep]
    memory_s = memory_s / base_hw.memory_bandwidth_bytes_per_s
    start = np.log([base_hw.efficiency_compute, base_hw.efficiency_memory])

    def loss(log_c: np.ndarray, log_m: np.ndarray, overhead_s: np.ndarray) -> np.ndarray:
        roofline_s = np.maximum(
            compute_s / np.exp(log_c)[..., None], memory_s / np.exp(log_m)[..., None]
        )
        predicted_s = overhead_s[..., None] + roofline_s
        log_ratio = np.log(predicted_s / measured) / _HUBER
        misfit = (np.sqrt(1.0 + log_ratio**2) - 1.0).mean(axis=-1)
        return misfit + _penalty(log_c, start[0]) + _penalty(log_m, start[1])

    lows = np.array([np.log(MIN_EFFICIENCY), np.log(MIN_EFFICIENCY), 0.0])
    highs = np.array([np.log(MAX_EFFICIENCY), np.log(MAX_EFFICIENCY), measured.min()])
    log_c, log_m, overhead_s = _grid_search(loss, lows, highs)
    return replace(
        base_hw,
        efficiency_compute=float(np.exp(log_c)),
        efficiency_memory=float(np.exp(log_m)),
        block_overhead_s=overhead_s,
    )


def _penalty(log_efficiency: np.ndarray, log_start: float) -> np.ndarray:
    """A tiny pull toward the base entry's value (to settle factors the data leaves free) and a
    firm one below 1: above it the block beats the measured or published peak, which a fit on
    blocks that all share one arithmetic intensity may otherwise claim (compute- and
    memory-bound readings then fit alike)."""
    above_peak = np.maximum(log_efficiency, 0.0)
    return _PULL * (log_efficiency - log_start) ** 2 + _ABOVE_PEAK * above_peak**2


def _check_measured(
    profiles: Sequence[BlockProfile], measured_s: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The measured times worth fitting (>= 1 us) and the mask that picks them."""
    if len(profiles) != len(measured_s) or not profiles:
        raise ValueError(
            f"fit_efficiency needs one measured time per profile and at least one block; got "
            f"{len(profiles)} profiles and {len(measured_s)} times"
        )
    measured = np.asarray(measured_s, dtype=np.float64)
    if not np.isfinite(measured).all() or (measured < 0).any():
        raise ValueError(f"measured times must be finite and >= 0 seconds, got {measured_s!r}")
    keep = measured >= MIN_MEASURED_S
    if not keep.any():
        raise ValueError(
            f"no block took a measurable time (>= {MIN_MEASURED_S:g} s); time larger inputs "
            "or more repeats"
        )
    return measured[keep], keep


def _grid_search(
    loss: Callable[..., np.ndarray], lows: np.ndarray, highs: np.ndarray
) -> tuple[float, ...]:
    """The grid point of least ``loss`` (called on broadcastable coordinate grids), the grid
    shrunk to one step either side of the best point ``_REFINEMENTS`` times."""
    grids = [np.linspace(lo, hi, _GRID_POINTS) for lo, hi in zip(lows, highs, strict=True)]
    for level in range(_REFINEMENTS + 1):
        values = loss(*np.meshgrid(*grids, indexing="ij", sparse=True))
        best = np.unravel_index(int(np.argmin(values)), values.shape)
        point = tuple(float(g[int(k)]) for g, k in zip(grids, best, strict=True))
        if level < _REFINEMENTS:
            steps = [g[1] - g[0] for g in grids]
            grids = [
                np.linspace(max(lo, x - step), min(hi, x + step), _REFINE_POINTS)
                for x, step, lo, hi in zip(point, steps, lows, highs, strict=True)
            ]
    return _polish(loss, np.array(point), lows, highs, [g[1] - g[0] for g in grids])


def _polish(
    loss: Callable[..., np.ndarray],
    point: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    steps: list[float],
) -> tuple[float, ...]:
    """Compass search from ``point``: try a step either way along each axis, keep any
    improvement, halve the steps when none helps; a grid cannot follow a narrow diagonal
    valley (overhead against memory efficiency), this can."""
    step = np.array(steps, dtype=np.float64) * 4
    smallest = step / 2**_POLISH_HALVINGS
    best = float(loss(*point))
    for _ in range(_POLISH_ROUNDS):
        if (step < smallest).all():
            break
        improved = False
        for axis, sign in itertools.product(range(len(point)), (1.0, -1.0)):
            trial = point.copy()
            trial[axis] = np.clip(trial[axis] + sign * step[axis], lows[axis], highs[axis])
            value = float(loss(*trial))
            if value < best:
                point, best, improved = trial, value, True
        if not improved:
            step /= 2
    return tuple(float(x) for x in point)


# -- the whole procedure ----------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """One calibration input: ``x`` holds ``batch`` inputs of ``seq_len`` tokens attending over
    ``context_len`` (the shape ``block_profiles`` is asked for; vision models ignore lengths)."""

    x: Any
    seq_len: int = 1
    batch: int = 1
    context_len: int | None = None

    @property
    def label(self) -> str:
        context = "" if self.context_len is None else f",context_len={self.context_len}"
        return f"seq_len={self.seq_len},batch={self.batch}{context}"

    def profiles(self, model: SplitModel) -> list[BlockProfile]:
        profiles = model.block_profiles(self.seq_len, self.batch, self.context_len)
        if len(profiles) != model.num_blocks:
            raise ValueError(
                f"{model.name}: block_profiles returned {len(profiles)} profiles for "
                f"{model.num_blocks} blocks; the model's profiles must match its blocks"
            )
        return profiles


@dataclass(frozen=True)
class CalibrationReport:
    """Per-block measured and predicted times of one calibration, and the fitted entry."""

    model_name: str
    spec: HardwareSpec
    block_names: tuple[str, ...]
    workloads: tuple[str, ...]  # the workload label of each block's row
    measured_s: tuple[float, ...]
    predicted_s: tuple[float, ...]
    bounds: tuple[Bound, ...]
    method: str
    threads: int
    dtype: str

    @property
    def relative_errors(self) -> tuple[float, ...]:
        """|predicted - measured| / measured per block (measured floored at 1 us)."""
        return tuple(
            abs(p - m) / max(m, MIN_MEASURED_S)
            for p, m in zip(self.predicted_s, self.measured_s, strict=True)
        )

    @property
    def median_relative_error(self) -> float:
        return statistics.median(self.relative_errors) if self.relative_errors else 0.0

    def rows(self) -> list[tuple[str, str, float, float, float, str]]:
        """(block, workload, measured_s, predicted_s, relative error, bound) per row."""
        columns = (self.block_names, self.workloads, self.measured_s, self.predicted_s)
        return list(zip(*columns, self.relative_errors, self.bounds, strict=True))

    def to_yaml(self) -> str:
        """The fitted entry as a catalog file: ``{name: fields}`` under a comment header."""
        header = (
            f"# Fitted by models.calibrate on {self.model_name} ({self.method} timings, "
            f"threads={self.threads}, {self.dtype}, workloads {sorted(set(self.workloads))}):\n"
            f"# median relative error {100 * self.median_relative_error:.1f}% over "
            f"{len(self.measured_s)} blocks. Peaks and bandwidth: micro-benchmarks or the base "
            "entry; power: copied, not measured.\n"
        )
        body = yaml.safe_dump({self.spec.name: self.spec.to_dict()}, sort_keys=False, width=100)
        return header + body

    def write_yaml(self, path: str | Path) -> Path:
        """Write ``to_yaml()`` to ``path`` (parents created, an existing file replaced)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_yaml())
        return target


def calibrate(
    model: SplitModel,
    x: Any,
    name: str,
    *,
    seq_len: int = 1,
    batch: int = 1,
    context_len: int | None = None,
    more: Sequence[Workload] = (),
    repeats: int = 5,
    threads: int | None = None,
    base: HardwareSpec | None = None,
    dtype: str = "fp32",
) -> CalibrationReport:
    """Time ``model`` on ``x`` (``batch`` inputs of ``seq_len`` tokens) and on the ``more``
    workloads, fit one entry named ``name`` to all their blocks starting from ``base`` (default:
    ``benchmark_spec`` on ``x``'s device), and report per-block errors."""
    workloads = [Workload(x, seq_len, batch, context_len), *more]
    profiles = [w.profiles(model) for w in workloads]
    with torch_threads(threads) as threads_used:
        start = base or benchmark_spec(name, device=device_of(x), dtypes=(dtype,))
        timings = [time_blocks(model, w.x, repeats) for w in workloads]
    flat = [p for ps in profiles for p in ps]
    measured_s = tuple(t for timing in timings for t in timing.block_s)
    fitted = fit_efficiency(flat, measured_s, start, dtype)
    call_s = statistics.median(t.call_overhead_s for t in timings)
    fitted = replace(fitted, name=name, call_overhead_s=call_s)
    return CalibrationReport(
        model_name=model.name,
        spec=fitted,
        block_names=tuple(p.name for p in flat),
        workloads=tuple(w.label for w in workloads for _ in range(model.num_blocks)),
        measured_s=measured_s,
        predicted_s=tuple(block_time_s(p, fitted, dtype) for p in flat),
        bounds=tuple(block_bound(p, fitted, dtype) for p in flat),
        method=timings[0].method,
        threads=threads_used,
        dtype=dtype,
    )
