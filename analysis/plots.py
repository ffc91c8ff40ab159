"""Curves from finished metric rows: scaling curves, replicas needed, and CDFs; the public
face of the figures, re-exporting the bar figures, the rate-distortion figure and ``save``.

Every function only draws: it takes rows (``analysis.metrics.sweep_rows`` dicts,
``analysis.sizing.replicas_needed`` dicts, ``benchmarks/codec_rd.py``'s ``rd.json`` records)
or a requests table and returns a new ``matplotlib.figure.Figure`` (object API, no pyplot
state). Colours are fixed per codec id (colour-blind-safe Okabe-Ito based; variants of one id
are shades of its colour), markers per split point, line styles per replica count
(``analysis.style``); every axis names its unit (``analysis.labels``); an axis turns
logarithmic when its positive values span >= 2 decades; replica counts get integer ticks. NaN
and None values are skipped; no data at all gives a figure saying "no data". ``save`` writes
PNG (120 dpi) and SVG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from analysis.labels import axis_label, short_name
from analysis.plot_base import (
    FIGSIZE_IN,
    MAX_LEGEND_INSIDE,
    Row,
    auto_log,
    legend,
    line_style,
    new_figure,
    no_data,
    readable_log_ticks,
    replicas_text,
    replicas_vary,
    save,
    series_key,
    series_sort_key,
    shaded,
)
from analysis.plots_bars import stage_bars, timeline, uplink_per_codec
from analysis.plots_rd import rate_distortion
from analysis.style import (
    CODEC_COLORS,
    FALLBACK_COLORS,
    STAGES,
    codec_color,
    codec_family,
    family_sort_key,
    num,
    split_marker,
    split_sort_key,
    split_text,
)

__all__ = [
    "FIGSIZE_IN",
    "MAX_LEGEND_INSIDE",
    "STAGES",
    "axis_label",
    "busy_per_request_curve",
    "cdf",
    "codec_color",
    "rate_distortion",
    "replicas_needed_curve",
    "save",
    "scaling_curve",
    "split_marker",
    "stage_bars",
    "timeline",
    "uplink_per_codec",
]


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
    title = f"{short_name(metric)} vs {short_name(x)}"
    return _curve_figure(rows, metric, x, ylabel or axis_label(metric), slo_s, title)


def busy_per_request_curve(rows: Sequence[Row]) -> Figure:
    """Server busy seconds per request vs fleet size; per token instead when every row is a
    ``task: generate`` point (every row has a finite ``server_busy_s_per_token``)."""
    per_token = bool(rows) and all(
        math.isfinite(num(r.get("server_busy_s_per_token"))) for r in rows
    )
    metric = "server_busy_s_per_token" if per_token else "server_busy_s_per_request"
    unit = "token" if per_token else "request"
    title = f"Server busy time per {unit} vs fleet size"
    return _curve_figure(rows, metric, "devices", axis_label(metric), None, title)


def replicas_needed_curve(needed: Sequence[Mapping[str, Any]], *, slo_s: float) -> Figure:
    """Fewest replicas meeting the SLO vs fleet size, one line per (split, codec) key; a point
    where no swept replica count met it is an "x" on the top edge. The count axis has whole
    ticks only, from 0 to above the largest count with the top edge between two ticks (so a
    miss never reads as a count); log (1, 10, 100...) when the counts span two decades."""
    fig, axes = new_figure()
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
        style = line_style(info.get("split"), str(info.get("codec", "")), None, [])
        label = " · ".join(_key_text(k, v) for k, v in key) or "all"
        pts = sorted(
            (d, num(r.get("replicas")))
            for r in groups[key]
            if math.isfinite(d := num(r.get("devices")))
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
        return no_data(fig, ax)
    auto_log(ax, xs_all, ys_all)
    if ax.get_yscale() == "linear":  # whole counts from 0; the top edge (the misses) off-tick
        most = max(ys_all, default=1.0)
        ax.set_ylim(0, math.floor(1.15 * most) + 0.6)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    extra = [Line2D([], [], color="#444444", marker="x", ls="none")] if missed_any else []
    legend(fig, [ax], extra, ["SLO missed at every replica count"] if missed_any else [])
    return fig


def cdf(samples: Mapping[str, Sequence[float]], *, xlabel: str, log_x: bool = False) -> Figure:
    """Empirical CDF per named series (a step line each, NaN skipped, and values <= 0 when
    ``log_x``); codec labels get their codec colours, other names a fixed cycle."""
    fig, axes = new_figure()
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
        known = codec_family(name) in CODEC_COLORS
        color = shaded(name, labels) if known else FALLBACK_COLORS[i % len(FALLBACK_COLORS)]
        ax.step(
            values, fraction, where="post", color=color, lw=1.6, label=f"{name} (n={values.size})"
        )
        drawn += 1
    if not drawn:
        return no_data(fig, ax)
    if log_x:
        ax.set_xscale("log")
        readable_log_ticks(ax.xaxis)
    ax.set_ylim(0, 1.02)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 0.95, 1.0])
    legend(fig, [ax])
    return fig


# ---------------------------------------------------------------------------------- helpers


def _curve_figure(
    rows: Sequence[Row], metric: str, x: str, ylabel: str, slo_s: float | None, title: str
) -> Figure:
    fig, axes = new_figure()
    ax = axes[0]
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    vary = replicas_vary(rows)
    groups: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
    for row in rows:
        xv, yv = num(row.get(x)), num(row.get(metric))
        if math.isfinite(xv) and math.isfinite(yv):
            groups.setdefault(series_key(row, vary), []).append((xv, yv))
    if not groups:
        return no_data(fig, ax)
    codecs = [k[1] for k in groups]
    replica_values = sorted({k[2] for k in groups}, key=num)
    for key in sorted(groups, key=series_sort_key):
        split, codec, replicas = key
        label = f"split {split_text(split)} · {codec}" + (replicas_text(replicas) if vary else "")
        pts = sorted(groups[key])
        ax.plot(
            *zip(*pts, strict=True),
            label=label,
            **line_style(split, codec, replicas if vary else None, codecs, replica_values),
        )
    if slo_s is not None:
        ax.axhline(slo_s, color="#444444", ls="--", lw=1, label=f"SLO {slo_s:g} s")
    xs = [p[0] for pts in groups.values() for p in pts]
    ys = [p[1] for pts in groups.values() for p in pts] + ([slo_s] if slo_s is not None else [])
    auto_log(ax, xs, ys)
    legend(fig, [ax])
    return fig


def _group_sort_key(key: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    info = dict(key)
    rest = str([(k, v) for k, v in key if k not in ("split", "codec")])
    return (split_sort_key(info.get("split")), family_sort_key(str(info.get("codec", ""))), rest)


def _key_text(name: str, value: Any) -> str:
    if name == "split":
        return f"split {split_text(value)}"
    return str(value) if name == "codec" else f"{name}={value}"
