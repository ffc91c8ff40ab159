"""The server cost model: how long a replica is busy with a batch or a step.

A replica's busy time is the tail on its hardware (``models.durations.ModelCosts``: weights read
once per batch or step) plus the codec's decode of every IF in it. Decode time is the codec's
measured single-core throughput (``models.durations.codec_decode_s``) divided by
``servers.decode_speedup``, a stand-in for a decode pool of that many cores (or a faster
decoder); this module is the one place that reads it. A scenario's ``servers.service`` override
replaces the whole model for request batching with drawn service times.

A *class* is one (split, codec) pair: requests of one class can share a batch. Classes are
numbered by the caller in first-seen order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.durations import ModelCosts, codec_decode_s
from models.hardware import HardwareSpec


@dataclass(frozen=True)
class ServiceDraw:
    """Drawn service times (``servers.service``): ``kind`` is deterministic, exponential or
    lognormal (with coefficient of variation ``cv``)."""

    kind: str
    mean_s: float
    cv: float


@dataclass(frozen=True)
class ServiceClass:
    split: int
    codec_id: str


class ServerCost:
    def __init__(
        self,
        costs: ModelCosts,
        hardware: HardwareSpec,
        dtype: str,
        classes: Sequence[ServiceClass],
        *,
        decode_speedup: float = 1.0,
        service: ServiceDraw | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if not (math.isfinite(decode_speedup) and decode_speedup > 0):
            raise ValueError(f"decode_speedup must be finite and > 0, got {decode_speedup!r}")
        hardware.peak(dtype)  # an unknown dtype fails here, before the run starts
        self.costs = costs
        self.hardware = hardware
        self.dtype = dtype
        self.classes = list(classes)
        self.decode_speedup = decode_speedup
        self._service = service
        self._rng = rng if rng is not None else np.random.default_rng(0)

    def decode_pool_s(self, single_core_s: float) -> float:
        """Seconds the decode pool takes for work one core does in ``single_core_s``."""
        return single_core_s / self.decode_speedup

    def batch_s(self, klass: int, raw_bytes: float, batch: int) -> float:
        """A request batch of ``batch`` IFs of ``klass`` holding ``raw_bytes`` in all: decode,
        then the tail at that batch size (or a drawn service time)."""
        if self._service is not None:
            return _draw(self._service, self._rng)
        c = self.classes[klass]
        decode_s = self.decode_pool_s(codec_decode_s(c.codec_id, raw_bytes, self.hardware.name))
        return decode_s + self.costs.tail_s(self.hardware, self.dtype, c.split, batch)

    def step_s(
        self,
        prefills: Sequence[tuple[int, float]],
        decodes: Sequence[tuple[int, float, int]],
    ) -> float:
        """One continuous-batching step: ``prefills`` as (class, prompt IF raw bytes),
        ``decodes`` as (class, token IF raw bytes, context tokens with the new one). Per class,
        the batched prefill tail and one decode step; plus the decode of every IF."""
        name = self.hardware.name
        by_class: dict[int, tuple[list[int], list[int]]] = {}
        single_core_s = 0.0
        for klass, raw_bytes in prefills:
            by_class.setdefault(klass, ([], []))[0].append(1)
            single_core_s += codec_decode_s(self.classes[klass].codec_id, raw_bytes, name)
        for klass, raw_bytes, context in decodes:
            by_class.setdefault(klass, ([], []))[1].append(context)
            single_core_s += codec_decode_s(self.classes[klass].codec_id, raw_bytes, name)
        tail_s = 0.0
        for klass, (prefilled, contexts) in by_class.items():
            split = self.classes[klass].split
            if prefilled:
                tail_s += self.costs.tail_s(self.hardware, self.dtype, split, len(prefilled))
            if contexts:
                tail_s += self.costs.tail_step_s(self.hardware, self.dtype, split, contexts)
        return self.decode_pool_s(single_core_s) + tail_s


def _draw(service: ServiceDraw, rng: np.random.Generator) -> float:
    if service.kind == "deterministic":
        return service.mean_s
    if service.kind == "exponential":
        return float(rng.exponential(service.mean_s))
    sigma2 = math.log1p(service.cv * service.cv)  # lognormal with this mean and cv
    return float(rng.lognormal(math.log(service.mean_s) - sigma2 / 2, math.sqrt(sigma2)))
