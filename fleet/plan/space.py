"""The search space of ``slicer plan``: which configurations of a scenario it chooses among.

The scenario's ``sweep`` says what to search: its ``fleet[i].split``, ``fleet[i].codec``,
``codec`` and ``servers.replicas`` entries (``replicas`` given to ``space`` replaces the last).
Every other sweep entry is not searched: one with a single value is applied, one with several
is dropped and the scenario's own value used (``Space.dropped`` names them; ``--set`` chooses
another value, e.g. the fleet size to plan for). A *configuration* is one value of every
searched entry but replicas; a *point* is a configuration at a replica count.

The points are the expansion (``scenarios.expand``) of the scenario with the searched sweep
only, so each point has the seed the exhaustive sweep of that scenario gives it, and a plan's
point equals that sweep's point.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from scenarios import RunSpec, Scenario, expand

REPLICAS = "servers.replicas"
_SEARCHED = re.compile(r"^(fleet\[\d+\]\.split|fleet\[\d+\]\.codec|codec|servers\.replicas)$")


@dataclass
class Config:
    """One configuration: its searched values but replicas, and its point per replica count."""

    index: int
    params: dict[str, Any]
    points: dict[int, RunSpec] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_text(v)}" for k, v in self.params.items()) or "(as given)"

    def scenario(self) -> Scenario:
        """The configuration's scenario at its fewest replicas (what the bounds read)."""
        return self.points[min(self.points)].scenario


@dataclass(frozen=True)
class Space:
    scenario: Scenario  # the scenario with the searched sweep only
    configs: list[Config]
    replicas: list[int]  # ascending
    dropped: dict[str, list[Any]]  # sweep entries not searched, with their values

    @property
    def points(self) -> int:
        return len(self.configs) * len(self.replicas)

    def all_points(self) -> list[RunSpec]:
        return [c.points[r] for c in self.configs for r in self.replicas]


def space(scenario: Scenario, replicas: list[int] | None = None) -> Space:
    """The plan's search space over ``scenario`` (module docstring)."""
    sweep = dict(scenario.sweep or {})
    if "zip" in sweep:
        raise ValueError(
            "slicer plan: sweep.zip is not searched; write the split, codec and replica "
            "values as grid entries of sweep"
        )
    searched: dict[str, list[Any]] = {}
    dropped: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for key, values in sweep.items():
        if _SEARCHED.match(key):
            searched[key] = list(values)
        elif len(values) == 1:
            fixed[key] = values
        else:
            dropped[key] = list(values)
    if replicas is not None:
        if not replicas or any(r < 1 for r in replicas):
            raise ValueError(f"slicer plan: --replicas must be counts >= 1, got {replicas}")
        searched[REPLICAS] = sorted(set(replicas))
    if not searched:
        raise ValueError(
            "slicer plan: nothing to search: give the scenario a sweep over fleet[i].split, "
            "codec (or fleet[i].codec) and servers.replicas, or pass --replicas"
        )
    reduced = scenario.model_copy(update={"sweep": {**fixed, **searched}})
    reduced = Scenario.model_validate(reduced.model_dump(mode="python", exclude_unset=True))
    configs: dict[str, Config] = {}
    for spec in expand(reduced):
        params = {k: v for k, v in spec.params.items() if k in searched and k != REPLICAS}
        ident = json.dumps(params, sort_keys=True, default=str)
        config = configs.setdefault(ident, Config(len(configs), params))
        config.points[spec.scenario.servers.replicas] = spec
    counts = sorted({r for c in configs.values() for r in c.points})
    return Space(reduced, list(configs.values()), counts, dropped)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    return str(value)
