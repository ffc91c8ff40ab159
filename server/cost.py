"""The server cost model: how long a replica is busy with a batch or a step, and how long
one IF's decode takes.

A replica's busy time is the tail on its hardware (``models.durations.ModelCosts``: weights read
once per batch or step). Where IFs are decoded is ``servers.decode``: on the decode pool of host
CPU cores (``on: cpu``, ``server.decode_pool``), which is its own resource, so a batch's busy
time is its tail alone and ``decode_s`` is one IF on one host core (the fitted codec cost model
of ``models.codec_time``, scaled to the host CPU's score); or on the accelerator (``on: gpu``),
where every batch and step adds the decode of its IFs at the published GPU figures of
``models.codec_time.gpu_decode_s``. This module is the one place that decides which. A
scenario's ``servers.service`` override replaces the whole model for request batching with
drawn service times.

A *class* is one (split, codec setting) pair: requests of one class can share a batch. Classes
are numbered by the caller in first-seen order. An IF is given as (class, raw bytes, payload
bytes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.codec_time import CodecTimes, gpu_decode_s
from models.durations import ModelCosts
from models.hardware import HardwareSpec

IF = tuple[int, float, float]  # (class, raw bytes, payload bytes)


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
    codec_key: str


class ServerCost:
    def __init__(
        self,
        costs: ModelCosts,
        hardware: HardwareSpec,
        dtype: str,
        classes: Sequence[ServiceClass],
        codec_times: CodecTimes,
        *,
        decode_on: str = "cpu",
        service: ServiceDraw | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if decode_on not in ("cpu", "gpu"):
            raise ValueError(f"decode_on must be cpu or gpu, got {decode_on!r}")
        hardware.peak(dtype)  # an unknown dtype fails here, before the run starts
        self.costs = costs
        self.hardware = hardware
        self.dtype = dtype
        self.classes = list(classes)
        self.codec_times = codec_times
        for c in self.classes:
            codec_times.resolve(c.codec_key)  # a codec with no fitted cost fails here
        self.decodes_on_accelerator = decode_on == "gpu"
        self._service = service
        self._rng = rng if rng is not None else np.random.default_rng(0)

    def decode_s(
        self, klass: int, raw_bytes: float, payload_bytes: float, *, frame: bool = False
    ) -> float:
        """One IF's decode on one host core (the decode pool's time for it); ``frame``: a
        stream's step frame rather than a container."""
        key = self.classes[klass].codec_key
        times = self.codec_times
        return times.seconds("decode", key, raw_bytes, payload_bytes, self.hardware, frame=frame)

    def accelerator_decode_s(self, ifs: Sequence[IF]) -> float:
        """The accelerator's decode of ``ifs`` in one batch or step: 0 unless it decodes (and
        with drawn service times, which replace the whole model)."""
        if not self.decodes_on_accelerator or self._service is not None or not ifs:
            return 0.0
        ids = [self.classes[k].codec_id for k, _, _ in ifs]
        return gpu_decode_s(ids, [r for _, r, _ in ifs], [p for _, _, p in ifs], self.hardware)

    def batch_s(self, klass: int, ifs: Sequence[IF]) -> float:
        """A request batch of ``ifs`` of ``klass``: the tail at that batch size, after the
        accelerator's decode where it decodes (or a drawn service time)."""
        if self._service is not None:
            return _draw(self._service, self._rng)
        split = self.classes[klass].split
        tail_s = self.costs.tail_s(self.hardware, self.dtype, split, len(ifs))
        return self.accelerator_decode_s(ifs) + tail_s

    def step_s(self, prefills: Sequence[IF], decodes: Sequence[tuple[IF, int]]) -> float:
        """One continuous-batching step: ``prefills`` (prompt IFs) and ``decodes`` (token IFs
        with the context in tokens, the new one included). Per class, the batched prefill tail
        and one decode step; plus the accelerator's decode of every IF where it decodes."""
        by_class: dict[int, tuple[list[int], list[int]]] = {}
        for klass, _, _ in prefills:
            by_class.setdefault(klass, ([], []))[0].append(1)
        for (klass, _, _), context in decodes:
            by_class.setdefault(klass, ([], []))[1].append(context)
        tail_s = 0.0
        for klass, (prefilled, contexts) in by_class.items():
            split = self.classes[klass].split
            if prefilled:
                tail_s += self.costs.tail_s(self.hardware, self.dtype, split, len(prefilled))
            if contexts:
                tail_s += self.costs.tail_step_s(self.hardware, self.dtype, split, contexts)
        ifs = [*prefills, *(f for f, _ in decodes)]
        return self.accelerator_decode_s(ifs) + tail_s


def _draw(service: ServiceDraw, rng: np.random.Generator) -> float:
    if service.kind == "deterministic":
        return service.mean_s
    if service.kind == "exponential":
        return float(rng.exponential(service.mean_s))
    sigma2 = math.log1p(service.cv * service.cv)  # lognormal with this mean and cv
    return float(rng.lognormal(math.log(service.mean_s) - sigma2 / 2, math.sqrt(sigma2)))
