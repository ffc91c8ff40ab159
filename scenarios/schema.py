"""The scenario schema: typed, frozen pydantic models, strict about keys and types.

A scenario names a model, a codec, one or more device groups with their arrivals and links,
shared cells, the server pool and an optional sweep. Unknown keys, wrong types and impossible
values are errors; ``scenarios.load`` turns them into ``ScenarioError`` with the field path
and the file line. Names that live in other packages (models, codecs, hardware entries) are
checked by ``fleet.run.check`` so that importing this module stays free of torch.

Validators that judge one field raise ``FieldError`` with that field's path below the model,
so that the loader reports the field (and its line) rather than the model that holds it.
Infinite and NaN numbers are rejected everywhere (a rate of ``.inf`` would never finish).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    Tag,
    model_validator,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Dtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8"]


class FieldError(ValueError):
    """A model validator's verdict on one field: ``loc`` is the field's path below the model
    (keys and list indices). pydantic reports it as a ``value_error`` at the model; the loader
    appends ``loc`` so that the problem names the field and its line."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class CodecSpec(BaseModel):
    """A codec config as ``codec.get_codec`` takes it: ``id`` plus that codec's parameters.
    A bare string is the codec's id with its defaults (``codec: slicer``)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    id: str = Field(description="codec id, e.g. fp16, blockwise8, rans, slicer (see README)")

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    def config(self) -> dict[str, Any]:
        """The plain dict for ``codec.get_codec``."""
        return {"id": self.id, **(self.model_extra or {})}


DEFAULT_NEW_TOKENS = 32


class ModelSpec(_Strict):
    name: str = Field(description="a model from `slicer models`, e.g. smollm2-135m")
    task: Literal["infer", "generate"] = Field(
        default="infer",
        description="infer: one forward pass through head and tail per request; generate: a "
        "causal LM generates max_new_tokens greedy tokens per request, one IF per token",
    )
    seq_len: int = Field(
        default=64,
        ge=1,
        le=8192,
        description="tokens per request (language models); the prompt length for generate",
    )
    inputs: int | None = Field(
        default=None, ge=1, description="distinct real inputs cycled through (default: all samples)"
    )
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description=f"tokens generated per request (task: generate; default {DEFAULT_NEW_TOKENS})",
    )
    prompts: Literal["lee-background", "lee-test"] = Field(
        default="lee-background",
        description="causal LMs: the text inputs and generation prompts are windows of: "
        "lee-background (300 news documents) or lee-test (the 50 held-out ones)",
    )

    @model_validator(mode="before")
    @classmethod
    def _new_tokens(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("task") == "generate" and data.get("max_new_tokens") is None:
            return {**data, "max_new_tokens": DEFAULT_NEW_TOKENS}
        if data.get("task", "infer") != "generate" and data.get("max_new_tokens") is not None:
            raise FieldError(
                ("max_new_tokens",), "max_new_tokens applies to task: generate; remove it"
            )
        return data

    @property
    def new_tokens(self) -> int:
        """Tokens per generated sequence (0 for task: infer)."""
        return self.max_new_tokens or 0


class PoissonArrivals(_Strict):
    kind: Literal["poisson"]
    rate_per_s: float = Field(gt=0, description="mean requests per second per device")


class PeriodicArrivals(_Strict):
    kind: Literal["periodic"]
    period_s: float = Field(gt=0, description="seconds between requests of one device")
    phase_s: float | None = Field(
        default=None, ge=0, description="first arrival of every device (default: U[0, period_s))"
    )
    jitter_s: float = Field(
        default=0.0, ge=0, description="each arrival is delayed by U[0, jitter_s)"
    )


class OnOffArrivals(_Strict):
    kind: Literal["on-off"]
    rate_per_s: float = Field(gt=0, description="Poisson rate per device while on")
    on_s: float = Field(gt=0, description="mean length of an on period (exponential)")
    off_s: float = Field(gt=0, description="mean length of an off period (exponential)")


class TraceArrivals(_Strict):
    kind: Literal["trace"]
    path: str = Field(description="text file, one arrival time in seconds per line")


Arrivals = Annotated[
    PoissonArrivals | PeriodicArrivals | OnOffArrivals | TraceArrivals,
    Field(discriminator="kind"),
]


class RandomOutages(_Strict):
    """Alternating exponential gaps and outages, drawn per device link (per cell link)."""

    mean_gap_s: float = Field(gt=0, description="mean time between outages")
    mean_s: float = Field(gt=0, description="mean length of an outage")


class OutageWindow(_Strict):
    """A fixed outage in simulated time, the same for every device of the group or cell."""

    start_s: float = Field(ge=0, description="when the link goes down")
    end_s: float = Field(gt=0, description="when it comes back")

    @model_validator(mode="after")
    def _ordered(self) -> OutageWindow:
        if self.end_s <= self.start_s:
            raise FieldError(
                ("end_s",), f"end_s must be after start_s {self.start_s}, got {self.end_s}"
            )
        return self


def _outages_kind(data: Any) -> str:
    return "windows" if isinstance(data, list) else "random"


# a list is fixed windows, anything else the random process: errors then name one branch only
Outages = Annotated[
    Annotated[RandomOutages, Tag("random")] | Annotated[list[OutageWindow], Tag("windows")],
    Discriminator(_outages_kind),
]


class LinkSpec(_Strict):
    """One direction of a network link. ``kind`` is inferred when omitted: ``trace`` when a
    trace is named, ``constant`` when only ``bandwidth_mbps`` is given."""

    kind: Literal["constant", "trace", "ideal"]
    bandwidth_mbps: float | None = Field(default=None, gt=0, description="constant bandwidth")
    trace: str | None = Field(
        default=None, description="synthetic:NAME (lte, 3g, 5g, wifi, ...) or file:PATH"
    )
    format: Literal["mahimahi", "pensieve", "csv"] | None = Field(
        default=None, description="trace file format (file: traces only)"
    )
    time_column: str | None = Field(
        default=None, description="csv: the time column (default time_s)"
    )
    bandwidth_column: str | None = Field(
        default=None, description="csv: the bandwidth column; its name ends in _mbps, _kbps or _bps"
    )
    scale: float = Field(default=1.0, gt=0, description="multiplies the trace's bandwidth")
    delay_s: float = Field(default=0.0, ge=0, description="one-way propagation delay")
    outages: Outages | None = Field(
        default=None,
        description="zero-bandwidth periods: {mean_gap_s, mean_s} drawn per device (per cell "
        "for a cell link), or fixed windows [{start_s, end_s}, ...] in simulated time",
    )

    @model_validator(mode="before")
    @classmethod
    def _outages_shape(cls, data: Any) -> Any:
        outages = data.get("outages") if isinstance(data, dict) else None
        if outages is not None and not isinstance(outages, dict | list | RandomOutages):
            raise FieldError(
                ("outages",),
                "must be {mean_gap_s: S, mean_s: S} or a list of {start_s: S, end_s: S} "
                f"windows, got {outages!r}",
            )
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _infer_kind(cls, data: Any, handler: ModelWrapValidatorHandler[LinkSpec]) -> LinkSpec:
        """An inferred kind is not counted as set: ``model_dump(exclude_unset=True)`` gives the
        link as written, so changing its trace or bandwidth later infers the kind anew."""
        if not isinstance(data, dict) or "kind" in data:
            return handler(data)
        if data.get("trace") is not None:
            link = handler({**data, "kind": "trace"})
        elif data.get("bandwidth_mbps") is not None:
            link = handler({**data, "kind": "constant"})
        else:
            raise ValueError("give bandwidth_mbps, a trace, or kind: ideal")
        link.__pydantic_fields_set__.discard("kind")
        return link

    @model_validator(mode="after")
    def _consistent(self) -> LinkSpec:
        if self.kind == "constant" and self.bandwidth_mbps is None:
            raise FieldError(("bandwidth_mbps",), "a constant link needs bandwidth_mbps")
        if self.kind == "trace":
            if self.trace is None:
                raise FieldError(
                    ("trace",), "a trace link needs trace: synthetic:NAME or file:PATH"
                )
            if not self.trace.startswith(("synthetic:", "file:")):
                raise FieldError(
                    ("trace",), f"trace must start with synthetic: or file:, got {self.trace!r}"
                )
            if self.trace.startswith("file:") and self.format is None:
                raise FieldError(
                    ("format",), "a file: trace needs format: mahimahi, pensieve or csv"
                )
        elif self.trace is not None:
            raise FieldError(("trace",), f"a {self.kind} link takes no trace")
        if self.kind == "ideal" and self.bandwidth_mbps is not None:
            raise FieldError(("bandwidth_mbps",), "an ideal link takes no bandwidth_mbps")
        if self.kind == "ideal" and self.outages is not None:
            raise FieldError(
                ("outages",), "an ideal link takes no outages; give bandwidth_mbps or a trace"
            )
        if isinstance(self.outages, list):
            for index in range(1, len(self.outages)):
                before, window = self.outages[index - 1], self.outages[index]
                if window.start_s < before.end_s:
                    raise FieldError(
                        ("outages", index, "start_s"),
                        f"outage windows must be sorted and must not overlap: this one starts "
                        f"at {window.start_s}, before the previous one ends at {before.end_s}",
                    )
        return self


class ProbabilityAvailability(_Strict):
    """Each arrival finds its device online with probability ``p_available``, independently."""

    kind: Literal["probability"]
    p_available: float = Field(gt=0, le=1, description="chance a request finds its device online")


class OnOffAvailability(_Strict):
    """Each device alternates exponential online and offline periods."""

    kind: Literal["on-off"]
    up_s: float = Field(gt=0, description="mean length of an online period")
    down_s: float = Field(gt=0, description="mean length of an offline period")


Availability = Annotated[ProbabilityAvailability | OnOffAvailability, Field(discriminator="kind")]


DEFAULT_UPLINK = {"trace": "synthetic:lte"}
DEFAULT_DOWNLINK = {"bandwidth_mbps": 50.0}


#: Huang et al., "A Close Examination of Performance and Power Characteristics of 4G LTE
#: Networks" (MobiSys 2012), LTE power model: 1288.04 mW while the radio is active, plus
#: 438.39 mW per Mbit/s of uplink and 51.97 mW per Mbit/s of downlink throughput.
RADIO_PRESETS: dict[str, dict[str, float]] = {
    "lte": {"active_w": 1.28804, "uplink_j_per_mbit": 0.43839, "downlink_j_per_mbit": 0.05197},
}


class RadioSpec(_Strict):
    """Device radio energy per transfer: ``active_w`` over the transfer's time (start to
    arrival) plus a cost per Mbit moved. ``radio: lte`` is Huang et al.'s LTE model."""

    active_w: float = Field(ge=0, description="power while a transfer is under way")
    uplink_j_per_mbit: float = Field(default=0.0, ge=0)
    downlink_j_per_mbit: float = Field(default=0.0, ge=0)


