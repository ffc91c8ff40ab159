"""Sizing at a latency SLO, from sweep rows: the capacity (largest fleet that meets it) and the
fewest replicas that meet it at each fleet size. (Not named ``capacity``: ``analysis.capacity``
is the function, re-exported by the package.)

Both read rows as ``analysis.metrics.sweep_rows`` makes them (dicts of scalars, one per sweep
point) and group them by the values of ``by``; groups keep the order in which they first
appear. A point meets the SLO when its ``metric`` (``p95_latency_s`` by default) is <= ``slo_s``;
a missing metric (None, NaN) is a miss. Pure functions: no file reading, no plotting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from records.columns import check_slo_s as check_slo_s  # re-exported: defined here first

NAN = float("nan")


@dataclass(frozen=True)
class Capacity:
    """The largest fleet that meets an SLO, for one group of sweep rows. ``status``:
    ``interpolated`` (between the last point that meets it and the first that misses),
    ``at_a_point`` (the last meeting point itself: the metric equals the SLO there, or the next
    point has no value), ``met_at_every_point`` (``devices`` is the largest point: a lower
    bound) or ``missed_at_every_point`` (the smallest point already misses; ``devices`` None)."""

    key: dict[str, Any]
    devices: float | None
    status: str
    slo_s: float


def capacity(
    rows: Sequence[Mapping[str, Any]],
    *,
    slo_s: float,
    metric: str = "p95_latency_s",
    x: str = "devices",
    by: Sequence[str] = ("split", "codec", "replicas"),
) -> list[Capacity]:
    """Per group of ``by`` values (in order of first appearance): walk the points by ``x``;
    the capacity is the largest ``x`` with ``metric <= slo_s`` before the first miss (NaN is a
    miss; points after the first miss do not count), interpolated linearly in log ``x``
    (linear ``x`` when it is not positive) to where the metric crosses ``slo_s``."""
    check_slo_s(slo_s)
    out = []
    for key, group in _groups(rows, by):
        points = sorted((_number(r, x), _number(r, metric)) for r in group)
        xs = [p[0] for p in points]
        if len(set(xs)) < len(xs):
            raise ValueError(
                f"capacity: group {key} has several rows at the same {x} ({xs}); add the "
                f"parameter that tells them apart to by= (now {list(by)})"
            )
        meets = [not math.isnan(m) and m <= slo_s for _, m in points]
        if not meets[0]:
            out.append(Capacity(key, None, "missed_at_every_point", slo_s))
            continue
        if all(meets):
            out.append(Capacity(key, xs[-1], "met_at_every_point", slo_s))
            continue
        miss = meets.index(False)
        (x0, m0), (x1, m1) = points[miss - 1], points[miss]
        if math.isnan(m1) or m0 == slo_s:
            out.append(Capacity(key, x0, "at_a_point", slo_s))
            continue
        frac = (slo_s - m0) / (m1 - m0)
        if x0 > 0:
            devices = math.exp(math.log(x0) + frac * (math.log(x1) - math.log(x0)))
        else:
            devices = x0 + frac * (x1 - x0)
        out.append(Capacity(key, devices, "interpolated", slo_s))
    return out


def replicas_needed(
    rows: Sequence[Mapping[str, Any]],
    *,
    slo_s: float,
    metric: str = "p95_latency_s",
    by: Sequence[str] = ("split", "codec"),
) -> list[dict[str, Any]]:
    """Per group of ``by`` values and fleet size (``devices``, ascending): the fewest
    ``replicas`` among the rows whose ``metric <= slo_s``, ``None`` when none meets it:
    ``{**key, "devices": d, "replicas": r}``."""
    check_slo_s(slo_s)
    out: list[dict[str, Any]] = []
    for key, group in _groups(rows, by):
        best: dict[float, int | None] = {}
        devices_of: dict[float, Any] = {}
        for row in group:
            d = _number(row, "devices")
            devices_of.setdefault(d, row["devices"])
            m = _number(row, metric)
            r = int(_number(row, "replicas"))
            if not math.isnan(m) and m <= slo_s:
                known = best.get(d)
                best[d] = r if known is None else min(known, r)
            else:
                best.setdefault(d, None)
        out += [{**key, "devices": devices_of[d], "replicas": best[d]} for d in sorted(best)]
    return out


def _groups(
    rows: Sequence[Mapping[str, Any]], by: Sequence[str]
) -> list[tuple[dict[str, Any], list[Mapping[str, Any]]]]:
    groups: dict[tuple[str, ...], tuple[dict[str, Any], list[Mapping[str, Any]]]] = {}
    for row in rows:
        key = {name: row.get(name) for name in by}
        ident = tuple(json.dumps(v, sort_keys=True, default=str) for v in key.values())
        groups.setdefault(ident, (key, []))[1].append(row)
    return list(groups.values())


def _number(row: Mapping[str, Any], name: str) -> float:
    if name not in row:
        raise ValueError(
            f"a row lacks {name!r} (it has {sorted(row)[:8]}...); pass rows from sweep_rows or "
            f"choose a key the rows have"
        )
    value = row[name]
    return NAN if value is None else float(value)
