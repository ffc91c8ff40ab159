"""Figures from finished metric rows: scaling curves, bars, rate-distortion, CDFs, a timeline.

Every function only draws: it takes rows (``analysis.metrics.sweep_rows`` dicts, ``replicas_needed``
dicts, ``benchmarks/codec_rd.py``'s ``rd.json`` records) or a requests table and returns a new
``matplotlib.figure.Figure`` (object API, no pyplot state). Colours are fixed per codec id
(colour-blind-safe Okabe-Ito based; variants of one id are shades of its colour), markers per
split point, line styles per replica count; every axis names its unit; an axis turns
logarithmic when its positive values span >= 2 decades. NaN and None values are skipped; no
data at all gives a figure saying "no data". ``save`` writes PNG (120 dpi) and SVG.
"""

from __future__ import annotations

import math
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

if "matplotlib.pyplot" not in sys.modules:  # never switch the backend of a live pyplot session
    matplotlib.use("Agg")

Row = Mapping[str, Any]
STAGES = ("device", "uplink", "server_queue", "server_compute", "downlink")
FIGSIZE_IN = (7.0, 4.5)
MAX_LEGEND_INSIDE = 6

_CODEC_COLORS = {
    "fp32": "#000000",
    "fp16": "#0072b2",
    "bf16": "#56b4e9",
    "int8": "#009e73",
    "blockwise8": "#8c564b",
    "zstd": "#cc79a7",
    "topk": "#e69f00",
    "rans": "#999999",
    "slicer": "#d55e00",
    "jpeg": "#6a3d9a",
    "webp": "#bcbd22",
}
_FALLBACK_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#e377c2", "#7f7f7f", "#d62728")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "p", "h", "<", ">", "8", "H", "d")
_LINESTYLES = ("-", "--", ":", "-.")
_STAGE_COLORS = {  # Paul Tol's muted scheme, colour-blind safe
    "device": "#88ccee",
    "uplink": "#ddcc77",
    "server_queue": "#cc6677",
    "server_compute": "#117733",
    "downlink": "#aa4499",
}
_STAGE_NAMES = {
    "device": "device (queue, head, encode)",
    "uplink": "uplink",
    "server_queue": "server queue",
    "server_compute": "server compute",
    "downlink": "downlink",
}
_AXIS_LABELS = {
    "devices": "fleet size (devices)",
    "replicas": "server replicas (count)",
    "split": "split point (block index)",
    "p50_latency_s": "p50 latency (s)",
    "p95_latency_s": "p95 latency (s)",
    "p99_latency_s": "p99 latency (s)",
    "mean_latency_s": "mean latency (s)",
    "throughput_rps": "throughput (requests/s)",
    "slo_attainment": "SLO attainment (fraction of requests)",
    "server_utilization": "server utilisation (fraction)",
    "server_busy_s_per_request": "server busy time (s/request)",
    "server_busy_s_per_token": "server busy time (s/token)",
    "uplink_bytes_per_request": "uplink (bytes/request)",
    "uplink_bits_per_token": "uplink (bits/token)",
    "device_energy_j_per_request": "device energy (J/request)",
    "drop_rate": "drop rate (fraction of requests)",
    "failure_rate": "failure rate (fraction of requests)",
    "mean_agreement": "agreement with unsplit model (fraction)",
    "quality_change": "quality change (fraction)",
}
_UNIT_SUFFIXES = (("_bytes", "bytes"), ("_mbps", "Mbit/s"), ("_bps", "bit/s"), ("_j", "J"))


def codec_color(label: str) -> str:
    """Hex colour of a codec label, fixed for known ids (the text before "("; a jpeg label with
    ``format=webp`` is webp); other labels get a stable colour from a hash of their id."""
    family = _codec_family(label)
    if family in _CODEC_COLORS:
        return _CODEC_COLORS[family]
    return _FALLBACK_COLORS[zlib.crc32(family.encode()) % len(_FALLBACK_COLORS)]


