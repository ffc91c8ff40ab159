"""Reports: ``write_report`` turns a run or a sweep directory into ``report.html`` (one
self-contained page: figures embedded, tables, the resolved scenario, versions, seed) and
``report.md`` beside the results; ``write_comparison`` puts two runs or two sweeps side by side.

Every number comes from ``analysis.metrics`` (or the run's own summary.json and servers table);
every figure from ``analysis.plots``, saved as PNG and SVG under ``<results>/figures/`` (report.md
links them, report.html embeds the PNGs; the PNG and SVG files already there are replaced). A
sweep's numbers come from ``sweep_rows``; per-request distributions are read again for a few
points only (the largest fleet of each split and codec), so a 100-point sweep reports in seconds.
A comparison of two sweeps draws both in one figure with their codec labels prefixed "A: " and
"B: ", and pairs points on devices, replicas, split and codec (on fewer of these keys when no
point pairs on all four, e.g. when A and B differ in codec).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure

from analysis import plots
from analysis import report_html as doc
from analysis.load import ResultsError, Run, Sweep, load
from analysis.metrics import (
    Capacity,
    capacity,
    codec_label,
    replicas_needed,
    run_metrics,
    sweep_rows,
)
from analysis.report_html import Code, Section, Table, Text, label

HTML_NAME, MD_NAME, FIGURES = "report.html", "report.md", "figures"
#: sweep points whose requests are read again for the latency distribution, at most
MAX_CDF_POINTS = 8
Row = Mapping[str, Any]
_LABEL_KEYS = ("devices", "replicas", "split", "codec")
_STAGE_KEYS = ("device_s", "uplink_s", "server_queue_s", "server_compute_s", "downlink_s")
_POINT_METRICS = (
    "p95_latency_s",
    "throughput_rps",
    "server_utilization",
    "uplink_bytes_per_request",
    "mean_agreement",
    "drop_rate",
)
_GENERATE_POINT_METRICS = ("p95_tpot_s", "uplink_bits_per_token", "server_busy_s_per_token")
_GENERATION_KEYS = (
    "tokens",
    "tokens_per_s",
    "tokens_per_s_per_replica",
    "uplink_bits_per_token",
    "server_busy_s_per_token",
    "prompt_payload_bytes_mean",
    "step_payload_bytes_mean",
    "mean_agreement",
    "share_matching_32",
    "mean_tokens_matching",
    "mean_running_batch",
    "kv_used_max_bytes",
)
_CAPACITY_WORDS = {
    "interpolated": "interpolated between the last point that meets it and the first that misses",
    "at_a_point": "the last swept point that meets the SLO",
    "missed_at_every_point": "misses the SLO at every point",
}


def write_report(path: str | Path, *, slo_s: float | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the results directory ``path`` (a run or a
    sweep) and return their paths; ``slo_s`` (seconds) adds SLO attainment and, for sweeps,
    capacity and replicas needed."""
    _check_slo(slo_s)
    results = load(path)
    figures = _Figures(results.path / FIGURES)
    if isinstance(results, Sweep):
        return _write(_sweep_document(results, figures, slo_s), results.path)
    return _write(_run_document(results, figures, slo_s), results.path)


def write_comparison(
    a: str | Path, b: str | Path, out: str | Path | None = None, *, slo_s: float | None = None
) -> tuple[Path, Path]:
    """Two runs or two sweeps side by side in ``out`` (default ``<a>/compare-<b's folder
    name>``): headline metrics of both with B/A, where the scenarios differ, and overlaid
    distributions (runs) or scaling curves (sweeps). A run and a sweep: ``ResultsError``."""
    _check_slo(slo_s)
    first, second = load(a), load(b)
    if isinstance(first, Sweep) != isinstance(second, Sweep):
        kinds = ["a sweep" if isinstance(r, Sweep) else "a run" for r in (first, second)]
        raise ResultsError(
            f"cannot compare {kinds[0]} ({first.path}) with {kinds[1]} ({second.path}); compare "
            "two runs or two sweeps (to compare a run with one sweep point, pass that point's "
            "directory)"
        )
    target = Path(out) if out is not None else first.path / f"compare-{second.path.name}"
    target.mkdir(parents=True, exist_ok=True)
    figures = _Figures(target / FIGURES)
    if isinstance(first, Run) and isinstance(second, Run):
        body = _compare_runs(first, second, figures, slo_s)
    else:
        body = _compare_sweeps(cast(Sweep, first), cast(Sweep, second), figures, slo_s)
    both = (first, second)
    scenarios = [_scenario_of(r) for r in both]
    names = [str(s.get("name") or r.path.name) for s, r in zip(scenarios, both, strict=True)]
    who = Table(
        ["", "scenario", "results", "mode", "seed"],
        [
            [tag, name, str(r.path), s.get("mode"), r.seed if isinstance(r, Run) else "per point"]
            for tag, name, r, s in zip("AB", names, both, scenarios, strict=True)
        ],
    )
    sections = [
        Section("Compared", [who, _differences(scenarios[0], scenarios[1])]),
        *body,
        _versions_section(first),
    ]
    title = f"Comparison: {names[0]} (A) vs {names[1]} (B)"
    note = "B/A below 1: B is smaller (faster, fewer bytes, less busy) than A."
    return _write(doc.Document(title, sections, subtitle=note), target)


