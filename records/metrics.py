"""The one definition of every number a run reports: pure functions on its Arrow tables.

``summary.json`` (``records.summary``), the report and sweep rows (``analysis.metrics``) and the
benchmarks all compute through these functions; nothing else defines a metric. Each function
reads only the columns its docstring names (``records.tables`` schemas), so tests build small
tables by hand; a missing column is a ``ValueError`` naming it. An empty table, or one where
nothing completed, gives NaN, never an error. Values are plain Python floats and ints.

Populations, and why:

* **Stages** (``STAGES``) are the gaps between consecutive ``records.tables.STAGE_TIMES`` in
  lifecycle order, averaged over completed requests, so they add up to ``mean_latency_s``:
  ``device_queue_s`` (arrival to head start), ``head_s``, ``encode_s`` (head end to uplink
  start), ``uplink_s``, ``dispatch_s`` (uplink end to server enqueue: routing, a failed
  replica's lost time; usually 0), ``server_queue_s`` (enqueue to batch start),
  ``server_compute_s`` (batch start to end) and ``downlink_s`` (batch end to done). The coarse
  stages of the report (``STAGE_GROUPS``) are sums of those: ``device_s`` (device queue, head,
  encode), ``uplink_s``, ``server_wait_s`` (dispatch and server queue), ``server_compute_s``,
  ``downlink_s``. For ``task: generate`` the stage columns cover a whole sequence (see
  ``records.tables.GENERATE_REQUEST_FIELDS``): ``server_compute_s`` runs from its prefill step
  to its last step, token round trips included.
* **Latency** is ``t_done_s - t_arrival_s`` of completed requests; percentiles are numpy's
  default linear interpolation. ``throughput_rps`` is completed requests per simulated second.
* **Rates** (drop, failure, SLO attainment) are over every request: a dropped or failed
  request misses every SLO.
* **Uplink bytes** per request (``uplink_bytes_per_request``, ``raw_bytes_per_request``) are
  over requests whose uplink finished (``t_uplink_end_s`` not NaN): those bytes crossed the
  network whatever happened next; ``compression_ratio`` is their raw over their payload bytes.
* **Server time** is the servers table's: ``server_utilization`` is total ``busy_s`` over
  ``replicas x sim_time_s``, ``server_busy_s_per_request`` the same total over completed
  requests and ``server_busy_s_per_token`` over tokens delivered (``tokens``). Work spent on
  requests that later failed or were dropped is charged to those served, so that busy time
  per request = utilisation x replicas / throughput, the identity capacity planning uses.
  The decode pool's figures (``decode_pool_utilization``, ``server_decode_s_per_request``)
  are defined beside them in ``records.server_load``.
* **Energy** per request is over every request (dropped ones spent energy too).
* **Quality and batching** (``mean_agreement``, ``quality_change = 1 - mean_agreement``,
  ``mean_batch_size``) are over completed requests.
* **Tokens** (``task: generate``): ``tokens`` are steps rows, i.e. tokens back on their devices;
  ``tokens_per_s`` over simulated time and per replica. TTFT and TPOT are over completed
  sequences (one-token sequences have no TPOT). ``uplink_bits_per_token`` is 8 x the
  completed sequences' ``payload_bytes`` (prompt, set-up and every step) over their
  ``new_tokens``: bits per token x tokens per second is the uplink bit rate.
  ``prompt_payload_bytes_mean`` is over step-0 rows, ``step_payload_bytes_mean`` and ``_var``
  over decode steps (step >= 1); ``mean_running_batch`` is the servers' tokens over their steps
  (``batches``); ``share_matching_32`` is the share of completed sequences whose first
  min(32, new_tokens) greedy tokens equal the unsplit model's, ``mean_tokens_matching`` their
  mean matching prefix; ``kv_used_max_bytes`` the most KV memory any replica reserved.

``run_figures`` is every figure above for one run, in one flat dict (``request_figures`` and,
for ``task: generate``, ``token_figures``); ``reason_counts`` the counts of drops and failures
by reason (nested, so kept apart). Column reading and populations: ``records.columns``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from records.columns import (
    NAN,
    check_replicas,
    check_sim_time_s,
    check_slo_s,
    column,
    completed,
    distribution,
    latency_s,
    mean,
    ratio,
    require,
    status_is,
    uplink_done,
)
from records.server_load import (
    decode_pool_utilization,
    server_busy_s,
    server_busy_s_per_request,
    server_decode_s_per_request,
    server_utilization,
)
from records.tables import STAGE_TIMES

__all__ = [
    "decode_pool_utilization",
    "server_busy_s",
    "server_busy_s_per_request",
    "server_decode_s_per_request",
    "server_utilization",
]

Figures = dict[str, float | int]

_STAGE_NAMES = (
    "device_queue_s",
    "head_s",
    "encode_s",
    "uplink_s",
    "dispatch_s",
    "server_queue_s",
    "server_compute_s",
    "downlink_s",
)
#: stage -> (start column, end column), in lifecycle order: consecutive STAGE_TIMES.
STAGES: dict[str, tuple[str, str]] = dict(
    zip(_STAGE_NAMES, itertools.pairwise(STAGE_TIMES), strict=True)
)
#: the report's coarse stages -> the STAGES they sum, in lifecycle order.
STAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "device_s": ("device_queue_s", "head_s", "encode_s"),
    "uplink_s": ("uplink_s",),
    "server_wait_s": ("dispatch_s", "server_queue_s"),
    "server_compute_s": ("server_compute_s",),
    "downlink_s": ("downlink_s",),
}
#: the times the coarse stages start at, then the last one's end: coarse stage k runs from
#: GROUP_EDGES[k] to GROUP_EDGES[k + 1]
GROUP_EDGES: tuple[str, ...] = (
    *(STAGES[parts[0]][0] for parts in STAGE_GROUPS.values()),
    STAGES[_STAGE_NAMES[-1]][1],
)
MATCH_TOKENS = 32  # share_matching_32 compares this many leading tokens at most


# -- requests: counts, latency, stages ----------------------------------------------------------
def counts(requests: pa.Table) -> Figures:
    """``requests``, ``completed``, ``dropped``, ``drop_rate``, ``failed``, ``failure_rate``
    (rates over every request). Reads ``status``."""
    n = requests.num_rows
    dropped = int(status_is(requests, "dropped").sum())
    failed = int(status_is(requests, "failed").sum())
    return {
        "requests": n,
        "completed": int(completed(requests).sum()),
        "dropped": dropped,
        "drop_rate": ratio(dropped, n),
        "failed": failed,
        "failure_rate": ratio(failed, n),
    }


def latency(requests: pa.Table) -> dict[str, float]:
    """``p50/p95/p99_latency_s`` and ``mean_latency_s`` of completed requests. Reads
    ``status``, ``t_arrival_s``, ``t_done_s``."""
    return distribution(latency_s(requests)[completed(requests)], "latency_s")


def stage_means(requests: pa.Table) -> dict[str, float]:
    """Every stage of ``STAGES``: its mean over completed requests (they add up to
    ``mean_latency_s``). Reads ``status`` and every ``STAGE_TIMES`` column."""
    done = completed(requests)
    return {
        stage: mean(column(requests, end)[done] - column(requests, start)[done])
        for stage, (start, end) in STAGES.items()
    }


def stage_groups(requests: pa.Table) -> dict[str, float]:
    """Every coarse stage of ``STAGE_GROUPS``: the sum of its stages' means (they too add up to
    ``mean_latency_s``). Reads what ``stage_means`` reads."""
    means = stage_means(requests)
    return {group: math.fsum(means[s] for s in parts) for group, parts in STAGE_GROUPS.items()}


def throughput_rps(requests: pa.Table, sim_time_s: float) -> float:
    """Completed requests per simulated second (NaN when ``sim_time_s`` is 0). Reads
    ``status``."""
    return int(completed(requests).sum()) / sim_time_s if sim_time_s > 0 else NAN


def slo_attainment(requests: pa.Table, slo_s: float) -> float:
    """Share of every request that completed within ``slo_s`` seconds (drops and failures miss;
    NaN without requests). Reads ``status``, ``t_arrival_s``, ``t_done_s``."""
    check_slo_s(slo_s)
    met = completed(requests) & (latency_s(requests) <= slo_s)
    return ratio(float(met.sum()), requests.num_rows)


def drop_rate(requests: pa.Table) -> float:
    """Share of requests with status ``dropped``. Reads ``status``."""
    return float(counts(requests)["drop_rate"])


def failure_rate(requests: pa.Table) -> float:
    """Share of requests with status ``failed``. Reads ``status``."""
    return float(counts(requests)["failure_rate"])


# -- requests: bytes, energy, quality -----------------------------------------------------------
def uplink_bytes_per_request(requests: pa.Table) -> float:
    """Mean ``payload_bytes`` of requests whose uplink finished. Reads ``t_uplink_end_s``,
    ``payload_bytes``."""
    return mean(column(requests, "payload_bytes")[uplink_done(requests)])


def raw_bytes_per_request(requests: pa.Table) -> float:
    """Mean ``raw_bytes`` of requests whose uplink finished. Reads ``t_uplink_end_s``,
    ``raw_bytes``."""
    return mean(column(requests, "raw_bytes")[uplink_done(requests)])


def compression_ratio(requests: pa.Table) -> float:
    """Raw over payload bytes of requests whose uplink finished (NaN when nothing was sent).
    Reads ``t_uplink_end_s``, ``raw_bytes``, ``payload_bytes``."""
    sent = uplink_done(requests)
    payload = float(column(requests, "payload_bytes")[sent].sum())
    return ratio(float(column(requests, "raw_bytes")[sent].sum()), payload)


def device_energy_j_per_request(requests: pa.Table) -> float:
    """Mean ``device_energy_j`` over every request. Reads ``device_energy_j``."""
    return mean(column(requests, "device_energy_j"))


def radio_energy_j_per_request(requests: pa.Table) -> float:
    """Mean ``radio_energy_j`` over every request; NaN for tables written before the column
    existed. Reads ``radio_energy_j``."""
    if "radio_energy_j" not in requests.column_names:
        return NAN
    return mean(column(requests, "radio_energy_j"))


def quality(requests: pa.Table) -> dict[str, float]:
    """``mean_agreement`` with the unsplit model over completed requests and ``quality_change
    = 1 - mean_agreement`` (0 = no change). Reads ``status``, ``agreement``."""
    agreement = mean(column(requests, "agreement")[completed(requests)])
    return {"mean_agreement": agreement, "quality_change": 1.0 - agreement}


def mean_batch_size(requests: pa.Table) -> float:
    """Mean ``batch_size`` of completed requests. Reads ``status``, ``batch_size``."""
    return mean(column(requests, "batch_size")[completed(requests)])


def reason_counts(requests: pa.Table) -> dict[str, dict[str, int]]:
    """``{"drops_by_reason": {reason: count}, "failures_by_reason": {reason: count}}`` over
    dropped and failed requests, reasons sorted. Reads ``status``, ``reason``."""
    require(requests, ("status", "reason"))
    out: dict[str, dict[str, int]] = {}
    for key, status in (("drops_by_reason", "dropped"), ("failures_by_reason", "failed")):
        rows = requests.filter(status_is(requests, status))
        found = pc.value_counts(pc.fill_null(rows.column("reason"), "")).to_pylist()
        pairs = sorted((str(c["values"]), int(c["counts"])) for c in found)
        out[key] = dict(pairs)
    return out


# -- the run ------------------------------------------------------------------------------------
def request_figures(
    requests: pa.Table,
    servers: pa.Table,
    *,
    replicas: int,
    sim_time_s: float,
    decode_cores: int = 0,
) -> Figures:
    """Every figure of a run from its requests and servers tables (any task), in summary
    order: counts, latency, throughput, servers, decode pool (``decode_cores``: its cores, 0
    when the accelerators decode), bytes, energy, quality, stages."""
    check_replicas(replicas)
    check_sim_time_s(sim_time_s)
    out: Figures = {**counts(requests), **latency(requests)}
    out.update(
        throughput_rps=throughput_rps(requests, sim_time_s),
        server_utilization=server_utilization(servers, replicas, sim_time_s),
        server_busy_s_per_request=server_busy_s_per_request(requests, servers),
        decode_pool_utilization=decode_pool_utilization(requests, decode_cores, sim_time_s),
        server_decode_s_per_request=server_decode_s_per_request(requests),
        uplink_bytes_per_request=uplink_bytes_per_request(requests),
        raw_bytes_per_request=raw_bytes_per_request(requests),
        compression_ratio=compression_ratio(requests),
        device_energy_j_per_request=device_energy_j_per_request(requests),
        radio_energy_j_per_request=radio_energy_j_per_request(requests),
        **quality(requests),
        mean_batch_size=mean_batch_size(requests),
    )
    out.update(stage_means(requests))
    out.update(stage_groups(requests))
    return out


def run_figures(
    requests: pa.Table,
    servers: pa.Table,
    steps: pa.Table | None = None,
    *,
    replicas: int,
    sim_time_s: float,
    decode_cores: int = 0,
) -> Figures:
    """Every figure of a run: ``request_figures``, then for a ``task: generate`` run (``steps``
    given) ``token_figures``."""
    out = request_figures(
        requests, servers, replicas=replicas, sim_time_s=sim_time_s, decode_cores=decode_cores
    )
    if steps is not None:
        out.update(
            token_figures(requests, steps, servers, replicas=replicas, sim_time_s=sim_time_s)
        )
    return out


# -- task: generate -----------------------------------------------------------------------------
def token_latency(requests: pa.Table) -> dict[str, float]:
    """``p50/p95/p99_ttft_s``, ``mean_ttft_s`` and the same for ``tpot_s``, over completed
    sequences (one-token ones have no TPOT). Reads ``status``, ``ttft_s``, ``tpot_s``."""
    done = completed(requests)
    return {
        **distribution(column(requests, "ttft_s")[done], "ttft_s"),
        **distribution(column(requests, "tpot_s")[done], "tpot_s"),
    }


def tokens(steps: pa.Table) -> int:
    """Tokens back on their devices: the rows of the steps table. Reads nothing."""
    return int(steps.num_rows)


def uplink_bits_per_token(requests: pa.Table) -> float:
    """8 x the ``payload_bytes`` of completed sequences over their ``new_tokens``. Reads
    ``status``, ``payload_bytes``, ``new_tokens``."""
    done = completed(requests)
    sent = float(column(requests, "payload_bytes")[done].sum())
    return ratio(8.0 * sent, float(column(requests, "new_tokens")[done].sum()))


def server_busy_s_per_token(servers: pa.Table, steps: pa.Table) -> float:
    """Total ``busy_s`` of the servers over ``tokens``. Reads ``busy_s``."""
    return ratio(server_busy_s(servers), tokens(steps))


def step_payloads(steps: pa.Table) -> dict[str, float]:
    """``prompt_payload_bytes_mean`` (step 0), ``step_payload_bytes_mean`` and
    ``step_payload_bytes_var`` (decode steps, step >= 1). Reads ``step``, ``payload_bytes``."""
    step, payload = column(steps, "step", "steps"), column(steps, "payload_bytes", "steps")
    frames = payload[step >= 1]
    return {
        "prompt_payload_bytes_mean": mean(payload[step == 0]),
        "step_payload_bytes_mean": mean(frames),
        "step_payload_bytes_var": float(frames.var()) if frames.size else NAN,
    }


def mean_running_batch(servers: pa.Table) -> float:
    """The servers' ``tokens`` over their ``batches`` (steps). Reads ``tokens``, ``batches``."""
    produced = float(column(servers, "tokens", "servers").sum())
    return ratio(produced, float(column(servers, "batches", "servers").sum()))


