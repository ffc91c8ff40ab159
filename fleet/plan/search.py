"""The search of ``slicer plan``: the fewest simulations that find the exhaustive optimum.

A point *meets* the constraints when its ``metric`` (``p95_latency_s`` or ``p95_tpot_s``) is
at most ``slo_s`` and at most ``MAX_LOST`` of its requests were dropped or failed; a
configuration is *allowed* when its quality loss (``fleet.plan.bounds``) is at most
``max_quality_loss``. Each allowed configuration's answer is its fewest replicas that meet
the SLO, and the optimum is the configuration whose answer has the least (objective, replicas,
metric), objective being ``minimize``'s figure of that point (``OBJECTIVES``). ``exhaustive``
finds it by simulating every point; ``search`` finds the same one with:

1. no simulation for a configuration that misses on quality, whose latency bound exceeds the
   SLO, or whose every replica count the capacity bound rules out;
2. monotonicity: more replicas never hurt latency, so a configuration's answer is found by a
   binary search over the replica counts the capacity bound leaves, starting at the fewest;
3. branch and bound: configurations go in the order of their objective bound, and one whose
   bound already exceeds the best answer so far is not simulated; for ``minimize: replicas``
   only replica counts up to the best answer's are tried, and a configuration that needs at
   least the best's replicas with a latency bound above the best's metric is skipped (it could
   only tie on replicas and lose on latency).

Every point simulated is a replayed run (``fleet.run.point.run_one``) under
``<out>/points/<point>``; a finished run there is reused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.plan.bounds import (
    Calibration,
    GroupCosts,
    fewest_replicas,
    group_costs,
    latency_bound_s,
    objective_bound,
    uplink_overloaded,
)
from fleet.plan.space import Config, Space
from scenarios import RunSpec

OBJECTIVES = {
    "replicas": "replicas",
    "server_s": "server_busy_s_per_request",
    "device_j": "device_energy_j_per_request",
    "uplink_bytes": "uplink_bytes_per_request",
}
METRICS = ("p95_latency_s", "p95_tpot_s")
MAX_LOST = 0.05  # share of requests dropped or failed that a point may lose


@dataclass(frozen=True)
class Goal:
    slo_s: float
    metric: str = "p95_latency_s"
    minimize: str = "replicas"
    max_quality_loss: float = 0.05

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"--metric must be one of {list(METRICS)}, got {self.metric!r}")
        if self.minimize not in OBJECTIVES:
            raise ValueError(f"--minimize must be one of {list(OBJECTIVES)}, got {self.minimize!r}")
        if not (self.slo_s > 0 and math.isfinite(self.slo_s)):
            raise ValueError(f"--slo-s must be a positive number of seconds, got {self.slo_s}")


@dataclass
class Verdict:
    """What the plan found of one configuration."""

    config: Config
    quality_loss: float = math.nan
    latency_bound_s: float = math.nan
    fewest_replicas: int | None = None
    pruned: str = ""  # why it was not simulated (further), in words
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # replicas -> summary
    answer: int | None = None  # its fewest replicas that meet the SLO
    groups: list[GroupCosts] = field(default_factory=list)  # its cost-model floors


Simulate = Callable[[RunSpec], dict[str, Any]]


def meets(summary: dict[str, Any], goal: Goal) -> bool:
    value = summary.get(goal.metric)
    requests = summary.get("requests") or 0
    lost = (summary.get("dropped") or 0) + (summary.get("failed") or 0)
    if value is None or not math.isfinite(float(value)) or requests == 0:
        return False
    return float(value) <= goal.slo_s and lost <= MAX_LOST * requests


def objective(summary: dict[str, Any], replicas: int, goal: Goal) -> float:
    if goal.minimize == "replicas":
        return float(replicas)
    value = summary.get(OBJECTIVES[goal.minimize])
    return math.inf if value is None else float(value)


def rank(verdict: Verdict, goal: Goal) -> tuple[float, int, float]:
    """The key the optimum minimises: (objective, replicas, metric) at the answer."""
    assert verdict.answer is not None
    summary = verdict.results[verdict.answer]
    return (objective(summary, verdict.answer, goal), verdict.answer, float(summary[goal.metric]))


def judge(space: Space, calibration: Calibration, goal: Goal) -> list[Verdict]:
    """Every configuration with its quality, bounds and, where they rule it out, why."""
    verdicts = []
    for config in space.configs:
        v = Verdict(config)
        s = config.scenario()
        v.quality_loss = calibration.quality_loss(s)
        if math.isnan(v.quality_loss):
            v.pruned = "the calibration does not record it"
        elif v.quality_loss > goal.max_quality_loss:
            v.pruned = f"quality loss {v.quality_loss:.3f} > {goal.max_quality_loss}"
        else:
            groups = group_costs(s, calibration)
            v.latency_bound_s = latency_bound_s(groups) if goal.metric == METRICS[0] else 0.0
            v.fewest_replicas = fewest_replicas(s, groups, space.replicas, goal.slo_s)
            if v.latency_bound_s > goal.slo_s:
                v.pruned = f"latency bound {v.latency_bound_s:.3f} s > SLO"
            elif uplink_overloaded(s, groups, goal.slo_s):
                v.pruned = "uplink bound: the links carry less than the requests bring"
            elif v.fewest_replicas is None:
                v.pruned = f"capacity bound: more than {max(space.replicas)} replicas needed"
            v.groups = groups
        verdicts.append(v)
    return verdicts


def search(space: Space, verdicts: list[Verdict], goal: Goal, simulate: Simulate) -> Verdict | None:
    """The optimum with the fewest simulations (module docstring); fills ``verdicts``."""
    alive = [v for v in verdicts if not v.pruned]
    alive.sort(key=lambda v: (_bound(v, goal), v.latency_bound_s, v.config.index))
    best: Verdict | None = None
    for v in alive:
        if best is not None and _bound(v, goal) > rank(best, goal)[0]:
            v.pruned = "objective bound cannot beat the best so far"
            continue
        if best is not None and goal.minimize == "replicas" and _loses_tie(v, best, goal):
            v.pruned = "needs as many replicas as the best so far, at a worse latency bound"
            continue
        assert v.fewest_replicas is not None
        counts = [r for r in space.replicas if r >= v.fewest_replicas]
        if best is not None and goal.minimize == "replicas":
            assert best.answer is not None
            counts = [r for r in counts if r <= best.answer]
        top_first = best is not None and goal.minimize == "replicas"
        v.answer = _fewest_meeting(v, counts, goal, simulate, top_first=top_first)
        if v.answer is None:
            continue
        if best is None or rank(v, goal) < rank(best, goal):
            best = v
    return best


def exhaustive(
    space: Space, verdicts: list[Verdict], goal: Goal, simulate: Simulate
) -> Verdict | None:
    """The optimum by simulating every point (quality still applies)."""
    best: Verdict | None = None
    for v in verdicts:
        for r in space.replicas:
            v.results[r] = simulate(v.config.points[r])
        if not (v.quality_loss <= goal.max_quality_loss):
            continue
        v.answer = next((r for r in space.replicas if meets(v.results[r], goal)), None)
        if v.answer is not None and (best is None or rank(v, goal) < rank(best, goal)):
            best = v
    return best


def _fewest_meeting(
    v: Verdict, counts: list[int], goal: Goal, simulate: Simulate, *, top_first: bool
) -> int | None:
    """The fewest of ``counts`` that meets (the metric only falls as replicas grow). With
    ``top_first`` the largest is tried first (one simulation rules the configuration out),
    then a binary search below it; else a galloping search up from the fewest (indices 0, 1,
    2, 4, ...: the capacity bound usually leaves the answer near the fewest), then a binary
    search in the last gap."""
    if not counts:
        v.pruned = "needs more replicas than the best so far"
        return None

    def ok(i: int) -> bool:
        r = counts[i]
        if r not in v.results:
            v.results[r] = simulate(v.config.points[r])
        return meets(v.results[r], goal)

    last = len(counts) - 1
    if top_first:
        if not ok(last):
            v.pruned = f"misses the SLO at {counts[last]} replicas"
            return None
        lo, hi = 0, last
    else:
        if ok(0):
            return counts[0]
        miss, i = 0, 1
        while True:
            i = min(i, last)
            if i == miss:
                v.pruned = f"misses the SLO at {counts[last]} replicas"
                return None
            if ok(i):
                break
            miss, i = i, 2 * i
        lo, hi = miss + 1, i
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return counts[hi]


def _loses_tie(v: Verdict, best: Verdict, goal: Goal) -> bool:
    """Whether ``v`` needs at least the best's replicas (capacity bound) and its latency bound
    already exceeds the best's metric: it can at most tie on replicas and then loses."""
    best_r, _, best_metric = rank(best, goal)
    assert v.fewest_replicas is not None
    return v.fewest_replicas >= best_r and v.latency_bound_s > best_metric


def _bound(v: Verdict, goal: Goal) -> float:
    assert v.fewest_replicas is not None
    return objective_bound(goal.minimize, v.groups, v.fewest_replicas)


def simulator(out: Path, quiet: bool = True) -> tuple[Simulate, list[str]]:
    """A ``Simulate`` that runs points under ``out/points`` (reusing finished ones) with one
    shared oracle, and the list of the points it simulated, in order."""
    from fleet.run import rundir
    from fleet.run.point import run_one
    from server.engine.jobs import Oracle

    oracles: dict[str, Oracle] = {}
    done: list[str] = []

    def simulate(spec: RunSpec) -> dict[str, Any]:
        path = out / "points" / spec.name
        done.append(spec.name)
        summary = rundir.complete(path, rundir.run_id(spec.scenario))
        if summary is not None:
            return summary
        rundir.clear_unfinished(path)
        return run_one(spec.scenario, path, quiet=quiet, oracles=oracles).summary

    return simulate, done
