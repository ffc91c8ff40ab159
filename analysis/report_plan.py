"""The report's "Recommended configuration" section, from the ``plan.json`` that ``slicer plan``
wrote into ``<results>/plan/`` (or into the results directory itself): the goal, the
recommendation with its predicted figures, how much of the grid was simulated, and the Pareto
set of the simulated points. Reads the file only; every figure in it was computed by
``records.metrics`` when the plan ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.report_html import Section, Table, Text

PLAN_FILES = ("plan/plan.json", "plan.json")
_FIGURES = (
    ("replicas", "replicas"),
    ("server_busy_s_per_request", "server busy s/request"),
    ("device_energy_j_per_request", "device J/request"),
    ("uplink_bytes_per_request", "uplink B/request"),
)


def find_plan(results: Path) -> Path | None:
    return next((results / f for f in PLAN_FILES if (results / f).is_file()), None)


def plan_section(results: Path) -> Section | None:
    """The section, or None when no plan was written there."""
    path = find_plan(results)
    if path is None:
        return None
    plan: dict[str, Any] = json.loads(path.read_text())
    goal = plan["goal"]
    metric = goal["metric"]
    what = (
        f"slicer plan: {metric} at most {goal['slo_s']} s with the least {goal['minimize']}, "
        f"quality loss (1 - agreement) at most {goal['max_quality_loss']}; it simulated "
        f"{plan['simulated_points']} of the {plan['grid_points']} points of the grid "
        f"(the rest were ruled out by the calibration's quality, the cost-model bounds and "
        f"monotonicity in replicas). From {path}."
    )
    best = plan.get("recommended")
    blocks: list[Any] = [Text(what)]
    if best is None:
        blocks.append(Text("No configuration of the grid meets the goal."))
    else:
        rows = [["configuration", best["config"]], [metric, best.get(metric)]]
        rows += [[name, best.get(key)] for key, name in _FIGURES]
        rows += [["SLO attainment", best.get("slo_attainment")]]
        rows += [["quality loss", best.get("quality_loss")]]
        blocks.append(Table(["recommended", "predicted"], rows))
        blocks.append(Text(f"Run it: slicer run {path.parent / 'plan.yaml'}"))
    pareto = plan.get("pareto") or []
    if pareto:
        heads = ["configuration", *(name for _, name in _FIGURES), metric]
        body = [[r["config"], *(r.get(k) for k, _ in _FIGURES), r.get(metric)] for r in pareto]
        caption = "Pareto set of the simulated points that meet the goal."
        blocks.append(Table(heads, body, caption))
    return Section("Recommended configuration", blocks)