# ------------------------------------------------------------------------------------ runs


def _run_document(run: Run, figures: _Figures, slo_s: float | None) -> doc.Document:
    metrics, requests = run_metrics(run, slo_s), run.requests
    mean_s = metrics.get("mean_latency_s", math.nan)
    stages = Table(
        ["stage", "mean (s)", "share of the mean latency"],
        [[label(k), metrics.get(k), _ratio(mean_s, metrics.get(k))] for k in _STAGE_KEYS],
    )
    bars = plots.stage_bars([{**_labels(run), **metrics}])
    sections = [
        _run_header(run),
        Section("Headline metrics", [_metric_table(metrics, slo_s)]),
        Section("Where the time goes", [figures.add(bars, "stages", _STAGES_CAPTION), stages]),
        Section(
            "Distributions",
            [
                figures.cdf(_by_split_codec(requests, _latency_s), "latency-cdf", "latency (s)"),
                figures.cdf(
                    _by_split_codec(requests, _column("payload_bytes")),
                    "payload-cdf",
                    "uplink payload (bytes/request)",
                ),
            ],
        ),
    ]
    if run.task == "generate":
        summary = run.summary
        keys = [k for k in _GENERATION_KEYS if k in summary]
        table = Table(["metric", "value"], [[label(k), summary[k]] for k in keys])
        ttft = _by_split_codec(requests, _column("ttft_s"))
        tpot = _by_split_codec(requests, _column("tpot_s"))
        sections.append(
            Section(
                "Generation",
                [
                    table,
                    figures.cdf(ttft, "ttft-cdf", "time to first token (s)"),
                    figures.cdf(tpot, "tpot-cdf", "time per output token (s)"),
                ],
            )
        )
    timeline = plots.timeline(requests, max_requests=30)
    caption = "The first 30 completed requests by arrival, stage by stage (device → replica)."
    sections += [
        Section("Timeline", [figures.add(timeline, "timeline", caption)]),
        Section("Servers", [_servers_table(run)]),
    ]
    reasons = _reasons_table(run.summary)
    if reasons is not None:
        sections.append(Section("Drops and failures", [reasons]))
    sections += [_scenario_section(run.scenario, ""), _versions_section(run)]
    return doc.Document(f"Run report: {run.name}", sections, subtitle=str(run.path))


def _run_header(run: Run) -> Section:
    m = run.manifest
    facts: list[list[Any]] = [
        ["scenario", run.name],
        ["description", run.scenario.get("description") or None],
        ["run id", m.get("run_id")],
        ["mode", m.get("mode")],
        ["seed", run.seed],
        ["status", m.get("status")],
        ["simulated time (s)", run.sim_time_s],
        ["wall time (s)", m.get("wall_s")],
        ["started", m.get("started_at")],
        ["git commit", m.get("git_commit")],
        ["host", m.get("host")],
    ]
    return Section("Overview", [Table(["field", "value"], facts), Text(_what_was_run(run))])


def _metric_table(metrics: Mapping[str, float], slo_s: float | None) -> Table:
    def name(key: str) -> str:
        if key == "slo_attainment":
            return f"within the {slo_s:g} s SLO (share of requests)"
        return label(key)

    return Table(["metric", "value"], [[name(k), v] for k, v in metrics.items()])


