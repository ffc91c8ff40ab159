"""Pieces every report shares: saving its figures, per-series samples of a requests table, the
"what was run" paragraph, the resolved-scenario and versions sections, and small value helpers.

Internal to ``analysis.report*``. ``FigureSaver`` writes each figure as PNG + SVG under one
folder (clearing the PNG and SVG files an earlier report left there) and hands back the
report block; every other function here only reads.
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
from analysis.load import Run, Sweep
from analysis.metrics import codec_label
from analysis.report_html import Code, Section, Table, Text

#: The keys that say what a point is, in the order tables show them.
LABEL_KEYS = ("devices", "replicas", "split", "codec")
STAGES_CAPTION = "Mean time per stage of completed requests (at the largest fleet)."


class FigureSaver:
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


def by_split_codec(
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


def latency_s(requests: pa.Table) -> np.ndarray:
    """``t_done_s - t_arrival_s`` of every row."""
    return column("t_done_s")(requests) - column("t_arrival_s")(requests)


def column(name: str) -> Callable[[pa.Table], np.ndarray]:
    """A reader of column ``name`` as float64 (nulls become NaN)."""

    def read(table: pa.Table) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    return read


def what_was_run(results: Run | Mapping[str, Any]) -> str:
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
    decode = servers.get("decode") or {}
    if decode.get("on") == "gpu":
        decoding = "IFs are decoded on the accelerators"
    else:
        cores = decode.get("cores") or "the hardware entry's host"
        decoding = f"IFs are decoded on a pool of {cores} CPU cores per replica"
    return (
        f"Model {model.get('name')} (task {model.get('task', 'infer')}). Devices: "
        f"{'; '.join(groups)}. Servers: {servers.get('replicas', 1)} x {servers.get('hardware')} "
        f"({servers.get('dtype')}, batches up to {batching.get('max_batch', 1)}, routing "
        f"{servers.get('routing')}); {decoding}. {length}, {s.get('mode')} mode{source}."
    )


def assumptions_section(manifests: Sequence[Mapping[str, Any]]) -> Section | None:
    """What the runs' times assumed beyond their inputs (``manifest.json``), each once."""
    found: dict[str, None] = {}
    for m in manifests:
        for text in m.get("assumptions") or []:
            found[str(text)] = None
    if not found:
        return None
    return Section("Assumptions", [Text(a) for a in found])


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


def scenario_section(scenario: Mapping[str, Any], note: str) -> Section:
    """The resolved scenario as JSON, after an optional note."""
    text = json.dumps(scenario, indent=2, default=str)
    return Section("Resolved scenario", [*([doc.Text(note)] if note else []), Code(text)])


def versions_section(results: Run | Sweep) -> Section:
    """Package versions and git commit from the run's manifest (a sweep's first point's)."""
    if isinstance(results, Run):
        manifest = results.manifest
    else:
        manifest = next((m for m in map(read_manifest, point_dirs(results)) if m), {})
    rows = [[k, str(v)] for k, v in (manifest.get("versions") or {}).items()]
    rows.append(["git commit", str(manifest.get("git_commit") or "unknown")])
    return Section("Versions", [Table(["package", "version"], rows)])


def scenario_of(results: Run | Sweep) -> dict[str, Any]:
    """The resolved scenario of a run, or of a sweep's first point that recorded one."""
    if isinstance(results, Run):
        return results.scenario
    for path in point_dirs(results):
        scenario = read_manifest(path).get("scenario")
        if isinstance(scenario, dict):
            return scenario
    return {}


def point_dirs(sweep: Sweep) -> list[Path]:
    return [sweep.path / name for name in sweep.names]


def read_manifest(path: Path) -> dict[str, Any]:
    """``path/manifest.json`` as a dict; empty when missing or unreadable."""
    try:
        data = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def value_text(value: Any) -> Any:
    """A swept value for a table cell: codec configs as their label, other dicts and lists as
    one-line JSON, the rest unchanged."""
    if isinstance(value, Mapping) and "id" in value:
        return codec_label(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return value


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def ratio(a: Any, b: Any) -> float:
    """b / a; NaN when either is missing or a is 0."""
    if missing(a) or missing(b) or not isinstance(a, int | float) or a == 0:
        return math.nan
    return float(b) / float(a)
