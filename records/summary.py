"""Headline metrics of one run, computed from its ``requests`` and ``servers`` tables.

``summarize`` returns plain Python ints and floats (JSON-serialisable; NaN where a metric has
no data, e.g. latency percentiles of a run where nothing completed), never raising on empty
tables. Definitions:

* latency is ``t_done_s - t_arrival_s`` over completed requests; percentiles use numpy's
  default linear interpolation;
* stage means are over completed requests, so ``device_queue_s + head_s + encode_s + uplink_s
  + dispatch_s + server_queue_s + server_s + downlink_s == mean_latency_s`` (``dispatch_s`` is
  the gap between the uplink's end and the server enqueue, e.g. routing; usually 0);
* bytes per request are over requests whose uplink finished (``t_uplink_end_s`` not NaN), and
  ``compression_ratio`` is their total raw bytes over their total payload bytes;
* ``server_utilization`` is the servers table's total ``busy_s`` over ``replicas *
  sim_time_s`` and ``server_busy_s_per_request`` the same total over completed requests;
* ``device_energy_j_per_request`` averages over every request (dropped ones spent energy too);
* a request ends ``completed``, ``dropped`` (``drop_rate``) or ``failed`` (its real compute
  failed: ``failure_rate``); rates are over all requests;
* ``replica_failures`` and ``replica_down_s`` (replica-seconds down) are passed in from the
  simulation and present only when given.

``summarize_generation`` adds the metrics of ``task: generate`` runs, from the requests'
generate columns and ``steps.parquet`` (over completed sequences unless said otherwise):

* ``p50/p95/p99_ttft_s``, ``mean_ttft_s`` and the same for ``tpot_s``;
* ``tokens``: tokens that reached their devices; ``tokens_per_s`` over simulated time and
  ``tokens_per_s_per_replica``;
* ``uplink_bits_per_token`` (a sequence's uplink bytes, prompt and set-up included, x 8 over
  its new tokens, averaged), ``step_payload_bytes_mean`` and ``step_payload_bytes_var`` over
  the decode steps' frames (step >= 1, every sequence), and ``prompt_payload_bytes_mean``;
* ``server_busy_s_per_token`` (the servers' busy time over tokens produced) and
  ``mean_running_batch`` (tokens over steps, the mean batch of a step);
* ``mean_agreement`` is the teacher-forced next-token top-1 agreement;
  ``share_matching_32`` the share of sequences whose first min(32, new_tokens) greedy tokens
  equal the unsplit model's, and ``mean_tokens_matching`` the mean matching prefix;
* ``kv_used_max_bytes``: the most KV memory any replica reserved.

``reason_counts`` gives ``drops_by_reason`` and ``failures_by_reason``: reason -> count dicts
(sorted by reason), kept apart from ``summarize`` so that its values stay scalars (one column
each in ``sweep.parquet``).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: stage name -> (start column, end column); means over completed requests.
STAGES: dict[str, tuple[str, str]] = {
    "device_queue_s": ("t_arrival_s", "t_head_start_s"),
    "head_s": ("t_head_start_s", "t_head_end_s"),
    "encode_s": ("t_head_end_s", "t_uplink_start_s"),
    "uplink_s": ("t_uplink_start_s", "t_uplink_end_s"),
    "dispatch_s": ("t_uplink_end_s", "t_server_enqueue_s"),
    "server_queue_s": ("t_server_enqueue_s", "t_server_start_s"),
    "server_s": ("t_server_start_s", "t_server_end_s"),
    "downlink_s": ("t_server_end_s", "t_done_s"),
}

_REQUEST_COLUMNS = (
    "status",
    "t_arrival_s",
    "t_done_s",
    "raw_bytes",
    "payload_bytes",
    "device_energy_j",
    "agreement",
    "batch_size",
    *sorted({c for pair in STAGES.values() for c in pair}),
)

NAN = float("nan")


def summarize(
    requests: pa.Table,
    servers: pa.Table,
    *,
    replicas: int,
    sim_time_s: float,
    replica_failures: int | None = None,
    replica_down_s: float | None = None,
) -> dict[str, float | int]:
    """The run's headline metrics (see the module docstring for each definition)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"replicas must be an integer >= 1, got {replicas!r}")
    if not math.isfinite(sim_time_s) or sim_time_s < 0:
        raise ValueError(
            f"sim_time_s must be a finite number >= 0 (the simulated seconds the run covered), "
            f"got {sim_time_s!r}"
        )
    _require(requests, _REQUEST_COLUMNS, "requests")
    _require(servers, ("busy_s",), "servers")

    status = requests.column("status")
    done = _is(status, "completed")
    n_requests, n_completed = requests.num_rows, int(done.sum())
    n_dropped = int(_is(status, "dropped").sum())
    n_failed = int(_is(status, "failed").sum())

    def col(name: str) -> np.ndarray:
        return requests.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

    latency_s = (col("t_done_s") - col("t_arrival_s"))[done]
    sent = ~np.isnan(col("t_uplink_end_s"))
    raw, payload = col("raw_bytes")[sent], col("payload_bytes")[sent]
    busy_s = float(servers.column("busy_s").to_numpy(zero_copy_only=False).sum())
    out: dict[str, float | int] = {
        "requests": n_requests,
        "completed": n_completed,
        "dropped": n_dropped,
        "drop_rate": n_dropped / n_requests if n_requests else NAN,
        "failed": n_failed,
        "failure_rate": n_failed / n_requests if n_requests else NAN,
        "p50_latency_s": _percentile(latency_s, 50),
        "p95_latency_s": _percentile(latency_s, 95),
        "p99_latency_s": _percentile(latency_s, 99),
        "mean_latency_s": _mean(latency_s),
        "throughput_rps": n_completed / sim_time_s if sim_time_s > 0 else NAN,
        "server_utilization": busy_s / (replicas * sim_time_s) if sim_time_s > 0 else NAN,
        "uplink_bytes_per_request": _mean(payload),
        "raw_bytes_per_request": _mean(raw),
        "compression_ratio": float(raw.sum() / payload.sum()) if payload.sum() > 0 else NAN,
        "server_busy_s_per_request": busy_s / n_completed if n_completed else NAN,
        "device_energy_j_per_request": _mean(col("device_energy_j")),
        "radio_energy_j_per_request": _mean(col("radio_energy_j"))
        if "radio_energy_j" in requests.column_names
        else NAN,
        "mean_agreement": _mean(col("agreement")[done]),
        "mean_batch_size": _mean(col("batch_size")[done]),
    }
    for stage, (start, end) in STAGES.items():
        out[stage] = _mean((col(end) - col(start))[done])
    if replica_failures is not None:
        out["replica_failures"] = int(replica_failures)
    if replica_down_s is not None:
        out["replica_down_s"] = float(replica_down_s)
    return out


