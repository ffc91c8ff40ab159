"""Device groups of a scenario (``DeviceGroup``): how many devices, their hardware and split,
when they send requests (the arrival processes), when they are offline (availability), their
links, the energy their radio spends and how each request picks its split (``policy``: the
group's one split, or an ``AdaptivePolicy`` choosing among several heads per request; the
decision rule is ``fleet.policy``'s).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from scenarios.schema_base import Dtype, FieldError, Name, Strict
from scenarios.schema_links import LinkSpec
from scenarios.schema_workload import CodecSpec


class PoissonArrivals(Strict):
    kind: Literal["poisson"]
    rate_per_s: float = Field(gt=0, description="mean requests per second per device")


class PeriodicArrivals(Strict):
    kind: Literal["periodic"]
    period_s: float = Field(gt=0, description="seconds between requests of one device")
    phase_s: float | None = Field(
        default=None, ge=0, description="first arrival of every device (default: U[0, period_s))"
    )
    jitter_s: float = Field(
        default=0.0, ge=0, description="each arrival is delayed by U[0, jitter_s)"
    )


class OnOffArrivals(Strict):
    kind: Literal["on-off"]
    rate_per_s: float = Field(gt=0, description="Poisson rate per device while on")
    on_s: float = Field(gt=0, description="mean length of an on period (exponential)")
    off_s: float = Field(gt=0, description="mean length of an off period (exponential)")


class TraceArrivals(Strict):
    kind: Literal["trace"]
    path: str = Field(description="text file, one arrival time in seconds per line")


Arrivals = Annotated[
    PoissonArrivals | PeriodicArrivals | OnOffArrivals | TraceArrivals,
    Field(discriminator="kind"),
]


class ProbabilityAvailability(Strict):
    """Each arrival finds its device online with probability ``p_available``, independently."""

    kind: Literal["probability"]
    p_available: float = Field(gt=0, le=1, description="chance a request finds its device online")


class OnOffAvailability(Strict):
    """Each device alternates exponential online and offline periods."""

    kind: Literal["on-off"]
    up_s: float = Field(gt=0, description="mean length of an online period")
    down_s: float = Field(gt=0, description="mean length of an offline period")


Availability = Annotated[ProbabilityAvailability | OnOffAvailability, Field(discriminator="kind")]


#: Huang et al., "A Close Examination of Performance and Power Characteristics of 4G LTE
#: Networks" (MobiSys 2012), LTE power model: 1288.04 mW while the radio is active, plus
#: 438.39 mW per Mbit/s of uplink and 51.97 mW per Mbit/s of downlink throughput.
RADIO_PRESETS: dict[str, dict[str, float]] = {
    "lte": {"active_w": 1.28804, "uplink_j_per_mbit": 0.43839, "downlink_j_per_mbit": 0.05197},
}


class RadioSpec(Strict):
    """Device radio energy per transfer: ``active_w`` over the transfer's time (start to
    arrival) plus a cost per Mbit moved. ``radio: lte`` is Huang et al.'s LTE model."""

    active_w: float = Field(ge=0, description="power while a transfer is under way")
    uplink_j_per_mbit: float = Field(default=0.0, ge=0)
    downlink_j_per_mbit: float = Field(default=0.0, ge=0)


class HeadOption(Strict):
    """One more head a device keeps: a split point and the codec after it."""

    split: int = Field(ge=0, description="blocks run on the device (0 sends the input)")
    codec: CodecSpec | None = Field(
        default=None, description="its codec (default: the group's codec)"
    )


class AdaptivePolicy(Strict):
    """Each request picks its head (split and codec) when it starts, from what the device
    knows then: its uplink throughput estimate, its energy budget and the server wait that
    the last response reported (the rule: ``fleet.policy``, README "Adaptive split
    policies"). The group's own ``split`` and codec are the first head."""

    kind: Literal["adaptive"]
    options: list[HeadOption] = Field(
        min_length=1, description="the other heads the device keeps, besides the group's own"
    )
    slo_s: float = Field(gt=0, description="the latency a request aims at")
    prefer: Literal["server_s", "device_j", "uplink_bytes", "latency_s"] = Field(
        default="server_s",
        description="among heads predicted to meet slo_s, the one with the least of this "
        "(server_s: accelerator time, as server_busy_s_per_request counts it)",
    )
    energy_budget_j: float | None = Field(
        default=None,
        gt=0,
        description="heads predicted to spend more device energy per request are not chosen "
        "(default: no budget)",
    )
    alpha: float = Field(
        default=0.5, gt=0, le=1, description="weight of the newest uplink throughput sample"
    )
    prior_mbps: float = Field(
        default=2.0, gt=0, description="the uplink estimate before the device's first transfer"
    )
    switch_s: float = Field(
        default=0.005,
        ge=0,
        description="device time (at active power) to switch to another head than the last "
        "request's (an estimate: loading another compiled graph)",
    )


class DeviceGroup(Strict):
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
    policy: Literal["static"] | AdaptivePolicy = Field(
        default="static",
        description="static: every request uses split and codec; adaptive: each request "
        "chooses among several heads",
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
