"""Metrics of runs and sweeps as analysis reads them: run and sweep labels, the flattened
figures of one run (``run_metrics``) and one row per sweep point (``sweep_rows``). No file
reading, no plotting.

Every number comes from ``records.metrics``, the one definition that ``summary.json`` uses
too: its functions are re-exported here under the same names (``latency``,
``throughput_rps``, ``server_busy_s_per_request``, ...; see that module for each definition),
so ``run_metrics`` gives the same value as ``summary.json`` under every name both have.
``STAGES`` are the report's coarse stages (``records.metrics.STAGE_GROUPS`` without the
``_s``): ``device``, ``uplink``, ``server_wait``, ``server_compute``, ``downlink``;
``stage_breakdown`` their means. ``analysis.sizing`` (re-exported here: ``Capacity``,
``capacity``, ``replicas_needed``) reads the rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from analysis.load import Run, Sweep
from analysis.sizing import Capacity as Capacity  # re-exported: it was defined here first
from analysis.sizing import capacity as capacity
from analysis.sizing import replicas_needed as replicas_needed
from records.metrics import STAGE_GROUPS, run_figures, stage_groups
from records.metrics import device_energy_j_per_request as device_energy_j_per_request
from records.metrics import drop_rate as drop_rate
from records.metrics import failure_rate as failure_rate
from records.metrics import latency as latency
from records.metrics import quality as quality
from records.metrics import server_busy_s_per_request as server_busy_s_per_request
from records.metrics import server_busy_s_per_token as server_busy_s_per_token
from records.metrics import server_utilization as server_utilization
from records.metrics import slo_attainment as slo_attainment
from records.metrics import throughput_rps as throughput_rps
from records.metrics import token_latency as token_latency
from records.metrics import uplink_bits_per_token as uplink_bits_per_token
from records.metrics import uplink_bytes_per_request as uplink_bytes_per_request

stage_breakdown = stage_groups  # the report's name for the coarse stages' means
#: the report's stages, in lifecycle order: ``<stage>_s`` keys of ``stage_breakdown``
STAGES = tuple(name.removesuffix("_s") for name in STAGE_GROUPS)


def run_metrics(run: Run, slo_s: float | None = None) -> dict[str, float]:
    """Every figure of one run (``records.metrics.run_figures``: the token figures only for
    ``task: generate``), with ``slo_attainment`` after ``throughput_rps`` when ``slo_s`` is
    given."""
    steps = run.steps if run.task == "generate" else None
    figures = run_figures(
        run.requests,
        run.servers,
        steps,
        replicas=run.replicas,
        sim_time_s=run.sim_time_s,
        decode_cores=run.decode_cores,
    )
    out: dict[str, float] = {}
    for key, value in figures.items():
        out[key] = value
        if key == "throughput_rps" and slo_s is not None:
            out["slo_attainment"] = slo_attainment(run.requests, slo_s)
    return out


def codec_label(config: str | Mapping[str, Any]) -> str:
    """A codec config as a short label: the id alone for a bare id or ``{"id": ...}``, else
    the id with the other params as written in the scenario, sorted by name:
    ``slicer(max_nmse=0.001)``. Defaults are not looked up (that would import ``codec``)."""
    if isinstance(config, str):
        return config
    params = {k: v for k, v in config.items() if k != "id"}
    if not params:
        return str(config.get("id"))
    text = ", ".join(f"{k}={_text(params[k])}" for k in sorted(params))
    return f"{config.get('id')}({text})"


def run_labels(run: Run) -> dict[str, Any]:
    """What a run is, as sweep rows and reports label it: ``devices`` (the fleet's total
    count), ``replicas``, ``split`` (an int when every group has the same split, else the
    groups' splits joined by "/", e.g. "4/8"), ``codec`` (``codec_label`` per group, the
    group's own codec or the scenario's, joined by "/" when groups differ) and ``task``."""
    scenario = run.scenario
    groups: list[dict[str, Any]] = scenario.get("fleet") or []
    splits = _distinct([g.get("split") for g in groups])
    codecs = _distinct([codec_label(g.get("codec") or scenario["codec"]) for g in groups])
    return {
        "devices": sum(int(g.get("count", 0)) for g in groups),
        "replicas": run.replicas,
        "split": splits[0] if len(splits) == 1 else "/".join(map(str, splits)),
        "codec": "/".join(codecs),
        "task": run.task,
    }


def sweep_rows(sweep: Sweep, slo_s: float | None = None) -> list[dict[str, Any]]:
    """One dict per complete point, in sweep order: ``point``, the swept params (key = path,
    value decoded), then ``run_labels`` (``devices``, ``replicas``, ``split``, ``codec``,
    ``task``), then ``run_metrics``. The labels win over a swept param of the same name
    (sweeping ``codec`` gives its label)."""
    rows: list[dict[str, Any]] = []
    status = sweep.points.column("status").to_pylist()
    for point, state in zip(sweep.names, status, strict=True):
        if state != "complete":
            continue
        run = sweep.run(point)
        rows.append(
            {"point": point, **sweep.values(point), **run_labels(run), **run_metrics(run, slo_s)}
        )
    return rows


def _distinct(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