def _servers_table(run: Run) -> Table:
    """Per replica: busy seconds and utilisation over the run, batches, requests, drops and
    the longest queue (row "shared queue": the one queue of routing: shared-queue)."""
    servers, sim_s = run.servers, run.sim_time_s
    sums = [(c, "sum") for c in ("busy_s", "batches", "requests", "dropped")]
    grouped = servers.group_by("replica_id").aggregate([*sums, ("queue_len_max", "max")])
    rows = []
    for r in grouped.sort_by("replica_id").to_pylist():
        busy = r["busy_s_sum"] if r["replica_id"] >= 0 else None
        share = busy / sim_s if busy is not None and sim_s > 0 else None
        rows.append(
            [
                r["replica_id"] if r["replica_id"] >= 0 else "shared queue",
                busy,
                share,
                r["batches_sum"] if busy is not None else None,
                r["requests_sum"],
                r["dropped_sum"],
                r["queue_len_max_max"],
            ]
        )
    headers = ["replica", "busy (s)", "utilisation (share of run time)", "batches"]
    headers += ["requests", "dropped", "longest queue (requests)"]
    return Table(headers, rows)


def _reasons_table(summary: Mapping[str, Any]) -> Table | None:
    rows = [
        [what, reason, count]
        for key, what in (("drops_by_reason", "dropped"), ("failures_by_reason", "failed"))
        for reason, count in sorted((summary.get(key) or {}).items())
    ]
    return Table(["status", "reason", "requests"], rows) if rows else None


# ---------------------------------------------------------------------------------- sweeps


def _sweep_document(sweep: Sweep, figures: _Figures, slo_s: float | None) -> doc.Document:
    rows = sweep_rows(sweep, slo_s)
    scenario = _scenario_of(sweep)
    generate = any(r.get("task") == "generate" for r in rows)
    sections = [_sweep_header(sweep, scenario), Section("Points", [_points_table(sweep, rows)])]
    if rows:
        sections.append(_scaling_section(rows, figures, slo_s, generate))
        if slo_s is not None:
            sections.append(_capacity_section(sweep, rows, figures, slo_s))
        latencies = _point_latencies(sweep, _largest_points(rows))
        uplink = "Uplink per request (and per token) of each codec, grouped by split."
        blocks = [
            figures.add(plots.uplink_per_codec(rows), "uplink-per-codec", uplink),
            figures.add(plots.stage_bars(rows), "stages", _STAGES_CAPTION),
            figures.cdf(latencies, "latency-cdf", "latency (s)"),
        ]
        sections.append(Section("Uplink and where the time goes", blocks))
    failed = _failed_table(sweep)
    if failed is not None:
        sections.append(Section("Failed points", [failed]))
    note = "The first point's resolved scenario: the others differ in the swept parameters "
    sections += [_scenario_section(scenario, note + "and seeds."), _versions_section(sweep)]
    title = f"Sweep report: {scenario.get('name') or sweep.path.name}"
    return doc.Document(title, sections, subtitle=str(sweep.path))


def _sweep_header(sweep: Sweep, scenario: Mapping[str, Any]) -> Section:
    status = sweep.points.column("status").to_pylist()
    complete = status.count("complete")
    manifests = [_manifest(sweep.path / p) for p in sweep.names]
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
        f"{p} over {', '.join(str(_value_text(v)) for v in _distinct(sweep, p))}"
        for p in sweep.params
    )
    text = _what_was_run(scenario) + (f" Swept: {swept}." if swept else "")
    return Section("Overview", [Table(["field", "value"], facts), Text(text)])


def _points_table(sweep: Sweep, rows: Sequence[Row]) -> Table:
    """Complete points: their swept values (less those repeated by devices, replicas, split
    and codec), seed and headline metrics."""
    params = _shown_params(sweep, rows)
    metrics = list(_POINT_METRICS)
    if rows and "slo_attainment" in rows[0]:
        metrics.append("slo_attainment")
    if any(r.get("task") == "generate" for r in rows):
        metrics += _GENERATE_POINT_METRICS
    seeds = dict(zip(sweep.names, sweep.points.column("seed").to_pylist(), strict=True))
    names = ["point", *params, *_LABEL_KEYS]
    table_rows = [
        [
            *(_value_text(r.get(k)) for k in names),
            seeds.get(str(r["point"])),
            *(r.get(k) for k in metrics),
        ]
        for r in rows
    ]
    headers = [*(label(k) for k in names), "seed", *(label(k) for k in metrics)]
    return Table(headers, table_rows, caption=f"{len(rows)} complete points")


