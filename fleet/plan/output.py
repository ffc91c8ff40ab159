"""A plan's results: ``plan`` runs the whole of ``slicer plan`` (calibration, judging, search)
into a directory, and writes

- ``plan.json``: the goal, the grid's size, the points simulated, one row per configuration
  (quality, bounds, why it was not simulated, its figures at every replica count simulated),
  the Pareto set and the recommendation (``analysis.report_plan`` renders it);
- ``plan.yaml``: the recommended configuration as a scenario without a sweep, replaying the
  plan's calibration: ``slicer run plan.yaml`` runs it.

The Pareto set is over the simulated points that meet the constraints: no other of them is at
least as good on replicas, server busy time, device energy and uplink bytes per request and
the metric, and better on one. It covers what the search simulated, not the whole grid.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet.plan.bounds import Calibration
from fleet.plan.search import OBJECTIVES, Goal, Verdict, exhaustive, judge, meets, search, simulator
from fleet.plan.space import Space, space
from scenarios import Scenario
from scenarios.paths import parse_path, set_in_place

PARETO = ("replicas", *list(OBJECTIVES.values())[1:])


@dataclass(frozen=True)
class Plan:
    goal: Goal
    space: Space
    verdicts: list[Verdict]
    best: Verdict | None
    simulated: list[str]  # point names, in the order simulated
    calibration: str  # the calibration directory
    out: Path

    def rows(self) -> list[dict[str, Any]]:
        """Every simulated point: configuration, replicas, figures, whether it meets."""
        out = []
        for v in self.verdicts:
            for r, summary in sorted(v.results.items()):
                figures = {k: summary.get(k) for k in (self.goal.metric, *PARETO[1:])}
                allowed = v.quality_loss <= self.goal.max_quality_loss
                out.append(
                    {
                        "config": v.config.label,
                        "replicas": r,
                        **figures,
                        "quality_loss": v.quality_loss,
                        "meets": allowed and meets(summary, self.goal),
                    }
                )
        return out

    def pareto(self) -> list[dict[str, Any]]:
        keys = (*PARETO, self.goal.metric)
        ok = [row for row in self.rows() if row["meets"]]

        def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
            pairs = [(_num(a[k]), _num(b[k])) for k in keys]
            return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)

        return [b for b in ok if not any(dominates(a, b) for a in ok if a is not b)]

    def recommended(self) -> dict[str, Any] | None:
        if self.best is None or self.best.answer is None:
            return None
        summary = self.best.results[self.best.answer]
        point = self.best.config.points[self.best.answer]
        return {
            "point": point.name,
            "slo_attainment": _attainment(self.out / "points" / point.name, self.goal),
            "config": self.best.config.label,
            "params": self.best.config.params,
            "replicas": self.best.answer,
            "quality_loss": self.best.quality_loss,
            **{k: summary.get(k) for k in (self.goal.metric, *PARETO[1:])},
        }


def plan(
    scenario: Scenario,
    goal: Goal,
    out: Path,
    *,
    replicas: list[int] | None = None,
    full: bool = False,
    quiet: bool = True,
) -> Plan:
    """Calibrate, judge every configuration and search (or, with ``full``, simulate every
    point: the exhaustive baseline) into ``out``; write ``plan.json`` and ``plan.yaml``."""
    from fleet.run.calibration import calibrate, calibration_file
    from fleet.run.runner import run

    grid = space(scenario, replicas)
    if grid.scenario.mode != "replay" or grid.scenario.replay_from is None:
        raise ValueError(
            "slicer plan replays a calibration: give the scenario mode: replay and replay_from "
            "(a calibration scenario file, as scenarios/quickstart.yaml does, or a real run)"
        )
    points = grid.all_points()
    path = calibration_file(points)
    if path is not None:
        points = calibrate(path, grid.scenario, points, out, quiet=quiet, run=run)
        by_name = {p.name: p for p in points}
        for config in grid.configs:
            config.points = {r: by_name[p.name] for r, p in config.points.items()}
    where = str(points[0].scenario.replay_from)
    verdicts = judge(grid, Calibration(where), goal)
    simulate, done = simulator(out, quiet=quiet)
    best = (exhaustive if full else search)(grid, verdicts, goal, simulate)
    result = Plan(goal, grid, verdicts, best, done, where, out)
    write(result, out)
    return result


def write(result: Plan, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    g = result.goal
    doc = {
        "goal": {
            "slo_s": g.slo_s,
            "metric": g.metric,
            "minimize": g.minimize,
            "max_quality_loss": g.max_quality_loss,
        },
        "scenario": result.space.scenario.name,
        "grid_points": result.space.points,
        "simulated_points": len(result.simulated),
        "replicas": result.space.replicas,
        "not_searched": result.space.dropped,
        "calibration": result.calibration,
        "configs": [_verdict_row(v) for v in result.verdicts],
        "points": result.rows(),
        "pareto": result.pareto(),
        "recommended": result.recommended(),
    }
    text = json.dumps(_clean(doc), indent=1, default=str, allow_nan=False)
    (out / "plan.json").write_text(text + "\n")
    if result.best is not None:
        (out / "plan.yaml").write_text(runnable_yaml(result))


def runnable_yaml(result: Plan) -> str:
    """The recommended point as a scenario file: no sweep, replaying the plan's calibration."""
    best = result.best
    assert best is not None and best.answer is not None
    data = result.space.scenario.model_dump(mode="json", exclude_unset=True)
    data.pop("sweep", None)
    for key, value in {**best.config.params, "servers.replicas": best.answer}.items():
        set_in_place(data, parse_path(key), value)
    data["replay_from"] = result.calibration
    data["mode"] = "replay"
    Scenario.model_validate(data)  # what is written runs
    g = result.goal
    head = (
        f"# slicer plan's recommendation for {result.space.scenario.name}: {best.config.label}, "
        f"{best.answer} replica(s)\n# goal: {g.metric} <= {g.slo_s} s, least {g.minimize}, "
        f"quality loss <= {g.max_quality_loss}\n# run it: slicer run plan.yaml\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False)


def _verdict_row(v: Verdict) -> dict[str, Any]:
    return {
        "config": v.config.label,
        "params": v.config.params,
        "quality_loss": v.quality_loss,
        "latency_bound_s": v.latency_bound_s,
        "fewest_replicas_bound": v.fewest_replicas,
        "pruned": v.pruned,
        "simulated_replicas": sorted(v.results),
        "answer_replicas": v.answer,
    }


def _num(value: Any) -> float:
    return math.inf if value is None else float(value)


def _clean(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _attainment(run_dir: Path, goal: Goal) -> float | None:
    """Share of the point's requests within the SLO (task: infer latency only)."""
    if goal.metric != "p95_latency_s":
        return None
    from records.metrics import slo_attainment
    from records.tables import read_table

    return slo_attainment(read_table(run_dir / "requests.parquet"), goal.slo_s)
