"""Reports: ``write_report`` turns a run or a sweep directory into ``report.html`` (one
self-contained page: figures embedded, tables, the resolved scenario, versions, seed) and
``report.md`` beside the results; ``write_comparison`` puts two runs or two sweeps side by side.

Every number comes from ``analysis.metrics`` (or the run's own summary.json and servers table);
every figure from ``analysis.plots``, saved as PNG and SVG under ``<results>/figures/`` (report.md
links them, report.html embeds the PNGs; the PNG and SVG files already there are replaced). The
run report is built here; the sweep report in ``analysis.report_sweep``, the comparison in
``analysis.report_compare``, the HTML and Markdown in ``analysis.report_html``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis import plots
from analysis import report_html as doc
from analysis.labels import label
from analysis.load import Run, Sweep, load
from analysis.metrics import run_labels, run_metrics
from analysis.report_compare import check_comparable, comparison_document
from analysis.report_html import Section, Table, Text
from analysis.report_parts import (
    STAGES_CAPTION,
    FigureSaver,
    assumptions_section,
    by_split_codec,
    column,
    latency_s,
    ratio,
    scenario_section,
    versions_section,
    what_was_run,
)
from analysis.report_plan import plan_section
from analysis.report_sweep import MAX_CDF_POINTS as MAX_CDF_POINTS
from analysis.report_sweep import sweep_document
from records import metrics as metric_defs

HTML_NAME, MD_NAME, FIGURES = "report.html", "report.md", "figures"
#: the stage table lists every stage in lifecycle order; the headline table leaves stages out
_STAGE_KEYS = tuple(metric_defs.STAGES)
_NOT_HEADLINE = {*metric_defs.STAGES, *metric_defs.STAGE_GROUPS}
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


def write_report(path: str | Path, *, slo_s: float | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the results directory ``path`` (a run or a
    sweep) and return their paths; ``slo_s`` (seconds) adds SLO attainment and, for sweeps,
    capacity and replicas needed."""
    _check_slo(slo_s)
    results = load(path)
    figures = FigureSaver(results.path / FIGURES)
    if isinstance(results, Sweep):
        document = sweep_document(results, figures, slo_s)
    else:
        document = _run_document(results, figures, slo_s)
    planned = plan_section(results.path)  # slicer plan's recommendation, if one was written
    if planned is not None:
        first, *rest = document.sections
        document = dataclasses.replace(document, sections=[first, planned, *rest])
    return _write(document, results.path)


def write_comparison(
    a: str | Path, b: str | Path, out: str | Path | None = None, *, slo_s: float | None = None
) -> tuple[Path, Path]:
    """Two runs or two sweeps side by side in ``out`` (default ``<a>/compare-<b's folder
    name>``): headline metrics of both with B/A, where the scenarios differ, and overlaid
    distributions (runs) or scaling curves (sweeps). A run and a sweep: ``ResultsError``."""
    _check_slo(slo_s)
    first, second = load(a), load(b)
    check_comparable(first, second)
    target = Path(out) if out is not None else first.path / f"compare-{second.path.name}"
    target.mkdir(parents=True, exist_ok=True)
    document = comparison_document(first, second, FigureSaver(target / FIGURES), slo_s)
    return _write(document, target)


def _run_document(run: Run, figures: FigureSaver, slo_s: float | None) -> doc.Document:
    metrics, requests = run_metrics(run, slo_s), run.requests
    mean_s = metrics.get("mean_latency_s", math.nan)
    stages = Table(
        ["stage", "mean (s)", "share of the mean latency"],
        [[label(k), metrics.get(k), ratio(mean_s, metrics.get(k))] for k in _STAGE_KEYS],
    )
    bars = plots.stage_bars([{**run_labels(run), **metrics}])
    sections = [
        _run_header(run),
        Section("Headline metrics", [_metric_table(_headline(metrics), slo_s)]),
        Section("Where the time goes", [figures.add(bars, "stages", STAGES_CAPTION), stages]),
        Section(
            "Distributions",
            [
                figures.cdf(by_split_codec(requests, latency_s), "latency-cdf", "latency (s)"),
                figures.cdf(
                    by_split_codec(requests, column("payload_bytes")),
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
        ttft = by_split_codec(requests, column("ttft_s"))
        tpot = by_split_codec(requests, column("tpot_s"))
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
    assumptions = assumptions_section([run.manifest])
    if assumptions is not None:
        sections.append(assumptions)
    sections += [scenario_section(run.scenario, ""), versions_section(run)]
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
    return Section("Overview", [Table(["field", "value"], facts), Text(what_was_run(run))])


def _headline(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in _NOT_HEADLINE}


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
