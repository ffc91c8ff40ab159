"""The rate-distortion figure of codec settings, from ``benchmarks/codec_rd.py``'s records.

``rate_distortion`` only draws: it takes ``rd.json`` records (``codec``, ``tensor``,
``bits_per_element``, ``nmse``, ``max_row_nmse``) and returns a new ``Figure``. One line per
codec id, in its colour (``analysis.style``), through its settings; the parameters that differ
between the settings of one id are named in the legend and their values written by the points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from analysis.plot_base import legend, new_figure, no_data, tick_text
from analysis.style import codec_color, codec_family, family_sort_key, num


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
    fig, axes = new_figure()
    ax = axes[0]
    ax.set_xlabel("rate (bits/element)")
    what = "worst-row NMSE" if distortion == "max_row_nmse" else "NMSE"
    ax.set_ylabel(f"{what} (error energy / signal energy)")
    families, scope = _settings(points, distortion)
    ax.set_title(f"Rate-distortion ({scope})")
    if not families:
        return no_data(fig, ax)
    edge = blended_transform_factory(ax.transData, ax.transAxes)
    for family in sorted(families, key=family_sort_key):
        _draw_family(ax, edge, family, sorted(families[family]))
    if any(d > 0 for f in families.values() for _, d, _ in f):
        ax.set_yscale("log")
    bits_all = [b for f in families.values() for b, _, _ in f]
    if min(bits_all) > 0 and max(bits_all) >= 8 * min(bits_all):  # rates span octaves: log2 x
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(tick_text))
    legend(fig, [ax])
    return fig


Settings = dict[str, list[tuple[float, float, str]]]


def _settings(points: Sequence[Mapping[str, Any]], distortion: str) -> tuple[Settings, str]:
    """Per codec family, its settings as (mean bits, mean distortion, label), and the scope of
    the means (one tensor, or how many)."""
    per_label: dict[str, list[tuple[float, float]]] = {}
    tensors = set()
    for p in points:
        bits, dist = num(p.get("bits_per_element")), num(p.get(distortion))
        if math.isfinite(bits) and math.isfinite(dist) and dist >= 0:
            per_label.setdefault(str(p.get("codec", "?")), []).append((bits, dist))
            tensors.add(str(p.get("tensor", "?")))
    scope = (
        f"on {next(iter(tensors))}" if len(tensors) == 1 else f"mean over {len(tensors)} tensors"
    )
    families: Settings = {}
    for label, pairs in per_label.items():
        bits = float(np.mean([b for b, _ in pairs]))
        dists = np.array([d for _, d in pairs])
        if dists.size == 1 or not (dists > 0).all():
            dist = float(dists.mean())
        else:
            dist = float(np.exp(np.mean(np.log(dists))))
        families.setdefault(codec_family(label), []).append((bits, dist, label))
    return families, scope


def _draw_family(ax: Any, edge: Any, family: str, pts: list[tuple[float, float, str]]) -> None:
    """One codec family's line through its lossy settings, lossless ones on the bottom edge."""
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
