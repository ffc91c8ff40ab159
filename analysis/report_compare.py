"""The comparison of two runs or two sweeps, side by side.

``comparison_document`` builds the document; ``analysis.report.write_comparison`` writes it.
Two runs: their headline metrics with B/A, overlaid latency and payload distributions, and
their stage bars. Two sweeps: both in one set of scaling curves with their codec labels
prefixed "A: " and "B: ", and the headline metrics of points paired on devices, replicas,
split and codec (on fewer of these keys when no point pairs on all four, e.g. when A and B
differ in codec). Both: where the resolved scenarios differ, field by field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa

from analysis import plots
from analysis import report_html as doc
from analysis.labels import label
from analysis.load import ResultsError, Run, Sweep
from analysis.metrics import run_labels, run_metrics, sweep_rows
from analysis.report_html import Section, Table, Text
from analysis.report_parts import (
    LABEL_KEYS,
    STAGES_CAPTION,
    FigureSaver,
    by_split_codec,
    column,
    latency_s,
    missing,
    ratio,
    scenario_of,
    value_text,
    versions_section,
)
from analysis.report_sweep import POINT_METRICS, scaling_section

Row = Mapping[str, Any]


def check_comparable(first: Run | Sweep, second: Run | Sweep) -> None:
    """Raise ``ResultsError`` unless both are runs or both are sweeps."""
    if isinstance(first, Sweep) != isinstance(second, Sweep):
        kinds = ["a sweep" if isinstance(r, Sweep) else "a run" for r in (first, second)]
        raise ResultsError(
            f"cannot compare {kinds[0]} ({first.path}) with {kinds[1]} ({second.path}); compare "
            "two runs or two sweeps (to compare a run with one sweep point, pass that point's "
            "directory)"
        )


def comparison_document(
    first: Run | Sweep, second: Run | Sweep, figures: FigureSaver, slo_s: float | None
) -> doc.Document:
    """Two runs, or two sweeps (else ``ResultsError``), side by side: who they are, where
    their scenarios differ, their metrics with B/A, overlaid figures, versions."""
    check_comparable(first, second)
    if isinstance(first, Run) and isinstance(second, Run):
        body = _compare_runs(first, second, figures, slo_s)
    else:
        body = _compare_sweeps(cast(Sweep, first), cast(Sweep, second), figures, slo_s)
    both = (first, second)
    scenarios = [scenario_of(r) for r in both]
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
        versions_section(first),
    ]
    title = f"Comparison: {names[0]} (A) vs {names[1]} (B)"
    note = "B/A below 1: B is smaller (faster, fewer bytes, less busy) than A."
    return doc.Document(title, sections, subtitle=note)


def _compare_runs(a: Run, b: Run, figures: FigureSaver, slo_s: float | None) -> list[Section]:
    ma, mb = run_metrics(a, slo_s), run_metrics(b, slo_s)
    keys = [k for k in ma if k in mb and not (missing(ma[k]) and missing(mb[k]))]
    rows = [[label(k), ma[k], mb[k], ratio(ma[k], mb[k])] for k in keys]
    both = [(f"A: {run_labels(a)['codec']}", a, ma), (f"B: {run_labels(b)['codec']}", b, mb)]
    bars = plots.stage_bars([{**run_labels(r), **m, "codec": codec} for codec, r, m in both])

    def tagged(values: Callable[[pa.Table], np.ndarray]) -> dict[str, np.ndarray]:
        return {
            f"{tag}: {name}": v
            for tag, run in (("A", a), ("B", b))
            for name, v in by_split_codec(run.requests, values).items()
        }

    blocks = [
        figures.cdf(tagged(latency_s), "latency-cdf", "latency (s)"),
        figures.cdf(tagged(column("payload_bytes")), "payload-cdf", "uplink payload (bytes)"),
        figures.add(bars, "stages", STAGES_CAPTION),
    ]
    return [
        Section("Headline metrics", [Table(["metric", "A", "B", "B/A"], rows)]),
        Section("Distributions and stages", blocks),
    ]


def _compare_sweeps(a: Sweep, b: Sweep, figures: FigureSaver, slo_s: float | None) -> list[Section]:
    ra, rb = sweep_rows(a, slo_s), sweep_rows(b, slo_s)
    keys, pairs = _pair(ra, rb)
    metrics = POINT_METRICS[:4]
    headers = [label(k) for k in keys]
    for m in metrics:
        headers += [f"A: {label(m)}", f"B: {label(m)}", "B/A"]
    table = Table(
        headers,
        [
            [
                *(x.get(k) for k in keys),
                *(v for m in metrics for v in (x.get(m), y.get(m), ratio(x.get(m), y.get(m)))),
            ]
            for x, y in pairs
        ],
    )
    said = f"Points paired on {', '.join(keys)}." if pairs else "No points of A and B pair up."
    rows = [{**r, "codec": f"{t}: {r['codec']}"} for t, rs in (("A", ra), ("B", rb)) for r in rs]
    sections = [Section("Headline metrics at paired points", [Text(said), table])]
    if rows:
        generate = any(r.get("task") == "generate" for r in rows)
        sections.append(scaling_section(rows, figures, slo_s, generate))
    return sections


def _pair(ra: Sequence[Row], rb: Sequence[Row]) -> tuple[list[str], list[tuple[Row, Row]]]:
    """Pair the rows of two sweeps on the most of (devices, replicas, split, codec) that pairs
    at least one point and tells the points of each sweep apart."""
    for n in (4, 3, 2, 1):
        keys = list(LABEL_KEYS[:n])
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
        [k, value_text(fa.get(k)), value_text(fb.get(k))]
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
