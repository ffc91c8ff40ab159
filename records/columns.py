"""Reading result tables for the metrics: columns as float64, status masks, the populations the
metrics average over, and the argument checks. Every helper names the table and the missing
column in its ``ValueError``; none of them defines a metric (``records.metrics`` does)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NAN = float("nan")


def require(table: pa.Table, names: Sequence[str], which: str = "requests") -> None:
    """Raise ``ValueError`` naming the columns of ``names`` that ``table`` lacks."""
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ValueError(
            f"the {which} table lacks columns {missing}; pass a table with the columns of "
            f"records.tables.{which.upper()}_SCHEMA"
        )


def column(table: pa.Table, name: str, which: str = "requests") -> np.ndarray:
    """A column as float64 (nulls become NaN)."""
    require(table, (name,), which)
    values = table.column(name).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def status_is(requests: pa.Table, value: str) -> np.ndarray:
    """Boolean mask of the rows whose ``status`` is ``value`` (nulls are not)."""
    require(requests, ("status",))
    mask = pc.fill_null(pc.equal(requests.column("status"), value), False)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def completed(requests: pa.Table) -> np.ndarray:
    """Rows with status ``completed``."""
    return status_is(requests, "completed")


def uplink_done(requests: pa.Table) -> np.ndarray:
    """Rows whose uplink finished (``t_uplink_end_s`` not NaN)."""
    return ~np.isnan(column(requests, "t_uplink_end_s"))


def latency_s(requests: pa.Table) -> np.ndarray:
    """``t_done_s - t_arrival_s`` of every row (NaN where not done)."""
    return column(requests, "t_done_s") - column(requests, "t_arrival_s")


def mean(values: np.ndarray) -> float:
    """The mean, NaN for no values."""
    return float(values.mean()) if values.size else NAN


def percentile(values: np.ndarray, q: float) -> float:
    """numpy's default (linear) percentile, NaN for no values."""
    return float(np.percentile(values, q)) if values.size else NAN


def distribution(values: np.ndarray, name: str) -> dict[str, float]:
    """``p50/p95/p99_<name>`` and ``mean_<name>`` of ``values``, NaN ones left out."""
    values = values[~np.isnan(values)]
    out = {f"p{q}_{name}": percentile(values, q) for q in (50, 95, 99)}
    out[f"mean_{name}"] = mean(values)
    return out


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0."""
    return numerator / denominator if denominator else NAN


def check_replicas(replicas: int) -> None:
    """Raise ``ValueError`` unless ``replicas`` is an integer >= 1."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"replicas must be an integer >= 1, got {replicas!r}")


def check_sim_time_s(sim_time_s: float) -> None:
    """Raise ``ValueError`` unless ``sim_time_s`` is a finite number of seconds >= 0."""
    if not isinstance(sim_time_s, (int, float)) or not math.isfinite(sim_time_s) or sim_time_s < 0:
        raise ValueError(
            f"sim_time_s must be a finite number >= 0 (the simulated seconds the run covered), "
            f"got {sim_time_s!r}"
        )


def check_slo_s(slo_s: float) -> None:
    """Raise ``ValueError`` unless ``slo_s`` is a finite number of seconds > 0."""
    if not isinstance(slo_s, (int, float)) or not math.isfinite(slo_s) or slo_s <= 0:
        raise ValueError(f"slo_s must be a finite number of seconds > 0, got {slo_s!r}")