def split_marker(split: Any) -> str:
    """Marker of a split point: integer splits cycle through 15 filled markers by value (so a
    split keeps its marker in every figure), other values by a stable hash of their text."""
    value = _num(split)
    if math.isfinite(value) and value == int(value):
        return _MARKERS[int(value) % len(_MARKERS)]
    return _MARKERS[zlib.crc32(_split_text(split).encode()) % len(_MARKERS)]


def axis_label(name: str) -> str:
    """Axis label with its unit for a metric or parameter name (``p95_latency_s`` -> "p95
    latency (s)"); unknown names get their unit from the suffix (``_s``, ``_bytes``, ``_j``...)."""
    if name in _AXIS_LABELS:
        return _AXIS_LABELS[name]
    stage = name.removesuffix("_s")
    if stage in _STAGE_NAMES:
        return f"{_STAGE_NAMES[stage]} (s)"
    for suffix, unit in (("_s", "s"), *_UNIT_SUFFIXES):
        if name.endswith(suffix):
            return f"{name.removesuffix(suffix).replace('_', ' ')} ({unit})"
    return name.replace("_", " ")


def scaling_curve(
    rows: Sequence[Row],
    *,
    metric: str = "p95_latency_s",
    x: str = "devices",
    ylabel: str | None = None,
    slo_s: float | None = None,
) -> Figure:
    """``metric`` vs ``x``: one line per (split, codec), and per replica count when that varies
    (line style); a dashed line at ``slo_s`` when given."""
    title = f"{axis_label(metric).split(' (')[0]} vs {axis_label(x).split(' (')[0]}"
    return _curve_figure(rows, metric, x, ylabel or axis_label(metric), slo_s, title)


def busy_per_request_curve(rows: Sequence[Row]) -> Figure:
    """Server busy seconds per request vs fleet size; per token instead when every row is a
    ``task: generate`` point (every row has a finite ``server_busy_s_per_token``)."""
    per_token = bool(rows) and all(
        math.isfinite(_num(r.get("server_busy_s_per_token"))) for r in rows
    )
    metric = "server_busy_s_per_token" if per_token else "server_busy_s_per_request"
    unit = "token" if per_token else "request"
    title = f"Server busy time per {unit} vs fleet size"
    return _curve_figure(rows, metric, "devices", axis_label(metric), None, title)