def _scaling_section(
    rows: Sequence[Row], figures: _Figures, slo_s: float | None, generate: bool
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
        if not rows or not any(all(r.get(p) == r.get(k) for r in rows) for k in _LABEL_KEYS)
    ]


def _capacity_section(
    sweep: Sweep, rows: Sequence[Row], figures: _Figures, slo_s: float
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
        [[*(_value_text(c.key.get(k)) for k in by), c.devices, _words(c)] for c in found],
        caption=f"Largest fleet whose p95 latency stays within the {slo_s:g} s SLO",
    )
    fewest = replicas_needed(rows, slo_s=slo_s, by=["split", "codec", *others])
    needed = plots.replicas_needed_curve(fewest, slo_s=slo_s)
    caption = f"Fewest swept replicas whose p95 latency meets the {slo_s:g} s SLO."
    return Section("Capacity at the SLO", [table, figures.add(needed, "replicas-needed", caption)])


def _words(c: Capacity) -> str:
    if c.status == "met_at_every_point":
        return f"meets the SLO at every point (capacity >= {doc.cell_text(c.devices)})"
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
        for name, values in _by_split_codec(requests, _latency_s).items():
            out[f"{name}, {doc.cell_text(row.get('devices'))} devices"] = values
    return out


def _failed_table(sweep: Sweep) -> Table | None:
    columns = [c for c in ("point", "status", "error") if c in sweep.points.column_names]
    failed = [
        [r["point"], r.get("error") or "(no error recorded)"]
        for r in sweep.points.select(columns).to_pylist()
        if r["status"] != "complete"
    ]
    return Table(["point", "error"], failed) if failed else None


# ------------------------------------------------------------------------------ comparison


def _compare_runs(a: Run, b: Run, figures: _Figures, slo_s: float | None) -> list[Section]:
    ma, mb = run_metrics(a, slo_s), run_metrics(b, slo_s)
    keys = [k for k in ma if k in mb and not (_missing(ma[k]) and _missing(mb[k]))]
    rows = [[label(k), ma[k], mb[k], _ratio(ma[k], mb[k])] for k in keys]
    both = [(f"A: {_labels(a)['codec']}", a, ma), (f"B: {_labels(b)['codec']}", b, mb)]
    bars = plots.stage_bars([{**_labels(r), **m, "codec": codec} for codec, r, m in both])

    def tagged(values: Callable[[pa.Table], np.ndarray]) -> dict[str, np.ndarray]:
        return {
            f"{tag}: {name}": v
            for tag, run in (("A", a), ("B", b))
            for name, v in _by_split_codec(run.requests, values).items()
        }

    blocks = [
        figures.cdf(tagged(_latency_s), "latency-cdf", "latency (s)"),
        figures.cdf(tagged(_column("payload_bytes")), "payload-cdf", "uplink payload (bytes)"),
        figures.add(bars, "stages", _STAGES_CAPTION),
    ]
    return [
        Section("Headline metrics", [Table(["metric", "A", "B", "B/A"], rows)]),
        Section("Distributions and stages", blocks),
    ]


def _compare_sweeps(a: Sweep, b: Sweep, figures: _Figures, slo_s: float | None) -> list[Section]:
    ra, rb = sweep_rows(a, slo_s), sweep_rows(b, slo_s)
    keys, pairs = _pair(ra, rb)
    metrics = _POINT_METRICS[:4]
    headers = [label(k) for k in keys]
    for m in metrics:
        headers += [f"A: {label(m)}", f"B: {label(m)}", "B/A"]
    table = Table(
        headers,
        [
            [
                *(x.get(k) for k in keys),
                *(v for m in metrics for v in (x.get(m), y.get(m), _ratio(x.get(m), y.get(m)))),
            ]
            for x, y in pairs
        ],
    )
    said = f"Points paired on {', '.join(keys)}." if pairs else "No points of A and B pair up."
    rows = [{**r, "codec": f"{t}: {r['codec']}"} for t, rs in (("A", ra), ("B", rb)) for r in rs]
    sections = [Section("Headline metrics at paired points", [Text(said), table])]
    if rows:
        generate = any(r.get("task") == "generate" for r in rows)
        sections.append(_scaling_section(rows, figures, slo_s, generate))
    return sections


