"""Bar figures: uplink volume per codec, the latency breakdown per stage, and a request timeline.

Each function only draws: it takes ``analysis.metrics.sweep_rows``-like rows (or a requests
table, for ``timeline``) and returns a new ``Figure``. Bars of a codec take its colour
(``analysis.style``); a bar never grows wider than ``MAX_BAR_WIDTH`` of its split's slot, so a
single codec draws a bar, not a wall. NaN values are skipped; no data gives "no data".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from analysis.labels import axis_label, compact_number
from analysis.plot_base import (
    Row,
    auto_log,
    column,
    legend,
    mean,
    new_figure,
    no_data,
    replicas_text,
    replicas_vary,
    series_key,
    series_sort_key,
    shaded,
)
from analysis.style import (
    STAGE_COLORS,
    STAGE_NAMES,
    STAGES,
    family_sort_key,
    num,
    split_sort_key,
    split_text,
)
from records.metrics import GROUP_EDGES

#: The widest a bar of ``uplink_per_codec`` gets, as a share of its split's slot (1.0).
MAX_BAR_WIDTH = 0.3


def uplink_per_codec(rows: Sequence[Row]) -> Figure:
    """Bars of uplink bytes per request per codec, grouped by split (the median over a key's
    rows, e.g. its fleet sizes); a second panel of bits per token when rows have it."""
    metrics = ["uplink_bytes_per_request"]
    if any(math.isfinite(num(r.get("uplink_bits_per_token"))) for r in rows):
        metrics.append("uplink_bits_per_token")
    fig, axes = new_figure(ncols=len(metrics))
    drawn = 0
    for ax, metric in zip(axes, metrics, strict=True):
        ax.set_title(f"Uplink per {metric.rsplit('_', 1)[1]} by codec")
        ax.set_xlabel(axis_label("split"))
        ax.set_ylabel(axis_label(metric))
        drawn += _grouped_bars(ax, rows, metric)
    if not drawn:
        return no_data(fig, axes[0])
    legend(fig, axes[:1], force_outside=len(axes) > 1)
    return fig


def stage_bars(rows: Sequence[Row], *, devices: float | None = None) -> Figure:
    """Stacked bars of the mean time per stage, one bar per (split, codec[, replicas]). Each bar
    uses its rows at ``devices``, or when None its largest fleet size with stage data (said in
    the title when common to all bars, else under each bar); several rows there are averaged."""
    fig, axes = new_figure()
    ax = axes[0]
    ax.set_ylabel("mean time per request (s)")
    ax.set_xlabel("split point and codec")
    usable = [r for r in rows if any(math.isfinite(num(r.get(f"{s}_s"))) for s in STAGES)]
    if devices is not None:
        usable = [r for r in usable if num(r.get("devices")) == devices]
    vary = replicas_vary(usable)
    bars: dict[tuple[Any, ...], list[Row]] = {}
    for row in usable:
        bars.setdefault(series_key(row, vary), []).append(row)
    keys = sorted(bars, key=series_sort_key)
    if not keys:
        ax.set_title("Latency breakdown per stage")
        return no_data(fig, ax)
    chosen = [_at_largest_fleet(bars[key]) for key in keys]
    positions = _grouped_positions([k[0] for k in keys])
    sizes = sorted({num(group[0].get("devices")) for group in chosen}, key=str)
    one_size = len(sizes) == 1
    at = f", at {compact_number(sizes[0])} devices" if one_size and math.isfinite(sizes[0]) else ""
    ax.set_title(f"Latency breakdown per stage{at}")
    bottom = _stack_stages(ax, positions, chosen)
    _bar_ticks(ax, positions, keys, chosen, vary=vary, one_size=one_size)
    if bottom.max() > 0:  # the top stack's sticky edge defeats margins: leave room for labels
        ax.set_ylim(0, 1.12 * float(bottom.max()))
    pad = max(0.8, (3.5 - float(positions[-1])) / 2)  # a few bars stay bar-shaped
    ax.set_xlim(-pad, float(positions[-1]) + pad)
    legend(fig, [ax], force_outside=True)
    return fig


def _stack_stages(ax: Any, positions: np.ndarray, chosen: list[list[Row]]) -> np.ndarray:
    """One stacked bar per group of rows: the mean seconds of each stage; the stack heights."""
    bottom = np.zeros(len(chosen))
    for stage in STAGES:
        values = np.array([mean(num(r.get(f"{stage}_s")) for r in g) for g in chosen])
        values = np.nan_to_num(values, nan=0.0)
        ax.bar(
            positions,
            values,
            0.7,
            bottom=bottom,
            color=STAGE_COLORS[stage],
            label=STAGE_NAMES[stage],
            edgecolor="white",
            linewidth=0.5,
        )
        bottom += values
    return bottom


def _bar_ticks(
    ax: Any,
    positions: np.ndarray,
    keys: list[tuple[Any, ...]],
    chosen: list[list[Row]],
    *,
    vary: bool,
    one_size: bool,
) -> None:
    """Tick text per bar (codec, replicas, fleet size) and the split above each group."""
    ticks = []
    for key, group in zip(keys, chosen, strict=True):
        text = key[1] + (replicas_text(key[2]) if vary else "")
        if not one_size:
            text += f" · {compact_number(num(group[0].get('devices')))} dev."
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
            f"split {split_text(split)}",
            transform=top,
            ha="center",
            va="top",
            fontsize=8,
            fontweight="bold",
        )


def timeline(requests: pa.Table, *, max_requests: int = 30) -> Figure:
    """One lane per completed request (the first ``max_requests`` by arrival; tick text
    "request (device -> replica)"), bars coloured by stage over simulated time: device (arrival
    -> uplink start: queue, head, encode), uplink, server wait (dispatch, queue), server compute,
    downlink (``records.metrics.GROUP_EDGES``)."""
    if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
        raise ValueError(f"timeline: max_requests must be an integer >= 1, got {max_requests!r}")
    edges = list(GROUP_EDGES)
    needed = ["request_id", "device_id", "replica_id", "status", *edges]
    missing = [c for c in needed if c not in requests.column_names]
    if missing:
        raise ValueError(
            f"timeline: the requests table lacks column(s) {missing}; expected a "
            "requests.parquet table (records.tables.REQUESTS_SCHEMA): pass Run.requests"
        )
    fig, axes = new_figure()
    ax = axes[0]
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("request (device → replica)")
    if requests.num_rows == 0:
        ax.set_title("Request timeline")
        return no_data(fig, ax)
    times = np.column_stack([column(requests, c) for c in edges])
    completed = pc.fill_null(pc.equal(requests.column("status"), "completed"), False)
    ids = column(requests, "request_id")
    keep = np.flatnonzero(completed.to_numpy(zero_copy_only=False) & np.isfinite(times).all(axis=1))
    keep = keep[np.lexsort((ids[keep], times[keep, 0]))][:max_requests]
    ax.set_title(f"Timeline of the first {keep.size} completed requests")
    if keep.size == 0:
        return no_data(fig, ax)
    lanes = np.arange(keep.size)
    t = times[keep]
    for i, stage in enumerate(STAGES):
        ax.barh(
            lanes,
            t[:, i + 1] - t[:, i],
            left=t[:, i],
            height=0.7,
            color=STAGE_COLORS[stage],
            label=STAGE_NAMES[stage],
        )
    devices, replicas = column(requests, "device_id")[keep], column(requests, "replica_id")[keep]
    ticks = [
        f"{i:.0f} ({d:.0f} → {r:.0f})" for i, d, r in zip(ids[keep], devices, replicas, strict=True)
    ]
    ax.set_yticks(lanes, ticks, fontsize=7 if keep.size > 15 else 8)
    ax.set_ylim(keep.size - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    ax.grid(False, axis="y")
    legend(fig, [ax], force_outside=True)
    return fig


def _grouped_bars(ax: Axes, rows: Sequence[Row], metric: str) -> int:
    """Bars of the median ``metric`` per (split, codec): split groups along x (one slot of
    width 1 each), each codec at a fixed offset inside its group; returns the number of bars."""
    values: dict[tuple[Any, str], list[float]] = {}
    for row in rows:
        v = num(row.get(metric))
        if math.isfinite(v):
            values.setdefault((row.get("split"), str(row.get("codec", ""))), []).append(v)
    if not values:
        return 0
    splits = sorted({k[0] for k in values}, key=split_sort_key)
    codecs = sorted({k[1] for k in values}, key=family_sort_key)
    width = min(0.8 / len(codecs), MAX_BAR_WIDTH)  # a lone bar stays a bar, not a wall
    medians = {k: float(np.median(v)) for k, v in values.items()}
    for j, codec in enumerate(codecs):
        offset = width * (j - (len(codecs) - 1) / 2)
        xs = [i + offset for i, s in enumerate(splits) if (s, codec) in medians]
        ys = [medians[(s, codec)] for s in splits if (s, codec) in medians]
        bars = ax.bar(xs, ys, width * 0.92, color=shaded(codec, codecs), label=codec)
        ax.bar_label(bars, labels=[compact_number(v) for v in ys], fontsize=6, padding=1)
    ax.set_xticks(range(len(splits)), [split_text(s) for s in splits])
    pad = max(0.6, (3.5 - len(splits)) / 2)  # x spans >= 2.5 slots: one split is no wall
    ax.set_xlim(-pad, len(splits) - 1 + pad)
    auto_log(ax, [], list(medians.values()))
    ax.margins(y=0.12)
    return len(medians)


def _at_largest_fleet(rows: list[Row]) -> list[Row]:
    """The rows at the largest finite ``devices`` (all rows when none is finite)."""
    sizes = [num(r.get("devices")) for r in rows]
    finite = [s for s in sizes if math.isfinite(s)]
    largest = max(finite) if finite else math.nan
    return [r for r, s in zip(rows, sizes, strict=True) if s == largest] or rows


def _grouped_positions(splits: Sequence[Any]) -> np.ndarray:
    """x positions of bars in key order, with a gap of one bar between split groups."""
    positions, x = [], 0.0
    for i, split in enumerate(splits):
        if i and split != splits[i - 1]:
            x += 0.6
        positions.append(x)
        x += 1.0
    return np.array(positions)
