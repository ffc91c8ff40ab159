"""Network links of a scenario: one direction of a link (``LinkSpec``: constant, trace or
ideal, with delay and outages), the outage processes, cells whose links devices share, and the
default links of a device group that names none.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, ModelWrapValidatorHandler, Tag, model_validator

from scenarios.schema_base import FieldError, Name, Strict


class RandomOutages(Strict):
    """Alternating exponential gaps and outages, drawn per device link (per cell link)."""

    mean_gap_s: float = Field(gt=0, description="mean time between outages")
    mean_s: float = Field(gt=0, description="mean length of an outage")


class OutageWindow(Strict):
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


class LinkSpec(Strict):
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


class Cell(Strict):
    """Devices attached to a cell share its links fairly (processor sharing)."""

    name: Name
    uplink: LinkSpec | None = None
    downlink: LinkSpec | None = None

    @model_validator(mode="after")
    def _has_link(self) -> Cell:
        if self.uplink is None and self.downlink is None:
            raise ValueError("a cell needs an uplink, a downlink or both")
        return self


class Network(Strict):
    cells: list[Cell] = Field(default_factory=list)


DEFAULT_UPLINK = {"trace": "synthetic:lte"}
DEFAULT_DOWNLINK = {"bandwidth_mbps": 50.0}
