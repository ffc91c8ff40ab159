"""Metrics of runs and sweeps: pure functions on result tables (no file reading, no plotting).

Request metrics take a ``requests`` table with the columns of ``records.tables.REQUESTS_SCHEMA``
(``GENERATE_REQUESTS_SCHEMA`` for ``task: generate``); each function reads only the columns its
docstring names, so tests build small tables by hand. A missing column is a ``ValueError``
naming it; an empty table, or one where nothing completed, gives NaN, never an error.
Definitions (they match ``summary.json``'s, see ``records.summary``):

* latency is ``t_done_s - t_arrival_s`` of completed requests; percentiles are numpy's default
  linear interpolation;
* the stages (``STAGES``) split a completed request's latency at ``t_uplink_start_s``,
  ``t_uplink_end_s``, ``t_server_start_s`` and ``t_server_end_s``, so their means add up to
  ``mean_latency_s``; ``device`` holds the device queue, head and encode, ``server_queue`` any
  dispatch gap plus batching wait;
* rates (throughput, drop, failure, SLO attainment) count every request; a dropped or failed
  request misses every SLO;
* uplink bytes per request average over requests whose uplink finished; device energy over
  every request (dropped ones spent energy too); server busy seconds, agreement and per-token
  metrics over completed requests.

``sweep_rows`` makes one dict of scalars per sweep point; ``analysis.sizing`` (re-exported
here: ``Capacity``, ``capacity``, ``replicas_needed``) reads those rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analysis.load import Run, Sweep
from analysis.sizing import Capacity as Capacity  # re-exported: it was defined here first
from analysis.sizing import capacity as capacity
from analysis.sizing import check_slo_s
from analysis.sizing import replicas_needed as replicas_needed

STAGES = ("device", "uplink", "server_queue", "server_compute", "downlink")
#: the stage boundaries, in order: stage k runs from _BOUNDS[k] to _BOUNDS[k + 1]
_BOUNDS = (
    "t_arrival_s",
    "t_uplink_start_s",
    "t_uplink_end_s",
    "t_server_start_s",
    "t_server_end_s",
    "t_done_s",
)
NAN = float("nan")


def latency(requests: pa.Table) -> dict[str, float]:
    """``p50/p95/p99_latency_s`` and ``mean_latency_s`` of completed requests.
    Reads ``status``, ``t_arrival_s``, ``t_done_s``."""
    latency_s = _latency_s(requests)[_completed(requests)]
    out = {f"p{q}_latency_s": _percentile(latency_s, q) for q in (50, 95, 99)}
    out["mean_latency_s"] = _mean(latency_s)
    return out


def stage_breakdown(requests: pa.Table) -> dict[str, float]:
    """``<stage>_s`` for every stage of ``STAGES``: its mean over completed requests (they add
    up to ``mean_latency_s``). Reads ``status`` and the six boundary times (see ``_BOUNDS``)."""
    done = _completed(requests)
    times = [_column(requests, name)[done] for name in _BOUNDS]
    return {f"{stage}_s": _mean(times[k + 1] - times[k]) for k, stage in enumerate(STAGES)}


def throughput_rps(requests: pa.Table, sim_time_s: float) -> float:
    """Completed requests per simulated second (NaN when ``sim_time_s`` is 0). Reads
    ``status``."""
    done = int(_completed(requests).sum())
    return done / sim_time_s if sim_time_s > 0 else NAN


def slo_attainment(requests: pa.Table, slo_s: float) -> float:
    """Share of ALL requests that completed within ``slo_s`` seconds (drops and failures are
    misses; NaN without requests). Reads ``status``, ``t_arrival_s``, ``t_done_s``."""
    check_slo_s(slo_s)
    if requests.num_rows == 0:
        _require(requests, ("status", "t_arrival_s", "t_done_s"))
        return NAN
    met = _completed(requests) & (_latency_s(requests) <= slo_s)
    return float(met.sum()) / requests.num_rows


def server_utilization(servers: pa.Table, replicas: int, sim_time_s: float) -> float:
    """Total ``busy_s`` of the servers table over ``replicas * sim_time_s`` (NaN when
    ``sim_time_s`` is 0). Reads ``busy_s``."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"replicas must be an integer >= 1, got {replicas!r}")
    busy_s = float(_column(servers, "busy_s", "servers").sum())
    return busy_s / (replicas * sim_time_s) if sim_time_s > 0 else NAN