class DeviceGroup(_Strict):
    name: Name
    count: int = Field(ge=1, description="devices in the group")
    hardware: str = Field(description="a device entry of the hardware catalog, or ideal")
    dtype: Dtype = Field(default="fp32", description="dtype the head runs in")
    split: int = Field(ge=0, description="blocks run on the device (0 sends the input)")
    codec: CodecSpec | None = Field(default=None, description="overrides the scenario's codec")
    arrivals: Arrivals
    uplink: LinkSpec | None = Field(
        default=None, description="the device's own uplink (default: trace synthetic:lte)"
    )
    downlink: LinkSpec | None = Field(
        default=None, description="the device's own downlink (default: constant 50 Mbps)"
    )
    cell: Name | None = Field(
        default=None, description="a network.cells entry whose links it shares"
    )
    availability: Availability | None = Field(
        default=None,
        description="device dropouts: a request arriving while its device is offline is "
        "dropped (reason device_offline); default: always online",
    )
    radio: RadioSpec | None = Field(
        default=None,
        description="radio energy of transfers (`lte` or a RadioSpec); default: not counted",
    )

    @model_validator(mode="before")
    @classmethod
    def _radio_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("radio"), str):
            name = data["radio"]
            if name not in RADIO_PRESETS:
                raise FieldError(
                    ("radio",), f"unknown radio preset {name!r}; use one of {list(RADIO_PRESETS)}"
                )
            return {**data, "radio": RADIO_PRESETS[name]}
        return data


