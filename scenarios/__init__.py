"""Scenario files: the schema, the loader with its path-and-line errors, overrides, sweep
expansion: pydantic and yaml only (never torch, models or codec).

``load(path, overrides)`` returns a validated ``Scenario`` or raises ``ScenarioError``;
``expand(scenario)`` gives one ``RunSpec`` per sweep point. ``fleet.run.check.check(scenario)``
looks models, hardware, codecs and files up (it imports torch; importing this package does not).
"""

from typing import Any

from scenarios.errors import Problem, ScenarioError
from scenarios.load import load, loads, parse_override
from scenarios.paths import set_path
from scenarios.schema import (
    Batching,
    Cell,
    CodecSpec,
    DeviceGroup,
    FieldError,
    LinkSpec,
    ModelSpec,
    Network,
    OnOffArrivals,
    PeriodicArrivals,
    PoissonArrivals,
    RaySpec,
    Record,
    Scenario,
    Servers,
    ServiceOverride,
    TraceArrivals,
    group_links,
)
from scenarios.sweep import RunSpec, expand


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (for editors and documentation)."""
    return Scenario.model_json_schema()


__all__ = [
    "Batching",
    "Cell",
    "CodecSpec",
    "DeviceGroup",
    "FieldError",
    "LinkSpec",
    "ModelSpec",
    "Network",
    "OnOffArrivals",
    "PeriodicArrivals",
    "PoissonArrivals",
    "Problem",
    "RaySpec",
    "Record",
    "RunSpec",
    "Scenario",
    "ScenarioError",
    "Servers",
    "ServiceOverride",
    "TraceArrivals",
    "expand",
    "group_links",
    "json_schema",
    "load",
    "loads",
    "parse_override",
    "set_path",
]