def server_busy_s_per_request(requests: pa.Table) -> float:
    """Mean ``server_busy_s`` of completed requests. Reads ``status``, ``server_busy_s``."""
    return _mean(_column(requests, "server_busy_s")[_completed(requests)])


def server_busy_s_per_token(requests: pa.Table) -> float:
    """``task: generate``: sum of ``server_busy_s`` over sum of ``new_tokens``, completed
    requests; NaN for infer tables (no ``new_tokens``). Reads ``status``, ``server_busy_s``,
    ``new_tokens``."""
    return _per_token(requests, "server_busy_s", 1.0)


def uplink_bytes_per_request(requests: pa.Table) -> float:
    """Mean ``payload_bytes`` of requests whose uplink finished (``t_uplink_end_s`` not NaN).
    Reads ``t_uplink_end_s``, ``payload_bytes``."""
    sent = ~np.isnan(_column(requests, "t_uplink_end_s"))
    return _mean(_column(requests, "payload_bytes")[sent])


def uplink_bits_per_token(requests: pa.Table) -> float:
    """``task: generate``: 8 x sum of ``payload_bytes`` (prompt, set-up and every step) over
    sum of ``new_tokens``, completed requests; NaN for infer tables. Reads ``status``,
    ``payload_bytes``, ``new_tokens``."""
    return _per_token(requests, "payload_bytes", 8.0)


def device_energy_j_per_request(requests: pa.Table) -> float:
    """Mean ``device_energy_j`` over every request. Reads ``device_energy_j``."""
    return _mean(_column(requests, "device_energy_j"))


def drop_rate(requests: pa.Table) -> float:
    """Share of requests with status ``dropped``. Reads ``status``."""
    return _share(requests, "dropped")


def failure_rate(requests: pa.Table) -> float:
    """Share of requests with status ``failed``. Reads ``status``."""
    return _share(requests, "failed")


def quality(requests: pa.Table) -> dict[str, float]:
    """``mean_agreement`` with the unsplit model over completed requests and ``quality_change
    = 1 - mean_agreement`` (0 = no change). Reads ``status``, ``agreement``."""
    agreement = _mean(_column(requests, "agreement")[_completed(requests)])
    return {"mean_agreement": agreement, "quality_change": 1.0 - agreement}


def token_latency(requests: pa.Table) -> dict[str, float]:
    """``task: generate``: ``p50/p95/p99_ttft_s`` and ``p50/p95/p99_tpot_s`` over completed
    requests (NaN tpot of one-token sequences left out). Reads ``status``, ``ttft_s``,
    ``tpot_s``."""
    done = _completed(requests)
    out: dict[str, float] = {}
    for name in ("ttft_s", "tpot_s"):
        values = _column(requests, name)[done]
        values = values[~np.isnan(values)]
        out.update({f"p{q}_{name}": _percentile(values, q) for q in (50, 95, 99)})
    return out


def run_metrics(run: Run, slo_s: float | None = None) -> dict[str, float]:
    """Every metric above for one run, flattened (``slo_attainment`` only with ``slo_s``;
    ``token_latency``'s keys only for ``task: generate``)."""
    requests, sim_time_s = run.requests, run.sim_time_s
    out = {**latency(requests), **stage_breakdown(requests)}
    out["throughput_rps"] = throughput_rps(requests, sim_time_s)
    if slo_s is not None:
        out["slo_attainment"] = slo_attainment(requests, slo_s)
    out["server_utilization"] = server_utilization(run.servers, run.replicas, sim_time_s)
    per: dict[str, Callable[[pa.Table], float]] = {
        "server_busy_s_per_request": server_busy_s_per_request,
        "server_busy_s_per_token": server_busy_s_per_token,
        "uplink_bytes_per_request": uplink_bytes_per_request,
        "uplink_bits_per_token": uplink_bits_per_token,
        "device_energy_j_per_request": device_energy_j_per_request,
        "drop_rate": drop_rate,
        "failure_rate": failure_rate,
    }
    out.update({key: function(requests) for key, function in per.items()})
    out.update(quality(requests))
    if run.task == "generate":
        out.update(token_latency(requests))
    return out