def _pair(ra: Sequence[Row], rb: Sequence[Row]) -> tuple[list[str], list[tuple[Row, Row]]]:
    """Pair the rows of two sweeps on the most of (devices, replicas, split, codec) that pairs
    at least one point and tells the points of each sweep apart."""
    for n in (4, 3, 2, 1):
        keys = list(_LABEL_KEYS[:n])
        index_a = {json.dumps([r.get(k) for k in keys], default=str): r for r in ra}
        index_b = {json.dumps([r.get(k) for k in keys], default=str): r for r in rb}
        if len(index_a) < len(ra) or len(index_b) < len(rb):
            continue
        pairs = [(row, index_b[key]) for key, row in index_a.items() if key in index_b]
        if pairs:
            return keys, pairs
    return [], []


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> Table:
    fa, fb = _flatten(a), _flatten(b)
    rows = [
        [k, _value_text(fa.get(k)), _value_text(fb.get(k))]
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    ]
    caption = "Where the resolved scenarios differ"
    return Table(["scenario field", "A", "B"], rows or [["(no difference)", "", ""]], caption)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested scenario data as ``path: value`` (``fleet[0].count``), like sweep paths."""
    if isinstance(data, Mapping) and data:
        items = [(f"{prefix}.{k}" if prefix else str(k), v) for k, v in data.items()]
    elif isinstance(data, list) and data and all(isinstance(v, Mapping) for v in data):
        items = [(f"{prefix}[{i}]", v) for i, v in enumerate(data)]
    else:
        return {prefix: data}
    return {k: v for path, value in items for k, v in _flatten(value, path).items()}


# ------------------------------------------------------------------------- shared pieces

_STAGES_CAPTION = "Mean time per stage of completed requests (at the largest fleet)."


class _Figures:
    """Saves figures as PNG + SVG under ``folder`` (clearing the PNG and SVG files of an
    earlier report there) and returns them as report blocks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        if folder.is_dir():
            for old in [*folder.glob("*.png"), *folder.glob("*.svg")]:
                old.unlink()

    def add(self, fig: Figure, stem: str, caption: str) -> doc.Figure:
        png, svg = plots.save(fig, self.folder / stem)
        return doc.Figure(caption, png, svg)

    def cdf(self, samples: Mapping[str, np.ndarray], stem: str, xlabel: str) -> doc.Figure:
        """A CDF per series, log x when the positive values span two decades or more."""
        values = [v[np.isfinite(v) & (v > 0)] for v in samples.values()]
        positive = np.concatenate(values) if values else np.empty(0)
        log_x = bool(positive.size) and bool(positive.max() >= 100 * positive.min())
        series = cast(Mapping[str, Sequence[float]], samples)
        fig = plots.cdf(series, xlabel=xlabel, log_x=log_x)
        what = xlabel.split(" (")[0]
        return self.add(fig, stem, f"Distribution of {what}, completed requests, per series.")


def _labels(run: Run) -> dict[str, Any]:
    """A run's devices, replicas, split, codec and task, labelled as ``sweep_rows`` does."""
    scenario = run.scenario
    groups: list[dict[str, Any]] = scenario.get("fleet") or []
    splits = list(dict.fromkeys(g.get("split") for g in groups))
    codecs = list(dict.fromkeys(codec_label(g.get("codec") or scenario["codec"]) for g in groups))
    return {
        "devices": sum(int(g.get("count", 0)) for g in groups),
        "replicas": run.replicas,
        "split": splits[0] if len(splits) == 1 else "/".join(map(str, splits)),
        "codec": "/".join(codecs),
        "task": run.task,
    }


def _by_split_codec(
    requests: pa.Table, values: Callable[[pa.Table], np.ndarray]
) -> dict[str, np.ndarray]:
    """``values`` of the completed requests, per "split S, CODEC" (requests' own columns)."""
    done = requests.filter(pc.equal(requests.column("status"), "completed"))
    splits = np.asarray(done.column("split").to_numpy(zero_copy_only=False))
    codecs = np.asarray(done.column("codec").to_pylist(), dtype=object)
    data = values(done)
    return {
        f"split {split}, {codec}": data[(splits == split) & (codecs == codec)]
        for split, codec in dict.fromkeys(zip(splits.tolist(), codecs.tolist(), strict=True))
    }


def _latency_s(requests: pa.Table) -> np.ndarray:
    return _column("t_done_s")(requests) - _column("t_arrival_s")(requests)


def _column(name: str) -> Callable[[pa.Table], np.ndarray]:
    def read(table: pa.Table) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    return read