class Cell(_Strict):
    """Devices attached to a cell share its links fairly (processor sharing)."""

    name: Name
    uplink: LinkSpec | None = None
    downlink: LinkSpec | None = None

    @model_validator(mode="after")
    def _has_link(self) -> Cell:
        if self.uplink is None and self.downlink is None:
            raise ValueError("a cell needs an uplink, a downlink or both")
        return self


class Network(_Strict):
    cells: list[Cell] = Field(default_factory=list)


class Batching(_Strict):
    max_batch: int = Field(default=1, ge=1, description="largest batch a replica runs")
    max_wait_s: float = Field(
        default=0.0,
        ge=0,
        description="how long the oldest queued request may wait for the batch to fill",
    )


class ServiceOverride(_Strict):
    """Batch service time drawn from a distribution instead of the cost model."""

    kind: Literal["deterministic", "exponential", "lognormal"]
    mean_s: float = Field(gt=0)
    cv: float = Field(default=1.0, gt=0, description="lognormal: coefficient of variation")


class ReplicaFailures(_Strict):
    """Each replica fails after Exp(mtbf_s) of up time and is repaired after Exp(mttr_s)."""

    mtbf_s: float = Field(gt=0, description="mean up time between failures of one replica")
    mttr_s: float = Field(gt=0, description="mean time to repair")
    on_failure: Literal["reroute", "drop"] = Field(
        default="reroute",
        description="what happens to the failed replica's running batch and queued requests: "
        "reroute (queue them again) or drop (reason replica_failed)",
    )