def codec_label(config: str | Mapping[str, Any]) -> str:
    """A codec config as a short label: the id alone for a bare id or ``{"id": ...}``, else
    the id with the other params as written in the scenario, sorted by name:
    ``slicer(max_nmse=0.001)``. Defaults are not looked up (that would import ``codec``)."""
    if isinstance(config, str):
        return config
    params = {k: v for k, v in config.items() if k != "id"}
    if not params:
        return str(config.get("id"))
    text = ", ".join(f"{k}={_text(params[k])}" for k in sorted(params))
    return f"{config.get('id')}({text})"


def run_labels(run: Run) -> dict[str, Any]:
    """What a run is, as sweep rows and reports label it: ``devices`` (the fleet's total
    count), ``replicas``, ``split`` (an int when every group has the same split, else the
    groups' splits joined by "/", e.g. "4/8"), ``codec`` (``codec_label`` per group, the
    group's own codec or the scenario's, joined by "/" when groups differ) and ``task``."""
    scenario = run.scenario
    groups: list[dict[str, Any]] = scenario.get("fleet") or []
    splits = _distinct([g.get("split") for g in groups])
    codecs = _distinct([codec_label(g.get("codec") or scenario["codec"]) for g in groups])
    return {
        "devices": sum(int(g.get("count", 0)) for g in groups),
        "replicas": run.replicas,
        "split": splits[0] if len(splits) == 1 else "/".join(map(str, splits)),
        "codec": "/".join(codecs),
        "task": run.task,
    }


def sweep_rows(sweep: Sweep, slo_s: float | None = None) -> list[dict[str, Any]]:
    """One dict per complete point, in sweep order: ``point``, the swept params (key = path,
    value decoded), then ``run_labels`` (``devices``, ``replicas``, ``split``, ``codec``,
    ``task``), then ``run_metrics``. The labels win over a swept param of the same name
    (sweeping ``codec`` gives its label)."""
    rows: list[dict[str, Any]] = []
    status = sweep.points.column("status").to_pylist()
    for point, state in zip(sweep.names, status, strict=True):
        if state != "complete":
            continue
        run = sweep.run(point)
        rows.append(
            {"point": point, **sweep.values(point), **run_labels(run), **run_metrics(run, slo_s)}
        )
    return rows


def _distinct(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _require(table: pa.Table, names: Sequence[str], which: str = "requests") -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ValueError(
            f"the {which} table lacks columns {missing}; pass a table with the columns of "
            f"records.tables.{which.upper()}_SCHEMA"
        )


def _column(table: pa.Table, name: str, which: str = "requests") -> np.ndarray:
    """A column as float64 (nulls become NaN)."""
    _require(table, (name,), which)
    values = table.column(name).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _completed(requests: pa.Table) -> np.ndarray:
    return _status_is(requests, "completed")


def _status_is(requests: pa.Table, value: str) -> np.ndarray:
    _require(requests, ("status",))
    mask = pc.fill_null(pc.equal(requests.column("status"), value), False)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _latency_s(requests: pa.Table) -> np.ndarray:
    return _column(requests, "t_done_s") - _column(requests, "t_arrival_s")


def _share(requests: pa.Table, status: str) -> float:
    hits = _status_is(requests, status)
    return float(hits.sum()) / hits.size if hits.size else NAN


def _per_token(requests: pa.Table, name: str, scale: float) -> float:
    if "new_tokens" not in requests.column_names:
        return NAN
    done = _completed(requests)
    tokens = float(_column(requests, "new_tokens")[done].sum())
    return scale * float(_column(requests, name)[done].sum()) / tokens if tokens else NAN


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else NAN


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else NAN
