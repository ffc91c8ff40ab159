"""Timing a ``SplitModel`` block by block on this machine, and micro-benchmarks of its peak
FLOP/s and memory bandwidth: the measurements ``models.calibrate`` fits.

``measure_block_times``: ``repeats`` timed rounds after a warm-up, under
``torch.inference_mode`` with ``torch.set_num_threads(threads)`` for the duration; on a CUDA
input each timing is bracketed by ``torch.cuda.synchronize``. A model with a
``run_blocks(h, start, stop)`` method (the IF at split ``start`` -> the IF at split ``stop``;
``run_blocks(x, 0, s)`` equals ``head(x, s)``) has every block timed alone on its real input,
median over the rounds: precise, one block run per block. Any other model is timed by
differencing cumulative times: ``head(x, s)`` for the first half of the splits and
``tail(head(x, s), s)`` for the second, so no difference spans more than half the model. A
difference inherits the noise of two long runs, so there each cumulative time is the minimum
over the rounds (the least disturbed run; load from other processes only adds time); still,
on a busy machine small blocks come out as noise, and the sweeps cost about L^2/4 block runs
per round: models should offer ``run_blocks``. Either way the time of a zero-block call is
subtracted: the times are what ``block_time_s`` predicts, and ``calibrate`` reports that call
overhead as the entry's ``call_overhead_s``.

``benchmark_spec``: peak FLOP/s is the best of a few square matmuls, bandwidth
the best of a few sums over a 256 MiB tensor (a read stream, like reading weights; a copy would
also pay write-allocate traffic). Power cannot be measured portably: it is copied from the
catalog entry ``power_from`` (``laptop-cpu`` by default); override it for other hardware.

"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from models.hardware import HardwareSpec, get_hardware
from models.split import SplitModel

_TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@runtime_checkable
class RunsBlocks(Protocol):
    """Optional model method that lets every block be timed alone."""

    def run_blocks(self, h: Any, start: int, stop: int) -> Any: ...


@dataclass(frozen=True)
class BlockTimes:
    """Measured per-block times (call overhead removed) and how they were taken."""

    block_s: tuple[float, ...]
    call_overhead_s: float
    method: str  # "isolated" (run_blocks) | "differenced" (head/tail sweeps)


# -- timing -----------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run with ``threads`` torch threads (None: leave as is); yields the count in force."""
    before = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def device_of(x: Any) -> torch.device:
    """The first non-CPU device of a tensor in ``x`` (searching lists, tuples, dicts and
    dataclass fields, e.g. an ``EncoderBatch``), else CPU."""
    if isinstance(x, torch.Tensor):
        return x.device
    items: Iterable[Any] = ()
    if isinstance(x, dict):
        items = x.values()
    elif isinstance(x, list | tuple):
        items = x
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        items = (getattr(x, f.name) for f in dataclasses.fields(x))
    for item in items:
        device = device_of(item)
        if device.type != "cpu":
            return device
    return torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_s(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _times(
    fns: Sequence[Callable[[], Any]],
    repeats: int,
    warmup: int,
    device: torch.device,
    reduce: Callable[[list[float]], float] = statistics.median,
) -> list[float]:
    """Median (or ``reduce``) time of each function; rounds interleave the functions so that
    load from other processes spreads over all of them alike."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    samples: list[list[float]] = [[] for _ in fns]
    for round_ in range(warmup + repeats):
        for fn, times in zip(fns, samples, strict=True):
            elapsed_s = _time_s(fn, device)
            if round_ >= warmup:
                times.append(elapsed_s)
    return [reduce(times) for times in samples]


def measure_peak_flops(
    *, size: int = 1024, repeats: int = 5, device: str | torch.device = "cpu", dtype: str = "fp32"
) -> float:
    """Best FLOP/s of a ``size`` x ``size`` matmul in ``dtype`` (fp32, fp16 or bf16)."""
    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"measure_peak_flops: dtype must be one of {list(_TORCH_DTYPES)}")
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev, dtype=_TORCH_DTYPES[dtype])
    b = torch.randn(size, size, device=dev, dtype=_TORCH_DTYPES[dtype])
    with torch.inference_mode():
        best_s = min(_time_s(lambda: torch.mm(a, b), dev) for _ in range(repeats + 1))
    return 2.0 * size**3 / best_s


def measure_memory_bandwidth(
    *, size_bytes: int = 256 * 2**20, repeats: int = 5, device: str | torch.device = "cpu"
) -> float:
    """Best read bandwidth in bytes/s: a sum over a float32 tensor of ``size_bytes``."""
    dev = torch.device(device)
    x = torch.ones(size_bytes // 4, device=dev)
    with torch.inference_mode():
        best_s = min(_time_s(lambda: x.sum(), dev) for _ in range(repeats + 1))
    return x.numel() * 4 / best_s


def benchmark_spec(
    name: str = "this-cpu",
    *,
    device: str | torch.device = "cpu",
    kind: str = "device",
    dtypes: Sequence[str] = ("fp32",),
    power_from: str = "laptop-cpu",
) -> HardwareSpec:
    """An entry for this machine from micro-benchmarks (run under the caller's thread count):
    measured peaks, efficiencies 1, no overheads, power copied from ``power_from``."""
    dev = torch.device(device)
    peaks = {d: measure_peak_flops(device=dev, dtype=d) for d in ("fp32", *dtypes)}
    power = get_hardware(power_from)
    where = _cpu_name() if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    return HardwareSpec(
        name=name,
        kind=kind,
        description=f"{where} ({dev.type}, threads={torch.get_num_threads()}): peaks from "
        f"micro-benchmarks, power copied from {power_from}",
        peak_flops_per_s=tuple(peaks.items()),
        memory_bandwidth_bytes_per_s=measure_memory_bandwidth(device=dev),
        memory_capacity_bytes=power.memory_capacity_bytes,
        idle_power_w=power.idle_power_w,
        active_power_w=power.active_power_w,
        efficiency_compute=1.0,
        efficiency_memory=1.0,
        call_overhead_s=0.0,
        block_overhead_s=0.0,
    )


def _cpu_name() -> str:
    """The CPU's model name where Linux tells it, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def measure_block_times(
    model: SplitModel, x: Any, repeats: int = 5, *, threads: int | None = None, warmup: int = 1
) -> list[float]:
    """Median wall time of each block of ``model`` on input ``x``, call overhead removed."""
    with torch_threads(threads):
        return list(time_blocks(model, x, repeats, warmup=warmup).block_s)


def time_blocks(model: SplitModel, x: Any, repeats: int = 5, *, warmup: int = 1) -> BlockTimes:
    """``measure_block_times`` with the call overhead and method, under the current threads."""
    device = device_of(x)
    with torch.inference_mode():
        if isinstance(model, RunsBlocks):
            return _isolated(model.num_blocks, model.run_blocks, x, repeats, warmup, device)
        return _differenced(model, x, repeats, warmup, device)


def _isolated(
    num_blocks: int,
    run_blocks: Callable[[Any, int, int], Any],
    x: Any,
    repeats: int,
    warmup: int,
    device: torch.device,
) -> BlockTimes:
    inputs = [x]
    for i in range(num_blocks):
        inputs.append(run_blocks(inputs[i], i, i + 1))

    def call(start: int, stop: int) -> Callable[[], Any]:
        return lambda: run_blocks(inputs[start], start, stop)

    fns = [call(i, i + 1) for i in range(num_blocks)] + [call(0, 0)]
    times_s = _times(fns, repeats, warmup, device)
    call_s = times_s[-1]
    return BlockTimes(tuple(max(t - call_s, 0.0) for t in times_s[:-1]), call_s, "isolated")


def _differenced(
    model: SplitModel, x: Any, repeats: int, warmup: int, device: torch.device
) -> BlockTimes:
    num_blocks = model.num_blocks
    middle = num_blocks // 2
    ifs = {s: model.head(x, s) for s in range(middle, num_blocks + 1)}
    heads = [(lambda s=s: model.head(x, s)) for s in range(middle + 1)]
    tails = [(lambda s=s: model.tail(ifs[s], s)) for s in range(middle, num_blocks + 1)]
    times_s = _times([*heads, *tails], repeats, warmup, device, reduce=min)
    head_s, tail_s = times_s[: middle + 1], times_s[middle + 1 :]
    block_s = [head_s[i + 1] - head_s[i] for i in range(middle)]
    block_s += [tail_s[j] - tail_s[j + 1] for j in range(num_blocks - middle)]
    return BlockTimes(tuple(max(t, 0.0) for t in block_s), head_s[0], "differenced")