def replicas_needed_curve(needed: Sequence[Mapping[str, Any]], *, slo_s: float) -> Figure:
    """Fewest replicas meeting the SLO vs fleet size, one line per (split, codec) key; a point
    where no swept replica count met it is an "x" on the top edge."""
    fig, axes = _new_figure()
    ax = axes[0]
    ax.set_xlabel(axis_label("devices"))
    ax.set_ylabel("replicas needed (count)")
    ax.set_title(f"Replicas needed to meet the {slo_s:g} s SLO")
    groups: dict[tuple[tuple[str, Any], ...], list[Mapping[str, Any]]] = {}
    for row in needed:
        key = tuple((k, v) for k, v in row.items() if k not in ("devices", "replicas"))
        groups.setdefault(key, []).append(row)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    xs_all, ys_all, missed_any = [], [], False
    for key in sorted(groups, key=_group_sort_key):
        info = dict(key)
        style = _style(info.get("split"), str(info.get("codec", "")), None, [])
        label = " · ".join(_key_text(k, v) for k, v in key) or "all"
        pts = sorted(
            (d, _num(r.get("replicas")))
            for r in groups[key]
            if math.isfinite(d := _num(r.get("devices")))
        )
        met = [(d, n) for d, n in pts if math.isfinite(n)]
        missed = [d for d, n in pts if not math.isfinite(n)]
        if met:
            ax.plot(*zip(*met, strict=True), label=label, **style)
            xs_all += [d for d, _ in met]
            ys_all += [n for _, n in met]
        if missed:
            kw = {**style, "marker": "x", "linestyle": "none"}
            ax.plot(missed, [1.0] * len(missed), transform=top, clip_on=False, **kw)
            xs_all += missed
            missed_any = True
    if not xs_all:
        return _no_data(fig, ax)
    _auto_log(ax, xs_all, ys_all)
    if ax.get_yscale() == "linear":  # counts from zero, room above the top point
        ax.set_ylim(0, 1.15 * max(ys_all, default=1.0) + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    extra = [Line2D([], [], color="#444444", marker="x", ls="none")] if missed_any else []
    _legend(fig, [ax], extra, ["SLO missed at every replica count"] if missed_any else [])
    return fig


def uplink_per_codec(rows: Sequence[Row]) -> Figure:
    """Bars of uplink bytes per request per codec, grouped by split (the median over a key's
    rows, e.g. its fleet sizes); a second panel of bits per token when rows have it."""
    metrics = ["uplink_bytes_per_request"]
    if any(math.isfinite(_num(r.get("uplink_bits_per_token"))) for r in rows):
        metrics.append("uplink_bits_per_token")
    fig, axes = _new_figure(ncols=len(metrics))
    drawn = 0
    for ax, metric in zip(axes, metrics, strict=True):
        ax.set_title(f"Uplink per {metric.rsplit('_', 1)[1]} by codec")
        ax.set_xlabel(axis_label("split"))
        ax.set_ylabel(axis_label(metric))
        drawn += _grouped_bars(ax, rows, metric)
    if not drawn:
        return _no_data(fig, axes[0])
    _legend(fig, axes[:1], force_outside=len(axes) > 1)
    return fig


def stage_bars(rows: Sequence[Row], *, devices: float | None = None) -> Figure:
    """Stacked bars of the mean time per stage, one bar per (split, codec[, replicas]). Each bar
    uses its rows at ``devices``, or when None its largest fleet size with stage data (said in
    the title when common to all bars, else under each bar); several rows there are averaged."""
    fig, axes = _new_figure()
    ax = axes[0]
    ax.set_ylabel("mean time per request (s)")
    ax.set_xlabel("split point and codec")
    usable = [r for r in rows if any(math.isfinite(_num(r.get(f"{s}_s"))) for s in STAGES)]
    if devices is not None:
        usable = [r for r in usable if _num(r.get("devices")) == devices]
    vary = _replicas_vary(usable)
    bars: dict[tuple[Any, ...], list[Row]] = {}
    for row in usable:
        bars.setdefault(_series_key(row, vary), []).append(row)
    keys = sorted(bars, key=_series_sort_key)
    chosen: list[list[Row]] = []
    for key in keys:
        sizes = [_num(r.get("devices")) for r in bars[key]]
        finite = [s for s in sizes if math.isfinite(s)]
        largest = max(finite) if finite else math.nan
        chosen.append(
            [r for r, s in zip(bars[key], sizes, strict=True) if s == largest] or bars[key]
        )
    if not keys:
        ax.set_title("Latency breakdown per stage")
        return _no_data(fig, ax)
    positions = _grouped_positions([k[0] for k in keys])
    sizes = sorted({_num(group[0].get("devices")) for group in chosen}, key=str)
    one_size = len(sizes) == 1
    at = f", at {_fmt_num(sizes[0])} devices" if one_size and math.isfinite(sizes[0]) else ""
    ax.set_title(f"Latency breakdown per stage{at}")
    bottom = np.zeros(len(keys))
    for stage in STAGES:
        values = np.array([_mean(_num(r.get(f"{stage}_s")) for r in g) for g in chosen])
        values = np.nan_to_num(values, nan=0.0)
        ax.bar(
            positions,
            values,
            0.7,
            bottom=bottom,
            color=_STAGE_COLORS[stage],
            label=_STAGE_NAMES[stage],
            edgecolor="white",
            linewidth=0.5,
        )
        bottom += values
    ticks = []
    for key, group in zip(keys, chosen, strict=True):
        text = key[1] + (_replicas_text(key[2]) if vary else "")
        if not one_size:
            text += f" · {_fmt_num(_num(group[0].get('devices')))} dev."
        ticks.append(text)
    slanted = len(keys) * max(len(t) for t in ticks) > 60
    ax.set_xticks(
        positions,
        ticks,
        fontsize=7 if len(keys) > 6 else 8,
        rotation=25 if slanted else 0,
        ha="right" if slanted else "center",
        rotation_mode="anchor",
    )
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for split in dict.fromkeys(k[0] for k in keys):
        xs = [p for p, k in zip(positions, keys, strict=True) if k[0] == split]
        ax.text(
            float(np.mean(xs)),
            0.98,
            f"split {_split_text(split)}",
            transform=top,
            ha="center",
            va="top",
            fontsize=8,
            fontweight="bold",
        )
    if bottom.max() > 0:  # the top stack's sticky edge defeats margins: leave room for labels
        ax.set_ylim(0, 1.12 * float(bottom.max()))
    pad = max(0.8, (3.5 - float(positions[-1])) / 2)  # a few bars stay bar-shaped
    ax.set_xlim(-pad, float(positions[-1]) + pad)
    _legend(fig, [ax], force_outside=True)
    return fig


def rate_distortion(points: Sequence[Mapping[str, Any]], *, distortion: str = "nmse") -> Figure:
    """Bits per element vs ``distortion`` (``nmse`` or ``max_row_nmse``, log y) from codec_rd's
    ``rd.json`` records: each codec setting (label) is the mean over the tensors it was measured
    on (arithmetic for bits, geometric for distortion), one line per codec id through its
    settings. Lossless settings (distortion 0) sit on the bottom edge as triangles."""
    if distortion not in ("nmse", "max_row_nmse"):
        raise ValueError(
            f"rate_distortion: distortion must be 'nmse' or 'max_row_nmse' (rd.json keys), "
            f"got {distortion!r}"
        )
    fig, axes = _new_figure()
    ax = axes[0]
    ax.set_xlabel("rate (bits/element)")
    what = "worst-row NMSE" if distortion == "max_row_nmse" else "NMSE"
    ax.set_ylabel(f"{what} (error energy / signal energy)")
    per_label: dict[str, list[tuple[float, float]]] = {}
    tensors = set()
    for p in points:
        bits, dist = _num(p.get("bits_per_element")), _num(p.get(distortion))
        if math.isfinite(bits) and math.isfinite(dist) and dist >= 0:
            per_label.setdefault(str(p.get("codec", "?")), []).append((bits, dist))
            tensors.add(str(p.get("tensor", "?")))
    scope = (
        f"on {next(iter(tensors))}" if len(tensors) == 1 else f"mean over {len(tensors)} tensors"
    )
    ax.set_title(f"Rate-distortion ({scope})")
    families: dict[str, list[tuple[float, float, str]]] = {}
    for label, pairs in per_label.items():
        bits = float(np.mean([b for b, _ in pairs]))
        dists = np.array([d for _, d in pairs])
        if dists.size == 1 or not (dists > 0).all():
            dist = float(dists.mean())
        else:
            dist = float(np.exp(np.mean(np.log(dists))))
        families.setdefault(_codec_family(label), []).append((bits, dist, label))
    if not families:
        return _no_data(fig, ax)
    edge = blended_transform_factory(ax.transData, ax.transAxes)
    for family in sorted(families, key=_family_sort_key):
        pts = sorted(families[family])
        color = codec_color(family)
        lossy = [(b, d, lab) for b, d, lab in pts if d > 0]
        lossless = [b for b, d, _ in pts if d == 0]
        varying, notes = _varying_params([lab for _, _, lab in lossy])
        if lossy:
            name = f"{family} ({', '.join(varying)})" if varying else family
            xs, ys = [b for b, _, _ in lossy], [d for _, d, _ in lossy]
            ax.plot(xs, ys, color=color, marker="o", ms=5, lw=1.5, label=name)
            for (b, d, _), note in zip(lossy, notes, strict=True):
                if note:
                    ax.annotate(
                        note,
                        (b, d),
                        xytext=(4, 2),
                        textcoords="offset points",
                        fontsize=6.5,
                        color=color,
                    )
        if lossless:
            ax.plot(
                lossless,
                [0.0] * len(lossless),
                transform=edge,
                clip_on=False,
                color=color,
                marker="v",
                ms=7,
                ls="none",
                label=None if lossy else f"{family} (lossless)",
            )
    if any(d > 0 for f in families.values() for _, d, _ in f):
        ax.set_yscale("log")
    bits_all = [b for f in families.values() for b, _, _ in f]
    if min(bits_all) > 0 and max(bits_all) >= 8 * min(bits_all):  # rates span octaves: log2 x
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(_tick_text))
    _legend(fig, [ax])
    return fig


