"""The report of a sweep: its points, scaling curves, capacity at the SLO, uplink per codec,
the latency breakdown and distributions.

``sweep_document`` builds the document; ``analysis.report.write_report`` writes it. Its
numbers come from ``analysis.metrics.sweep_rows`` (one row per complete point) and
``analysis.sizing``; the requests of a few points only (the largest fleet of each split and
codec, at most ``MAX_CDF_POINTS``) are read again for the latency distribution, so a 100-point
sweep reports in seconds. ``scaling_section`` is shared with the comparison of two sweeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow.compute as pc

from analysis import plots
from analysis import report_html as doc
from analysis.labels import cell_text, label
from analysis.load import Sweep
from analysis.metrics import sweep_rows
from analysis.report_html import Section, Table, Text
from analysis.report_parts import (
    LABEL_KEYS,
    STAGES_CAPTION,
    FigureSaver,
    assumptions_section,
    by_split_codec,
    latency_s,
    read_manifest,
    scenario_of,
    scenario_section,
    value_text,
    versions_section,
    what_was_run,
)
from analysis.sizing import Capacity, capacity, replicas_needed

#: sweep points whose requests are read again for the latency distribution, at most
MAX_CDF_POINTS = 8
#: the headline metrics of the points table (and, the first four, of a comparison)
POINT_METRICS = (
    "p95_latency_s",
    "throughput_rps",
    "server_utilization",
    "decode_pool_utilization",
    "uplink_bytes_per_request",
    "mean_agreement",
    "drop_rate",
)
_GENERATE_POINT_METRICS = ("p95_tpot_s", "uplink_bits_per_token", "server_busy_s_per_token")
_CAPACITY_WORDS = {
    "interpolated": "interpolated between the last point that meets it and the first that misses",
    "at_a_point": "the last swept point that meets the SLO",
    "missed_at_every_point": "misses the SLO at every point",
}
Row = Mapping[str, Any]


def sweep_document(sweep: Sweep, figures: FigureSaver, slo_s: float | None) -> doc.Document:
    rows = sweep_rows(sweep, slo_s)
    scenario = scenario_of(sweep)
    generate = any(r.get("task") == "generate" for r in rows)
    sections = [_sweep_header(sweep, scenario)]
    assumptions = assumptions_section([read_manifest(sweep.path / p) for p in sweep.names])
    if assumptions is not None:
        sections.append(assumptions)
    sections.append(Section("Points", [_points_table(sweep, rows)]))
    if rows:
        sections.append(scaling_section(rows, figures, slo_s, generate))
        if slo_s is not None:
            sections.append(_capacity_section(sweep, rows, figures, slo_s))
        latencies = _point_latencies(sweep, _largest_points(rows))
        uplink = "Uplink per request (and per token) of each codec, grouped by split."
        blocks = [
            figures.add(plots.uplink_per_codec(rows), "uplink-per-codec", uplink),
            figures.add(plots.stage_bars(rows), "stages", STAGES_CAPTION),
            figures.cdf(latencies, "latency-cdf", "latency (s)"),
        ]
        sections.append(Section("Uplink and where the time goes", blocks))
    failed = _failed_table(sweep)
    if failed is not None:
        sections.append(Section("Failed points", [failed]))
    note = "The first point's resolved scenario: the others differ in the swept parameters "
    sections += [scenario_section(scenario, note + "and seeds."), versions_section(sweep)]
    title = f"Sweep report: {scenario.get('name') or sweep.path.name}"
    return doc.Document(title, sections, subtitle=str(sweep.path))


def _sweep_header(sweep: Sweep, scenario: Mapping[str, Any]) -> Section:
    status = sweep.points.column("status").to_pylist()
    complete = status.count("complete")
    manifests = [read_manifest(sweep.path / p) for p in sweep.names]
    first = next((m for m in manifests if m), {})
    wall = [float(m["wall_s"]) for m in manifests if isinstance(m.get("wall_s"), int | float)]
    sim = sweep.points.column("sim_time_s") if "sim_time_s" in sweep.points.column_names else None
    facts: list[list[Any]] = [
        ["scenario", scenario.get("name")],
        ["description", scenario.get("description") or None],
        ["points", f"{len(status)} ({complete} complete, {len(status) - complete} failed)"],
        ["mode", first.get("mode")],
        ["seed", "per point (see the points table)"],
        ["simulated time, all points (s)", pc.sum(sim).as_py() if sim is not None else None],
        ["wall time, all points (s)", sum(wall) if wall else None],
        ["git commit", first.get("git_commit")],
        ["host", first.get("host")],
    ]
    swept = "; ".join(
        f"{p} over {', '.join(str(value_text(v)) for v in _distinct(sweep, p))}"
        for p in sweep.params
    )
    text = what_was_run(scenario) + (f" Swept: {swept}." if swept else "")
    return Section("Overview", [Table(["field", "value"], facts), Text(text)])


def _points_table(sweep: Sweep, rows: Sequence[Row]) -> Table:
    """Complete points: their swept values (less those repeated by devices, replicas, split
    and codec), seed and headline metrics."""
    params = _shown_params(sweep, rows)
    metrics = list(POINT_METRICS)
    if rows and "slo_attainment" in rows[0]:
        metrics.append("slo_attainment")
    if any(r.get("task") == "generate" for r in rows):
        metrics += _GENERATE_POINT_METRICS
    seeds = dict(zip(sweep.names, sweep.points.column("seed").to_pylist(), strict=True))
    names = ["point", *params, *LABEL_KEYS]
    table_rows = [
        [
            *(value_text(r.get(k)) for k in names),
            seeds.get(str(r["point"])),
            *(r.get(k) for k in metrics),
        ]
        for r in rows
    ]
    headers = [*(label(k) for k in names), "seed", *(label(k) for k in metrics)]
    return Table(headers, table_rows, caption=f"{len(rows)} complete points")


def scaling_section(
    rows: Sequence[Row], figures: FigureSaver, slo_s: float | None, generate: bool
) -> Section:
    lines = "One line per split and codec (line style: replicas, when they vary)"
    slo = f"; dashed: the {slo_s:g} s SLO." if slo_s is not None else "."
    curve = plots.scaling_curve(rows, metric="p95_latency_s", slo_s=slo_s)
    blocks = [figures.add(curve, "p95-latency-vs-devices", f"p95 latency. {lines}{slo}")]
    if generate:
        tpot = plots.scaling_curve(rows, metric="p95_tpot_s")
        caption = f"p95 time per output token. {lines}."
        blocks.append(figures.add(tpot, "p95-tpot-vs-devices", caption))
    busy = plots.busy_per_request_curve(rows)
    blocks.append(figures.add(busy, "busy-per-request", f"Server busy time. {lines}."))
    return Section("Scaling", blocks)


def _shown_params(sweep: Sweep, rows: Sequence[Row]) -> list[str]:
    """Swept parameters whose values the label columns (devices, replicas, split, codec) do
    not already show."""
    return [
        p
        for p in sweep.params
        if not rows or not any(all(r.get(p) == r.get(k) for r in rows) for k in LABEL_KEYS)
    ]


def _capacity_section(
    sweep: Sweep, rows: Sequence[Row], figures: FigureSaver, slo_s: float
) -> Section:
    """Capacity per split, codec, replicas and any other swept parameter (group sizes, which
    make up ``devices``, aside)."""
    others = [
        p
        for p in _shown_params(sweep, rows)
        if not (p.startswith("fleet[") and p.endswith("].count"))
    ]
    by = ["split", "codec", "replicas", *others]
    found = capacity(rows, slo_s=slo_s, by=by)
    table = Table(
        [*by, "capacity (devices)", "how it was found"],
        [[*(value_text(c.key.get(k)) for k in by), c.devices, _words(c)] for c in found],
        caption=f"Largest fleet whose p95 latency stays within the {slo_s:g} s SLO",
    )
    fewest = replicas_needed(rows, slo_s=slo_s, by=["split", "codec", *others])
    needed = plots.replicas_needed_curve(fewest, slo_s=slo_s)
    caption = f"Fewest swept replicas whose p95 latency meets the {slo_s:g} s SLO."
    return Section("Capacity at the SLO", [table, figures.add(needed, "replicas-needed", caption)])


def _words(c: Capacity) -> str:
    if c.status == "met_at_every_point":
        return f"meets the SLO at every point (capacity >= {cell_text(c.devices)})"
    return _CAPACITY_WORDS.get(c.status, c.status)


def _largest_points(rows: Sequence[Row]) -> list[Row]:
    """Per (split, codec): its row with the most devices (then the most replicas)."""
    best: dict[str, Row] = {}
    for row in rows:
        key = json.dumps([row.get("split"), row.get("codec")], default=str)
        known = best.get(key)
        if known is None or _size(row) > _size(known):
            best[key] = row
    return list(best.values())[:MAX_CDF_POINTS]


def _size(row: Row) -> tuple[float, float]:
    return (float(row.get("devices") or 0), float(row.get("replicas") or 0))


def _point_latencies(sweep: Sweep, rows: Sequence[Row]) -> dict[str, np.ndarray]:
    out = {}
    for row in rows:
        requests = sweep.run(str(row["point"])).requests
        for name, values in by_split_codec(requests, latency_s).items():
            out[f"{name}, {cell_text(row.get('devices'))} devices"] = values
    return out


def _failed_table(sweep: Sweep) -> Table | None:
    columns = [c for c in ("point", "status", "error") if c in sweep.points.column_names]
    failed = [
        [r["point"], r.get("error") or "(no error recorded)"]
        for r in sweep.points.select(columns).to_pylist()
        if r["status"] != "complete"
    ]
    return Table(["point", "error"], failed) if failed else None


def _distinct(sweep: Sweep, param: str) -> list[Any]:
    column = sweep.points.column(param).to_pylist()
    return [json.loads(v) if isinstance(v, str) else v for v in dict.fromkeys(column)]
