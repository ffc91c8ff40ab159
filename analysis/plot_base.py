"""What every figure shares: a new figure, the "no data" note, the legend, log axes, the line
style of a series, and ``save``.

Figures use matplotlib's object API (``Figure``, never pyplot state; the Agg backend unless
pyplot is already live). A series of sweep rows is a (split, codec[, replicas]) key: colour from
its codec (shades of the codec colour when several settings of one codec id are drawn), marker
from its split, line style from its replica count. An axis turns logarithmic when its positive
values span >= 2 decades, with plain-number tick labels; ``save`` writes PNG (120 dpi) and SVG
(byte-identical for the same figure).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pyarrow as pa
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis.style import (
    LINESTYLES,
    codec_color,
    codec_family,
    family_sort_key,
    natural_key,
    num,
    split_marker,
    split_sort_key,
)

if "matplotlib.pyplot" not in sys.modules:  # never switch the backend of a live pyplot session
    matplotlib.use("Agg")

Row = Mapping[str, Any]
FIGSIZE_IN = (7.0, 4.5)
MAX_LEGEND_INSIDE = 6


def new_figure(ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure of ``ncols`` axes side by side, major grid on."""
    size = (FIGSIZE_IN[0] * (1.45 if ncols > 1 else 1), FIGSIZE_IN[1])
    fig = Figure(figsize=size, layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
    return fig, axes


def no_data(fig: Figure, ax: Axes) -> Figure:
    """Write "no data" across ``ax``, drop its ticks and return ``fig``."""
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


def legend(
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
    longest = max(len(text) for text in labels)
    ncols = max(1, min(len(labels), 5 if longest < 16 else 3 if longest < 32 else 2))
    fig.legend(
        handles, labels, loc="outside lower center", ncols=ncols, fontsize="small", frameon=False
    )


def auto_log(ax: Axes, xs: Iterable[float], ys: Iterable[float]) -> None:
    """Log scale on an axis whose values span >= 2 decades; else plain numbers with thousands
    separators (no "1e5" offset text)."""
    for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
        finite = [v for v in values if math.isfinite(v)]
        if span_decades(finite):
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            readable_log_ticks(axis)
        elif finite and max(abs(v) for v in finite) >= 1e4:
            axis.set_major_formatter(FuncFormatter(tick_text))


def span_decades(values: Iterable[float]) -> bool:
    """All positive, and the largest at least 100 times the smallest."""
    arr = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    return bool(arr.size) and bool((arr > 0).all()) and arr.max() >= 100 * arr.min()


def readable_log_ticks(axis: Any) -> None:
    """Plain numbers on a log axis; minor ticks labelled too (2 and 5, or all when the view
    spans under a decade) so a short log axis still has several labels."""

    def minor(value: float, _pos: Any = None) -> str:
        lo, hi = sorted(axis.get_view_interval())
        if lo <= 0 or value <= 0 or hi / lo > 100:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
        return tick_text(value) if hi / lo < 5 or mantissa in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(tick_text))
    axis.set_minor_formatter(FuncFormatter(minor))


def tick_text(value: float, _pos: Any = None) -> str:
    """A tick label: "1,000" from a thousand up, else the shortest form ("0.05")."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:g}"


def line_style(
    split: Any,
    codec: str,
    replicas: Any,
    codecs: Sequence[str],
    replica_values: Sequence[Any] = (),
) -> dict[str, Any]:
    """``Axes.plot`` keywords of a series: codec colour (shaded among ``codecs``), split
    marker, line style by the position of ``replicas`` in ``replica_values``."""
    style_index = list(replica_values).index(replicas) if replicas in replica_values else 0
    return {
        "color": shaded(codec, codecs),
        "marker": split_marker(split),
        "linestyle": LINESTYLES[style_index % len(LINESTYLES)],
        "markersize": 6,
        "linewidth": 1.6,
    }


def shaded(label: str, labels: Iterable[str]) -> str:
    """The codec's colour, darker or lighter when several labels of its id are present."""
    family = codec_family(label)
    variants = sorted(
        {lab for lab in labels if codec_family(lab) == family} | {label}, key=natural_key
    )
    if len(variants) == 1:
        return codec_color(label)
    t = -0.25 + 0.75 * variants.index(label) / (len(variants) - 1)  # darker .. much lighter
    rgb = np.array(to_rgb(codec_color(label)))
    target = np.ones(3) if t > 0 else np.zeros(3)
    return to_hex(rgb + abs(t) * (target - rgb))


def series_key(row: Row, vary: bool) -> tuple[Any, str, Any]:
    """(split, codec label, replicas when they ``vary`` else None) of a sweep row."""
    return (row.get("split"), str(row.get("codec", "")), row.get("replicas") if vary else None)


def series_sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (split_sort_key(key[0]), family_sort_key(key[1]), num(key[2]))


def replicas_vary(rows: Sequence[Row]) -> bool:
    return len({str(r.get("replicas")) for r in rows}) > 1


def replicas_text(replicas: Any) -> str:
    return f" · {replicas} replica" + ("" if num(replicas) == 1 else "s")


def mean(values: Iterable[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 (nulls become NaN)."""
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


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