def cdf(samples: Mapping[str, Sequence[float]], *, xlabel: str, log_x: bool = False) -> Figure:
    """Empirical CDF per named series (a step line each, NaN skipped, and values <= 0 when
    ``log_x``); codec labels get their codec colours, other names a fixed cycle."""
    fig, axes = _new_figure()
    ax = axes[0]
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative fraction of samples")
    ax.set_title(f"Distribution of {xlabel.split(' (')[0]}")
    labels = list(samples)
    drawn = 0
    for i, name in enumerate(labels):
        values = np.asarray(samples[name], dtype=np.float64)
        values = values[np.isfinite(values) & ((values > 0) if log_x else True)]
        if values.size == 0:
            continue
        values = np.sort(values)
        fraction = np.arange(1, values.size + 1) / values.size
        known = _codec_family(name) in _CODEC_COLORS
        color = _shaded(name, labels) if known else _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]
        ax.step(
            values, fraction, where="post", color=color, lw=1.6, label=f"{name} (n={values.size})"
        )
        drawn += 1
    if not drawn:
        return _no_data(fig, ax)
    if log_x:
        ax.set_xscale("log")
        _readable_log_ticks(ax.xaxis)
    ax.set_ylim(0, 1.02)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 0.95, 1.0])
    _legend(fig, [ax])
    return fig