def reason_counts(requests: pa.Table) -> dict[str, dict[str, int]]:
    """``{"drops_by_reason": {reason: count}, "failures_by_reason": {reason: count}}`` over
    dropped and failed requests, reasons sorted; plain dicts of str -> int (JSON-ready)."""
    _require(requests, ("status", "reason"), "requests")
    out: dict[str, dict[str, int]] = {}
    for key, status in (("drops_by_reason", "dropped"), ("failures_by_reason", "failed")):
        rows = requests.filter(_is(requests.column("status"), status))
        counts = pc.value_counts(pc.fill_null(rows.column("reason"), "")).to_pylist()
        out[key] = {str(c["values"]): int(c["counts"]) for c in sorted(counts, key=_by_value)}
    return out


def _by_value(count: dict[str, object]) -> str:
    return str(count["values"])


def _require(table: pa.Table, names: tuple[str, ...], which: str) -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ValueError(
            f"the {which} table lacks columns {missing}; pass a table with the schema of "
            f"records.tables.{which.upper()}_SCHEMA"
        )


def _is(column: pa.ChunkedArray, value: str) -> np.ndarray:
    """Boolean mask of rows equal to ``value`` (nulls count as not equal)."""
    mask = pc.fill_null(pc.equal(column, value), False)
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else NAN


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else NAN


def summarize_generation(
    requests: pa.Table, steps: pa.Table, servers: pa.Table, *, replicas: int, sim_time_s: float
) -> dict[str, float | int]:
    """The ``task: generate`` metrics (see the module docstring)."""
    _require(requests, ("status", "ttft_s", "tpot_s", "new_tokens", "tokens_matching"), "requests")
    _require(steps, ("step", "payload_bytes"), "steps")
    _require(servers, ("busy_s", "batches", "tokens", "kv_used_max_bytes"), "servers")
    done = _is(requests.column("status"), "completed")

    def col(table: pa.Table, name: str) -> np.ndarray:
        values = table.column(name).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64)

    ttft_s, tpot_s = col(requests, "ttft_s")[done], col(requests, "tpot_s")[done]
    tpot_s = tpot_s[~np.isnan(tpot_s)]
    step = col(steps, "step")
    payload = col(steps, "payload_bytes")
    frames, prompts = payload[step >= 1], payload[step == 0]
    busy_s = float(col(servers, "busy_s").sum())
    produced = float(col(servers, "tokens").sum())
    n_steps = float(col(servers, "batches").sum())
    tokens = int(steps.num_rows)
    new_tokens = col(requests, "new_tokens")[done]
    matching = col(requests, "tokens_matching")[done]
    out: dict[str, float | int] = {}
    for name, values in (("ttft_s", ttft_s), ("tpot_s", tpot_s)):
        for q in (50, 95, 99):
            out[f"p{q}_{name}"] = _percentile(values, q)
        out[f"mean_{name}"] = _mean(values)
    kv_max = col(servers, "kv_used_max_bytes")
    out.update(
        tokens=tokens,
        tokens_per_s=tokens / sim_time_s if sim_time_s > 0 else NAN,
        tokens_per_s_per_replica=tokens / sim_time_s / replicas if sim_time_s > 0 else NAN,
        uplink_bits_per_token=_mean(col(requests, "uplink_bits_per_token")[done]),
        prompt_payload_bytes_mean=_mean(prompts),
        step_payload_bytes_mean=_mean(frames),
        step_payload_bytes_var=float(frames.var()) if frames.size else NAN,
        server_busy_s_per_token=busy_s / produced if produced else NAN,
        mean_running_batch=produced / n_steps if n_steps else NAN,
        share_matching_32=_mean((matching >= np.minimum(new_tokens, 32)).astype(np.float64)),
        mean_tokens_matching=_mean(matching),
        kv_used_max_bytes=float(kv_max.max()) if kv_max.size else 0.0,
    )
    return out