def token_matching(requests: pa.Table) -> dict[str, float]:
    """``share_matching_32`` and ``mean_tokens_matching`` over completed sequences. Reads
    ``status``, ``new_tokens``, ``tokens_matching``."""
    done = completed(requests)
    matching = column(requests, "tokens_matching")[done]
    enough = matching >= np.minimum(column(requests, "new_tokens")[done], MATCH_TOKENS)
    return {
        "share_matching_32": mean(enough.astype(np.float64)),
        "mean_tokens_matching": mean(matching),
    }


def kv_used_max_bytes(servers: pa.Table) -> float:
    """The most KV memory any replica reserved (0.0 without windows). Reads
    ``kv_used_max_bytes``."""
    values = column(servers, "kv_used_max_bytes", "servers")
    return float(values.max()) if values.size else 0.0


def token_figures(
    requests: pa.Table, steps: pa.Table, servers: pa.Table, *, replicas: int, sim_time_s: float
) -> Figures:
    """Every ``task: generate`` figure, in summary order."""
    check_replicas(replicas)
    check_sim_time_s(sim_time_s)
    n_tokens = tokens(steps)
    per_s = ratio(n_tokens, sim_time_s)
    return {
        **token_latency(requests),
        "tokens": n_tokens,
        "tokens_per_s": per_s,
        "tokens_per_s_per_replica": per_s / replicas,
        "uplink_bits_per_token": uplink_bits_per_token(requests),
        **step_payloads(steps),
        "server_busy_s_per_token": server_busy_s_per_token(servers, steps),
        "mean_running_batch": mean_running_batch(servers),
        **token_matching(requests),
        "kv_used_max_bytes": kv_used_max_bytes(servers),
    }