def timeline(requests: pa.Table, *, max_requests: int = 30) -> Figure:
    """One lane per completed request (the first ``max_requests`` by arrival; tick text
    "request (device -> replica)"), bars coloured by stage over simulated time: device (arrival
    -> uplink start: queue, head, encode), uplink, server queue, server compute, downlink."""
    if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
        raise ValueError(f"timeline: max_requests must be an integer >= 1, got {max_requests!r}")
    edges = [
        "t_arrival_s",
        "t_uplink_start_s",
        "t_uplink_end_s",
        "t_server_start_s",
        "t_server_end_s",
        "t_done_s",
    ]
    needed = ["request_id", "device_id", "replica_id", "status", *edges]
    missing = [c for c in needed if c not in requests.column_names]
    if missing:
        raise ValueError(
            f"timeline: the requests table lacks column(s) {missing}; expected a "
            "requests.parquet table (fleet.records.REQUESTS_SCHEMA): pass Run.requests"
        )
    fig, axes = _new_figure()
    ax = axes[0]
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("request (device → replica)")
    if requests.num_rows == 0:
        ax.set_title("Request timeline")
        return _no_data(fig, ax)
    times = np.column_stack([_column(requests, c) for c in edges])
    completed = pc.fill_null(pc.equal(requests.column("status"), "completed"), False)
    ids = _column(requests, "request_id")
    keep = np.flatnonzero(completed.to_numpy(zero_copy_only=False) & np.isfinite(times).all(axis=1))
    keep = keep[np.lexsort((ids[keep], times[keep, 0]))][:max_requests]
    ax.set_title(f"Timeline of the first {keep.size} completed requests")
    if keep.size == 0:
        return _no_data(fig, ax)
    lanes = np.arange(keep.size)
    t = times[keep]
    for i, stage in enumerate(STAGES):
        ax.barh(
            lanes,
            t[:, i + 1] - t[:, i],
            left=t[:, i],
            height=0.7,
            color=_STAGE_COLORS[stage],
            label=_STAGE_NAMES[stage],
        )
    devices, replicas = _column(requests, "device_id")[keep], _column(requests, "replica_id")[keep]
    ticks = [
        f"{i:.0f} ({d:.0f} → {r:.0f})" for i, d, r in zip(ids[keep], devices, replicas, strict=True)
    ]
    ax.set_yticks(lanes, ticks, fontsize=7 if keep.size > 15 else 8)
    ax.set_ylim(keep.size - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    ax.grid(False, axis="y")
    _legend(fig, [ax], force_outside=True)
    return fig


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` (120 dpi) and ``stem.svg`` (no date, fixed ids: same figure, same
    bytes), then close the figure; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    with matplotlib.rc_context({"svg.hashsalt": "slicer-fleet"}):
        fig.savefig(paths[0], dpi=120)
        fig.savefig(paths[1], metadata={"Date": None})
    fig.clear()
    if fig.canvas.manager is not None:  # made through pyplot: unregister it there too
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


# ---------------------------------------------------------------------------------- helpers


def _curve_figure(
    rows: Sequence[Row], metric: str, x: str, ylabel: str, slo_s: float | None, title: str
) -> Figure:
    fig, axes = _new_figure()
    ax = axes[0]
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    vary = _replicas_vary(rows)
    groups: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
    for row in rows:
        xv, yv = _num(row.get(x)), _num(row.get(metric))
        if math.isfinite(xv) and math.isfinite(yv):
            groups.setdefault(_series_key(row, vary), []).append((xv, yv))
    if not groups:
        return _no_data(fig, ax)
    codecs = [k[1] for k in groups]
    replica_values = sorted({k[2] for k in groups}, key=_num)
    for key in sorted(groups, key=_series_sort_key):
        split, codec, replicas = key
        label = f"split {_split_text(split)} · {codec}" + (_replicas_text(replicas) if vary else "")
        pts = sorted(groups[key])
        ax.plot(
            *zip(*pts, strict=True),
            label=label,
            **_style(split, codec, replicas if vary else None, codecs, replica_values),
        )
    if slo_s is not None:
        ax.axhline(slo_s, color="#444444", ls="--", lw=1, label=f"SLO {slo_s:g} s")
    xs = [p[0] for pts in groups.values() for p in pts]
    ys = [p[1] for pts in groups.values() for p in pts] + ([slo_s] if slo_s is not None else [])
    _auto_log(ax, xs, ys)
    _legend(fig, [ax])
    return fig


def _grouped_bars(ax: Axes, rows: Sequence[Row], metric: str) -> int:
    """Bars of the median ``metric`` per (split, codec): split groups along x, each codec at a
    fixed offset inside its group; returns the number of bars."""
    values: dict[tuple[Any, str], list[float]] = {}
    for row in rows:
        v = _num(row.get(metric))
        if math.isfinite(v):
            values.setdefault((row.get("split"), str(row.get("codec", ""))), []).append(v)
    if not values:
        return 0
    splits = sorted({k[0] for k in values}, key=_split_sort_key)
    codecs = sorted({k[1] for k in values}, key=_family_sort_key)
    width = min(0.8 / len(codecs), 0.3)  # a lone bar stays a bar, not a wall
    medians = {k: float(np.median(v)) for k, v in values.items()}
    for j, codec in enumerate(codecs):
        offset = width * (j - (len(codecs) - 1) / 2)
        xs = [i + offset for i, s in enumerate(splits) if (s, codec) in medians]
        ys = [medians[(s, codec)] for s in splits if (s, codec) in medians]
        bars = ax.bar(xs, ys, width * 0.92, color=_shaded(codec, codecs), label=codec)
        ax.bar_label(bars, labels=[_fmt_num(v) for v in ys], fontsize=6, padding=1)
    ax.set_xticks(range(len(splits)), [_split_text(s) for s in splits])
    pad = max(0.6, (2.5 - len(splits)) / 2)
    ax.set_xlim(-pad, len(splits) - 1 + pad)
    _auto_log(ax, [], list(medians.values()))
    ax.margins(y=0.12)
    return len(medians)


def _style(
    split: Any,
    codec: str,
    replicas: Any,
    codecs: Sequence[str],
    replica_values: Sequence[Any] = (),
) -> dict[str, Any]:
    style_index = list(replica_values).index(replicas) if replicas in replica_values else 0
    return {
        "color": _shaded(codec, codecs),
        "marker": split_marker(split),
        "linestyle": _LINESTYLES[style_index % len(_LINESTYLES)],
        "markersize": 6,
        "linewidth": 1.6,
    }


def _shaded(label: str, labels: Iterable[str]) -> str:
    """The codec's colour, darker or lighter when several labels of its id are present."""
    family = _codec_family(label)
    variants = sorted(
        {lab for lab in labels if _codec_family(lab) == family} | {label}, key=_natural
    )
    if len(variants) == 1:
        return codec_color(label)
    t = -0.25 + 0.75 * variants.index(label) / (len(variants) - 1)  # darker .. much lighter
    rgb = np.array(to_rgb(codec_color(label)))
    target = np.ones(3) if t > 0 else np.zeros(3)
    return to_hex(rgb + abs(t) * (target - rgb))


def _codec_family(label: str) -> str:
    text = str(label).strip()
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "/" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    ids = []
    for part in parts:
        head = part.split("(", 1)[0].strip().lower()
        if head == "jpeg" and "format=webp" in part.replace(" ", "").lower():
            head = "webp"
        if head not in ids:
            ids.append(head)
    return "/".join(ids)


def _varying_params(labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """The parameter names that differ between one codec's labels ("slicer(max_nmse=0.01)"),
    and per label the text of their values ("0.01"); nothing when a single label."""
    params = []
    for label in labels:
        inner = label[label.find("(") + 1 : -1] if label.endswith(")") else ""
        pairs = [part.partition("=") for part in inner.split(",") if part]
        params.append({name: value for name, _, value in pairs})
    names = list(dict.fromkeys(k for p in params for k in p))
    varying = [k for k in names if len({p.get(k) for p in params}) > 1]
    if len(labels) < 2:
        return [], [""] * len(labels)
    return varying, [",".join(p.get(k, "-") for k in varying) for p in params]


def _series_key(row: Row, vary: bool) -> tuple[Any, str, Any]:
    split = row.get("split")
    return (split, str(row.get("codec", "")), row.get("replicas") if vary else None)


def _series_sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (_split_sort_key(key[0]), _family_sort_key(key[1]), _num(key[2]))


def _group_sort_key(key: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    info = dict(key)
    rest = str([(k, v) for k, v in key if k not in ("split", "codec")])
    return (_split_sort_key(info.get("split")), _family_sort_key(str(info.get("codec", ""))), rest)


def _split_sort_key(split: Any) -> tuple[int, float, str]:
    value = _num(split)
    return (0, value, "") if math.isfinite(value) else (1, 0.0, _split_text(split))


def _family_sort_key(label: str) -> tuple[int, list[Any]]:
    family = _codec_family(label)
    order = list(_CODEC_COLORS)
    return (order.index(family) if family in order else len(order), _natural(label))


def _natural(text: str) -> list[Any]:
    """Sort key reading numbers as numbers ("q=30" < "q=100"; 1e-3 < 1e-2)."""
    import re

    out: list[Any] = []
    for part in re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", text):
        value = _num(part) if part and part[0].isdigit() else math.nan
        out.append((0, value, "") if math.isfinite(value) else (1, 0.0, part))
    return out


def _split_text(split: Any) -> str:
    value = _num(split)
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return "?" if split is None else str(split)


def _key_text(name: str, value: Any) -> str:
    if name == "split":
        return f"split {_split_text(value)}"
    return str(value) if name == "codec" else f"{name}={value}"


def _replicas_text(replicas: Any) -> str:
    return f" · {replicas} replica" + ("" if _num(replicas) == 1 else "s")


def _replicas_vary(rows: Sequence[Row]) -> bool:
    return len({str(r.get("replicas")) for r in rows}) > 1


def _num(value: Any) -> float:
    if value is None or isinstance(value, (str, bytes)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _fmt_num(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def _grouped_positions(splits: Sequence[Any]) -> np.ndarray:
    """x positions of bars in key order, with a gap of one bar between split groups."""
    positions, x = [], 0.0
    for i, split in enumerate(splits):
        if i and split != splits[i - 1]:
            x += 0.6
        positions.append(x)
        x += 1.0
    return np.array(positions)


def _span_decades(values: Iterable[float]) -> bool:
    arr = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    return bool(arr.size) and bool((arr > 0).all()) and arr.max() >= 100 * arr.min()


def _auto_log(ax: Axes, xs: Iterable[float], ys: Iterable[float]) -> None:
    """Log scale on an axis whose values span >= 2 decades; else plain numbers with thousands
    separators (no "1e5" offset text)."""
    for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
        finite = [v for v in values if math.isfinite(v)]
        if _span_decades(finite):
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            _readable_log_ticks(axis)
        elif finite and max(abs(v) for v in finite) >= 1e4:
            axis.set_major_formatter(FuncFormatter(_tick_text))


def _readable_log_ticks(axis: Any) -> None:
    """Plain numbers on a log axis; minor ticks labelled too (2 and 5, or all when the view
    spans under a decade) so a short log axis still has several labels."""

    def minor(value: float, _pos: Any = None) -> str:
        lo, hi = sorted(axis.get_view_interval())
        if lo <= 0 or value <= 0 or hi / lo > 100:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
        return _tick_text(value) if hi / lo < 5 or mantissa in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(_tick_text))
    axis.set_minor_formatter(FuncFormatter(minor))


def _tick_text(value: float, _pos: Any = None) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:g}"


def _new_figure(ncols: int = 1) -> tuple[Figure, list[Axes]]:
    size = (FIGSIZE_IN[0] * (1.45 if ncols > 1 else 1), FIGSIZE_IN[1])
    fig = Figure(figsize=size, layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    return fig, axes


def _no_data(fig: Figure, ax: Axes) -> Figure:
    ax.text(
        0.5,
        0.5,
        "no data",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=14,
        color="#777777",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def _legend(
    fig: Figure,
    axes: Sequence[Axes],
    extra_handles: Sequence[Any] = (),
    extra_labels: Sequence[str] = (),
    *,
    force_outside: bool = False,
) -> None:
    """Legend inside the (first) axes when it has few entries, else below the axes."""
    handles, labels = axes[0].get_legend_handles_labels()
    handles, labels = [*handles, *extra_handles], [*labels, *extra_labels]
    if not handles:
        return
    if len(handles) <= MAX_LEGEND_INSIDE and not force_outside and len(axes) == 1:
        axes[0].legend(handles, labels, fontsize="small", framealpha=0.85)
        return
    longest = max(len(label) for label in labels)
    ncols = max(1, min(len(labels), 5 if longest < 16 else 3 if longest < 32 else 2))
    fig.legend(
        handles, labels, loc="outside lower center", ncols=ncols, fontsize="small", frameon=False
    )
