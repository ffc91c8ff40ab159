"""The scenario schema: typed, frozen pydantic models, strict about keys and types.

A scenario names a model, a codec, one or more device groups with their arrivals and links,
shared cells, the server pool and an optional sweep. Unknown keys, wrong types and impossible
values are errors; ``scenarios.load`` turns them into ``ScenarioError`` with the field path
and the file line. Names that live in other packages (models, codecs, hardware entries) are
checked by ``fleet.run.check`` so that importing this module stays free of torch.

Validators that judge one field raise ``FieldError`` with that field's path below the model,
so that the loader reports the field (and its line) rather than the model that holds it.
Infinite and NaN numbers are rejected everywhere (a rate of ``.inf`` would never finish).

This module holds the top level (``Scenario``, ``Record``, ``RaySpec``, ``group_links``) and
re-exports every name of the schema, so ``from scenarios.schema import X`` finds them all. The
parts live in ``schema_base`` (the strict base model, names, dtypes, ``FieldError``),
``schema_workload`` (model and codec), ``schema_fleet`` (device groups, arrivals,
availability, radio), ``schema_links`` (links, outages, cells) and ``schema_servers`` (the
server pool).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scenarios.schema_base import NAME_PATTERN, Dtype, FieldError, Name, Strict
from scenarios.schema_fleet import (
    RADIO_PRESETS,
    AdaptivePolicy,
    Arrivals,
    Availability,
    DeviceGroup,
    HeadOption,
    OnOffArrivals,
    OnOffAvailability,
    PeriodicArrivals,
    PoissonArrivals,
    ProbabilityAvailability,
    RadioSpec,
    TraceArrivals,
)
from scenarios.schema_links import (
    DEFAULT_DOWNLINK,
    DEFAULT_UPLINK,
    Cell,
    LinkSpec,
    Network,
    Outages,
    OutageWindow,
    RandomOutages,
)
from scenarios.schema_servers import (
    Batching,
    Decode,
    ReplicaFailures,
    Routing,
    Servers,
    ServiceOverride,
)
from scenarios.schema_workload import DEFAULT_NEW_TOKENS, CodecSpec, ModelSpec

__all__ = [
    "DEFAULT_DOWNLINK",
    "DEFAULT_NEW_TOKENS",
    "DEFAULT_UPLINK",
    "NAME_PATTERN",
    "RADIO_PRESETS",
    "AdaptivePolicy",
    "Arrivals",
    "Availability",
    "Batching",
    "Cell",
    "CodecSpec",
    "Decode",
    "DeviceGroup",
    "Dtype",
    "FieldError",
    "HeadOption",
    "LinkSpec",
    "ModelSpec",
    "Name",
    "Network",
    "OnOffArrivals",
    "OnOffAvailability",
    "OutageWindow",
    "Outages",
    "PeriodicArrivals",
    "PoissonArrivals",
    "ProbabilityAvailability",
    "RadioSpec",
    "RandomOutages",
    "RaySpec",
    "Record",
    "ReplicaFailures",
    "Routing",
    "Scenario",
    "Servers",
    "ServiceOverride",
    "Strict",
    "TraceArrivals",
    "group_links",
]


class Record(Strict):
    window_s: float = Field(default=1.0, gt=0, description="servers.parquet window length")


class RaySpec(Strict):
    """Where real compute runs (``mode: real``). Devices and replicas are rows of state inside
    a few actors, never one actor each."""

    enabled: bool = Field(
        default=True, description="false: run heads and tails in this process (LocalOracle)"
    )
    address: str | None = Field(
        default=None, description="an existing cluster: auto or HOST:PORT (default: start one)"
    )
    device_shards: int | None = Field(
        default=None, ge=1, description="device-shard actors (default: one per CPU, at most 8)"
    )
    server_workers: int | None = Field(
        default=None, ge=1, description="server-worker actors (default: one per GPU, else 1)"
    )
    max_restarts: int = Field(default=3, ge=0, description="restarts of an actor that dies")
    max_task_retries: int = Field(
        default=3, ge=0, description="resubmissions of a call whose actor died"
    )
    parallel_sweep: bool = Field(default=True, description="run sweep points as parallel Ray tasks")


class Scenario(Strict):
    name: Name
    description: str = ""
    seed: int = Field(default=0, ge=0)
    seeds: Literal["per-point", "shared"] = Field(
        default="per-point",
        description="sweeps: per-point gives every point its own seed derived from seed; shared "
        "runs every point with seed (common random numbers: the same arrivals, links and fades "
        "wherever the fleet is the same, so points differ only by their parameters)",
    )
    duration_s: float | None = Field(default=None, gt=0, description="arrivals stop at this time")
    requests_per_device: int | None = Field(
        default=None, ge=1, description="or: every device sends exactly this many requests"
    )
    mode: Literal["real", "replay"] = "real"
    replay_from: str | None = Field(
        default=None, description="replay: a run or sweep directory, or a profile.parquet"
    )
    codec_costs: str | None = Field(
        default=None,
        description="a codec cost file (slicer calibrate-codecs --out) for codec times "
        "(default: the bundled fits, measured on the development machine)",
    )
    model: ModelSpec
    codec: CodecSpec = Field(default_factory=lambda: CodecSpec(id="fp16"))
    fleet: list[DeviceGroup] = Field(min_length=1)
    network: Network = Field(default_factory=Network)
    servers: Servers = Field(default_factory=Servers)
    record: Record = Field(default_factory=Record)
    ray: RaySpec = Field(default_factory=RaySpec)
    sweep: dict[str, Any] | None = Field(
        default=None, description="path: [values] grid, plus zip: {path: [values]} (see README)"
    )

    @model_validator(mode="after")
    def _cross_fields(self) -> Scenario:
        if (self.duration_s is None) == (self.requests_per_device is None):
            raise ValueError("give exactly one of duration_s and requests_per_device")
        if self.mode == "replay" and self.replay_from is None:
            raise FieldError(
                ("replay_from",), "mode: replay needs replay_from (a real run's directory)"
            )
        _unique(("fleet",), [g.name for g in self.fleet])
        if self.model.task == "generate":
            self._check_generate()
        elif self.servers.kv_cache_bytes is not None:
            raise FieldError(
                ("servers", "kv_cache_bytes"), "kv_cache_bytes applies to model.task: generate"
            )
        cells = {c.name: c for c in self.network.cells}
        _unique(("network", "cells"), [c.name for c in self.network.cells])
        for index, group in enumerate(self.fleet):
            if group.cell is None:
                continue
            if group.cell not in cells:
                raise FieldError(
                    ("fleet", index, "cell"),
                    f"group {group.name!r} names cell {group.cell!r}, which network.cells "
                    f"does not define (it has {sorted(cells)})",
                )
            cell = cells[group.cell]
            for direction in ("uplink", "downlink"):
                if getattr(cell, direction) is not None and getattr(group, direction) is not None:
                    raise FieldError(
                        ("fleet", index, direction),
                        f"group {group.name!r} sets its own {direction} but shares the "
                        f"{direction} of cell {group.cell!r}; remove one of them",
                    )
        return self

    def _check_generate(self) -> None:
        """What continuous batching of generated sequences does not take (yet)."""
        servers = self.servers
        for name, why in (
            ("failures", "replica failures are simulated for task: infer only"),
            (
                "service",
                "decode steps are costed from the model; a service override is for task: infer",
            ),
        ):
            if getattr(servers, name) is not None:
                raise FieldError(("servers", name), f"{why}; remove servers.{name}")

    def codec_for(self, group: DeviceGroup) -> CodecSpec:
        return group.codec if group.codec is not None else self.codec


def group_links(scenario: Scenario, group: DeviceGroup) -> tuple[LinkSpec | None, LinkSpec | None]:
    """The group's own (uplink, downlink); None where the group's cell carries that direction."""
    cell = next((c for c in scenario.network.cells if c.name == group.cell), None)
    up: LinkSpec | None = group.uplink or LinkSpec.model_validate(DEFAULT_UPLINK)
    down: LinkSpec | None = group.downlink or LinkSpec.model_validate(DEFAULT_DOWNLINK)
    if cell is not None and cell.uplink is not None:
        up = None
    if cell is not None and cell.downlink is not None:
        down = None
    return up, down


def _unique(where: tuple[str, ...], names: list[str]) -> None:
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            raise FieldError(
                (*where, index, "name"),
                f"name {name!r} is already used by {'.'.join(where)}[{first[name]}]; "
                "names must be unique",
            )
        first[name] = index