Routing = Literal["shared-queue", "round-robin", "random", "least-loaded", "power-of-two"]


class Servers(_Strict):
    replicas: int = Field(default=1, ge=1)
    hardware: str = Field(default="h100-sxm", description="a server entry of the hardware catalog")
    dtype: Dtype = Field(default="fp16", description="dtype the tail runs in")
    batching: Batching = Field(default_factory=Batching)
    routing: Routing = "shared-queue"
    queue_limit: int | None = Field(
        default=None,
        ge=0,
        description="queued requests per replica (the whole queue for shared-queue)",
    )
    service: ServiceOverride | None = None
    failures: ReplicaFailures | None = Field(
        default=None, description="replicas fail and are repaired (default: never)"
    )
    decode_speedup: float = Field(
        default=1.0,
        gt=0,
        description="divides the codecs' decode time on the server, which is otherwise the "
        "single-core x86 throughput measured for our implementation (e.g. 8 for an 8-core "
        "decode pool; a guess until measured)",
    )
    kv_cache_bytes: float | None = Field(
        default=None,
        gt=0,
        description="task: generate: KV-cache memory per replica (default: 90% of the "
        "hardware's memory less the tail's weights)",
    )

    @model_validator(mode="before")
    @classmethod
    def _batching_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("batching") == "none":
            return {**data, "batching": {}}
        return data


class Record(_Strict):
    window_s: float = Field(default=1.0, gt=0, description="servers.parquet window length")


class RaySpec(_Strict):
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


class Scenario(_Strict):
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
