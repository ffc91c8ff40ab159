"""The shapes the simulation's modules share: each device group's resolved set-up, the
``Task`` protocol every kind of request implements (``fleet.infer``, ``fleet.sequences``) and
the service classes, seeds and cost model of a fleet's servers. Below ``fleet.rows`` and
``fleet.host``, so nothing here imports the loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy

from models.codec_time import CodecTimes
from models.durations import ModelCosts
from models.hardware import HardwareSpec, get_hardware
from scenarios.schema import Servers
from server.cost import ServerCost, ServiceClass, ServiceDraw
from server.decode_pool import DecodePool
from server.engine.jobs import Pending
from server.protocol import ServerSide

Transfer = Callable[[int, float, float], None]  # (request id, start_s, arrive_s) of a transfer


@dataclass(frozen=True)
class Head:
    """One head a device of an adaptive group keeps (``fleet.policy``): its split, codec, head
    time and energy on the group's hardware, and the service class of its requests."""

    split: int
    codec_id: str
    codec_key: str
    head_s: float
    head_energy_j: float
    klass: int


@dataclass(frozen=True)
class GroupSetup:
    """What the loop needs of one device group, resolved once. ``heads`` is empty for
    ``policy: static``; for an adaptive group it lists every head, the group's own first, and
    ``policy`` is the group's ``scenarios.schema.AdaptivePolicy``."""

    name: str
    split: int
    codec_id: str
    codec_key: str
    hardware: HardwareSpec
    dtype: str
    head_s: float
    head_energy_j: float
    heads: tuple[Head, ...] = ()
    policy: Any = None


class Task(Protocol):
    """What one kind of request does between its head starting and its row being written."""

    @property
    def server(self) -> ServerSide: ...

    def job(self, rid: int) -> Any:
        """The oracle job submitted when request ``rid``'s head starts."""
        ...

    def submit(self, jobs: Sequence[Any]) -> Sequence[Pending[Any]]: ...

    def prefetch(self, jobs: Sequence[Any]) -> None: ...

    def head_started(self, rid: int) -> float:
        """Request ``rid``'s head starts now; returns how long the head runs."""
        ...

    def head_ended(self, rid: int, result: Any) -> None: ...

    def forget(self, rid: int) -> None:
        """Request ``rid`` ended without completing: drop what the task keeps for it."""
        ...

    def flush(self) -> None:
        """Write what the task buffers (before request rows are written)."""
        ...

    def extra_columns(self, idx: np.ndarray) -> dict[str, Any]: ...

    def radio_energy_j(self, idx: np.ndarray, g: np.ndarray) -> np.ndarray: ...


def service_classes(groups: Sequence[GroupSetup], group_class: Sequence[int]) -> list[ServiceClass]:
    """The service class of every class number, from the first group that has it, then from
    the heads of adaptive groups (numbered after the groups' own classes)."""
    classes: dict[int, ServiceClass] = {}
    for g, klass in zip(groups, group_class, strict=True):
        classes.setdefault(klass, ServiceClass(g.split, g.codec_id, g.codec_key))
    for g in groups:
        for head in g.heads:
            classes.setdefault(head.klass, ServiceClass(head.split, head.codec_id, head.codec_key))
    return [classes[k] for k in range(len(classes))]


@dataclass(frozen=True)
class ServerSeeds:
    """The seed streams of the server side: routing, drawn service times, replica failures."""

    route: np.random.SeedSequence
    service: np.random.SeedSequence
    failure: np.random.SeedSequence


def decode_pool_cores(servers: Servers) -> int:
    """The decode pool's cores: per replica (``servers.decode.cores``, else the hardware
    entry's ``host_cpu_cores``) times the replicas; 0 when the accelerators decode."""
    if servers.decode.on == "gpu":
        return 0
    per_replica = servers.decode.cores
    if per_replica is None:
        per_replica = get_hardware(servers.hardware).host_cpu_cores
    return max(1, per_replica) * servers.replicas


def decode_pool(
    env: simpy.Environment, servers: Servers, cost: ServerCost, on_decoded: Callable[[int], None]
) -> DecodePool | None:
    """The servers' decode pool (``server.decode_pool``), or None when the accelerators decode
    (``servers.decode.on: gpu``)."""
    if cost.decodes_on_accelerator:
        return None
    return DecodePool(env, cores=decode_pool_cores(servers), on_decoded=on_decoded)


def server_cost(
    costs: ModelCosts,
    codec_times: CodecTimes,
    servers: Servers,
    groups: Sequence[GroupSetup],
    group_class: Sequence[int],
    seeds: ServerSeeds,
) -> ServerCost:
    """The servers' cost model for this fleet's service classes (``server.cost``)."""
    override = servers.service
    return ServerCost(
        costs,
        get_hardware(servers.hardware),
        servers.dtype,
        service_classes(groups, group_class),
        codec_times,
        decode_on=servers.decode.on,
        service=None
        if override is None
        else ServiceDraw(override.kind, override.mean_s, override.cv),
        rng=np.random.default_rng(seeds.service),
    )