def _what_was_run(results: Run | Mapping[str, Any]) -> str:
    """One paragraph: the model, the device groups, the servers, how long, the mode."""
    s = results.scenario if isinstance(results, Run) else results
    model, servers = s.get("model") or {}, s.get("servers") or {}
    groups = []
    for g in s.get("fleet") or []:
        codec = codec_label(g.get("codec") or s.get("codec") or {"id": "?"})
        link = f"cell {g['cell']}" if g.get("cell") else _link_text(g.get("uplink"))
        groups.append(
            f"{g.get('count')} x {g.get('hardware')} in group {g.get('name')} (split "
            f"{g.get('split')}, codec {codec}, {_arrivals_text(g.get('arrivals') or {})}, "
            f"uplink {link})"
        )
    batching = servers.get("batching") or {}
    if s.get("duration_s"):
        length = f"Arrivals for {s['duration_s']:g} simulated seconds"
    else:
        length = f"{s.get('requests_per_device')} requests per device"
    source = f" from {s.get('replay_from')}" if s.get("mode") == "replay" else ""
    return (
        f"Model {model.get('name')} (task {model.get('task', 'infer')}). Devices: "
        f"{'; '.join(groups)}. Servers: {servers.get('replicas', 1)} x {servers.get('hardware')} "
        f"({servers.get('dtype')}, batches up to {batching.get('max_batch', 1)}, routing "
        f"{servers.get('routing')}). {length}, {s.get('mode')} mode{source}."
    )


def _arrivals_text(a: Mapping[str, Any]) -> str:
    if a.get("kind") == "poisson":
        return f"Poisson arrivals at {a.get('rate_per_s')}/s per device"
    if a.get("kind") == "periodic":
        return f"a request every {a.get('period_s')} s per device"
    return f"{a.get('kind')} arrivals"


def _link_text(link: Mapping[str, Any] | None) -> str:
    if not link:
        return "default"
    if link.get("kind") == "trace":
        return f"trace {link.get('trace')}"
    if link.get("kind") == "constant":
        return f"{link.get('bandwidth_mbps')} Mbit/s"
    return str(link.get("kind"))


def _scenario_section(scenario: Mapping[str, Any], note: str) -> Section:
    text = json.dumps(scenario, indent=2, default=str)
    return Section("Resolved scenario", [*([Text(note)] if note else []), Code(text)])


def _versions_section(results: Run | Sweep) -> Section:
    if isinstance(results, Run):
        manifest = results.manifest
    else:
        manifest = next((m for m in map(_manifest, _point_dirs(results)) if m), {})
    rows = [[k, str(v)] for k, v in (manifest.get("versions") or {}).items()]
    rows.append(["git commit", str(manifest.get("git_commit") or "unknown")])
    return Section("Versions", [Table(["package", "version"], rows)])


def _scenario_of(results: Run | Sweep) -> dict[str, Any]:
    if isinstance(results, Run):
        return results.scenario
    for path in _point_dirs(results):
        scenario = _manifest(path).get("scenario")
        if isinstance(scenario, dict):
            return scenario
    return {}


def _point_dirs(sweep: Sweep) -> list[Path]:
    return [sweep.path / name for name in sweep.names]


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _distinct(sweep: Sweep, param: str) -> list[Any]:
    column = sweep.points.column(param).to_pylist()
    return [json.loads(v) if isinstance(v, str) else v for v in dict.fromkeys(column)]


def _value_text(value: Any) -> Any:
    if isinstance(value, Mapping) and "id" in value:
        return codec_label(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return value


def _write(document: doc.Document, where: Path) -> tuple[Path, Path]:
    html_path, md_path = where / HTML_NAME, where / MD_NAME
    html_path.write_text(doc.render_html(document), encoding="utf-8")
    md_path.write_text(doc.render_markdown(document, where), encoding="utf-8")
    return html_path, md_path


def _check_slo(slo_s: float | None) -> None:
    if slo_s is None:
        return
    number = isinstance(slo_s, int | float) and not isinstance(slo_s, bool)
    if not number or not math.isfinite(slo_s) or slo_s <= 0:
        raise ValueError(
            f"the latency SLO must be a number of seconds > 0, got {slo_s!r}; e.g. --slo-s 0.5"
        )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ratio(a: Any, b: Any) -> float:
    """b / a; NaN when either is missing or a is 0."""
    if _missing(a) or _missing(b) or not isinstance(a, int | float) or a == 0:
        return math.nan
    return float(b) / float(a)
