"""``records.metrics`` and ``records.summary`` on small hand-made tables, checked against answers
computed by hand in comments."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pyarrow as pa
import pytest

from records import metrics as m
from records.metrics import STAGE_GROUPS, STAGES
from records.summary import summarize
from records.tables import (
    GENERATE_REQUESTS_SCHEMA,
    GENERATE_SERVERS_SCHEMA,
    REQUESTS_SCHEMA,
    SERVERS_SCHEMA,
    STAGE_TIMES,
    STEPS_SCHEMA,
)

NAN = float("nan")
STAGE_COLUMNS = list(STAGE_TIMES)


def request(times: list[float], status: str = "completed", **fields: Any) -> dict[str, Any]:
    """One row; ``times`` are the stage times in schema order, NaN-padded when short."""
    row: dict[str, Any] = {
        "run_id": "r",
        "request_id": 0,
        "device_id": 0,
        "group": "g",
        "model": "m",
        "split": 3,
        "codec": "slicer",
        "input_id": 0,
        "replica_id": 0 if status == "completed" else -1,
        "raw_bytes": 1000,
        "payload_bytes": 100,
        "result_bytes": 4,
        "batch_size": 1 if status == "completed" else 0,
        "server_busy_s": 0.0,
        "device_energy_j": 1.0,
        "agreement": 1.0 if status == "completed" else NAN,
        "status": status,
        "reason": "" if status == "completed" else "queue_full",
    }
    padded = times + [NAN] * (len(STAGE_COLUMNS) - len(times))
    row.update(zip(STAGE_COLUMNS, padded, strict=True))
    row.update(fields)
    return row


def requests_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA)


def servers_table(busy_s: list[float]) -> pa.Table:
    n = len(busy_s)
    return pa.table(
        {
            "run_id": ["r"] * n,
            "replica_id": pa.array(range(n), pa.int32()),
            "window_start_s": [0.0] * n,
            "window_end_s": [10.0] * n,
            "busy_s": busy_s,
            "batches": [1] * n,
            "requests": [1] * n,
            "dropped": [0] * n,
            "queue_len_max": [0] * n,
        },
        schema=SERVERS_SCHEMA,
    )


# arrival, head start, head end, uplink start, uplink end, enqueue, server start/end, done
A = [0.0, 0.1, 0.3, 0.4, 1.4, 1.4, 1.6, 2.0, 2.0]  # latency 2.0
B = [1.0, 1.0, 1.2, 1.3, 2.3, 2.5, 2.5, 2.9, 3.0]  # latency 2.0, dispatch 0.2
C = [2.0, 2.0, 2.2, 2.3, 3.3, 3.3, 3.6, 4.0, 6.0]  # latency 4.0
D = [3.0, 3.0, 3.2, 3.3, 4.3, 4.3]  # dropped at the server queue after its uplink
E = [4.0]  # dropped on the device


def table() -> pa.Table:
    return requests_table(
        [
            request(A, agreement=1.0, batch_size=1, device_energy_j=2.0),
            request(B, agreement=0.5, batch_size=2, device_energy_j=2.0),
            request(C, agreement=0.0, batch_size=3, device_energy_j=2.0),
            request(D, "dropped", payload_bytes=300, raw_bytes=1200, device_energy_j=2.0),
            request(E, "dropped", payload_bytes=999, raw_bytes=999, device_energy_j=0.0),
        ]
    )


def test_headline_metrics_match_hand_computed_values() -> None:
    got = summarize(table(), servers_table([1.0, 2.0]), replicas=2, sim_time_s=10.0)
    assert (got["requests"], got["completed"], got["dropped"]) == (5, 3, 2)
    assert got["drop_rate"] == pytest.approx(0.4)
    assert got["p50_latency_s"] == pytest.approx(2.0)
    assert got["p95_latency_s"] == pytest.approx(3.8)  # 2 + 0.9 * (4 - 2)
    assert got["p99_latency_s"] == pytest.approx(3.96)
    assert got["mean_latency_s"] == pytest.approx(8.0 / 3)
    assert got["throughput_rps"] == pytest.approx(0.3)
    assert got["server_utilization"] == pytest.approx(3.0 / 20)
    # sent = A, B, C, D (E never finished its uplink)
    assert got["uplink_bytes_per_request"] == pytest.approx(600 / 4)
    assert got["raw_bytes_per_request"] == pytest.approx(4200 / 4)
    assert got["compression_ratio"] == pytest.approx(7.0)
    assert got["server_busy_s_per_request"] == pytest.approx(1.0)
    assert got["device_energy_j_per_request"] == pytest.approx(8.0 / 5)
    assert got["mean_agreement"] == pytest.approx(0.5)
    assert got["mean_batch_size"] == pytest.approx(2.0)
    assert got["quality_change"] == pytest.approx(0.5)
    expected = {
        "device_queue_s": 0.1 / 3,
        "head_s": 0.2,
        "encode_s": 0.1,
        "uplink_s": 1.0,
        "dispatch_s": 0.2 / 3,
        "server_queue_s": (0.2 + 0.0 + 0.3) / 3,
        "server_compute_s": 0.4,
        "downlink_s": (0.0 + 0.1 + 2.0) / 3,
    }
    for stage, value in expected.items():
        assert got[stage] == pytest.approx(value), stage
    assert sum(float(got[s]) for s in STAGES) == pytest.approx(got["mean_latency_s"])
    assert got["device_s"] == pytest.approx(0.1 / 3 + 0.2 + 0.1)
    assert got["server_wait_s"] == pytest.approx(0.2 / 3 + 0.5 / 3)
    assert sum(float(got[g]) for g in STAGE_GROUPS) == pytest.approx(got["mean_latency_s"])
    assert got["drops_by_reason"] == {"queue_full": 2} and got["failures_by_reason"] == {}


def test_stages_are_the_gaps_between_consecutive_stage_times() -> None:
    assert list(STAGES.values()) == list(itertools.pairwise(STAGE_TIMES))
    assert [s for parts in STAGE_GROUPS.values() for s in parts] == list(STAGES)
    assert m.GROUP_EDGES == (
        "t_arrival_s",
        "t_uplink_start_s",
        "t_uplink_end_s",
        "t_server_start_s",
        "t_server_end_s",
        "t_done_s",
    )


def test_values_are_plain_python_and_json_serialisable() -> None:
    got = summarize(table(), servers_table([1.0]), replicas=1, sim_time_s=10.0)
    scalars = {k: v for k, v in got.items() if not k.endswith("_by_reason")}
    assert all(type(v) in (int, float) for v in scalars.values())
    assert isinstance(got["requests"], int) and isinstance(got["drop_rate"], float)
    json.dumps(got)


def test_empty_tables_give_nan_not_exceptions() -> None:
    got = summarize(requests_table([]), servers_table([]), replicas=1, sim_time_s=5.0)
    assert (got["requests"], got["completed"], got["dropped"]) == (0, 0, 0)
    for name in ("drop_rate", "p50_latency_s", "p99_latency_s", "mean_latency_s", "head_s"):
        assert math.isnan(got[name]), name
    assert got["throughput_rps"] == 0.0 and got["server_utilization"] == 0.0


def test_nothing_completed() -> None:
    rows = requests_table([request(D, "dropped"), request(E, "dropped")])
    got = summarize(rows, servers_table([0.0]), replicas=1, sim_time_s=1.0)
    assert got["drop_rate"] == 1.0 and got["completed"] == 0
    assert math.isnan(got["p95_latency_s"]) and math.isnan(got["mean_agreement"])
    assert math.isnan(got["server_busy_s_per_request"])
    assert got["uplink_bytes_per_request"] == 100.0  # D was sent, E was not
    zero = summarize(rows, servers_table([0.0]), replicas=1, sim_time_s=0.0)
    assert math.isnan(zero["throughput_rps"]) and math.isnan(zero["server_utilization"])


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="replicas"):
        summarize(table(), servers_table([1.0]), replicas=0, sim_time_s=1.0)
    with pytest.raises(ValueError, match="sim_time_s"):
        summarize(table(), servers_table([1.0]), replicas=1, sim_time_s=-1.0)
    with pytest.raises(ValueError, match=r"lacks columns \['busy_s'\]"):
        summarize(table(), pa.table({"x": [1]}), replicas=1, sim_time_s=1.0)
    with pytest.raises(ValueError, match="requests table lacks"):
        summarize(table().drop_columns(["t_done_s"]), servers_table([]), replicas=1, sim_time_s=1.0)


# --------------------------------------------------------------- one function, its own columns
def few() -> pa.Table:
    """Four completed requests (latencies 2, 2, 3, 4 s), one dropped after its uplink, one
    failed before it; only the columns the single metrics read."""
    done, drop, fail = "completed", "dropped", "failed"
    return pa.table(
        {
            "status": [done, done, done, done, drop, fail],
            "t_arrival_s": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            "t_uplink_end_s": [1.0, 1.5, 2.75, 3.5, 4.5, NAN],
            "t_done_s": [2.0, 3.0, 5.0, 7.0, NAN, NAN],
            "payload_bytes": [100, 200, 300, 400, 500, 999],
            "device_energy_j": [1.0, 2.0, 3.0, 4.0, 5.0, 0.0],
            "agreement": [1.0, 1.0, 0.5, 1.0, NAN, NAN],
        }
    )


def test_latency_percentiles_are_numpy_linear_over_completed() -> None:
    # sorted latencies 2, 2, 3, 4: p50 at index 1.5 -> 2.5; p95 at 2.85 -> 3.85; p99 at 2.97
    assert m.latency(few()) == pytest.approx(
        {"p50_latency_s": 2.5, "p95_latency_s": 3.85, "p99_latency_s": 3.97, "mean_latency_s": 2.75}
    )


def test_rates_count_every_request() -> None:
    table = few()
    assert m.throughput_rps(table, 8.0) == 0.5
    assert m.drop_rate(table) == pytest.approx(1 / 6)
    assert m.failure_rate(table) == pytest.approx(1 / 6)
    # within 2.5 s: two of six; within 3 s (inclusive): three; the drop and failure miss
    assert m.slo_attainment(table, 2.5) == pytest.approx(2 / 6)
    assert m.slo_attainment(table, 3.0) == pytest.approx(3 / 6)
    assert m.slo_attainment(table, 100.0) == pytest.approx(4 / 6)


def test_per_request_figures_use_their_documented_populations() -> None:
    table = few()
    servers = pa.table({"busy_s": [1.0, 0.75]})
    # every second the servers were busy, over the requests served: 1.75 / 4
    assert m.server_busy_s_per_request(table, servers) == pytest.approx(1.75 / 4)
    assert m.uplink_bytes_per_request(table) == 300.0  # uplink finished: not the failed 999
    assert m.device_energy_j_per_request(table) == 2.5  # every request: 15 / 6
    assert m.quality(table) == {"mean_agreement": 0.875, "quality_change": 0.125}
    assert math.isnan(m.radio_energy_j_per_request(table))  # a table from before the column


def test_busy_time_per_request_is_utilization_times_replicas_over_throughput() -> None:
    table, servers = few(), pa.table({"busy_s": [1.0, 0.9, 0.5]})
    utilization = m.server_utilization(servers, 2, 8.0)
    assert utilization == pytest.approx(2.4 / 16)
    per_request = m.server_busy_s_per_request(table, servers)
    assert per_request == pytest.approx(utilization * 2 / m.throughput_rps(table, 8.0))
    assert math.isnan(m.server_utilization(servers, 2, 0.0))
    with pytest.raises(ValueError, match="replicas must be an integer >= 1, got 0"):
        m.server_utilization(servers, 0, 8.0)


def test_empty_tables_give_nan_and_never_raise() -> None:
    empty, servers = REQUESTS_SCHEMA.empty_table(), SERVERS_SCHEMA.empty_table()
    values = [
        *m.latency(empty).values(),
        *m.stage_means(empty).values(),
        *m.stage_groups(empty).values(),
        *m.quality(empty).values(),
        m.slo_attainment(empty, 1.0),
        m.drop_rate(empty),
        m.failure_rate(empty),
        m.server_busy_s_per_request(empty, servers),
        m.uplink_bytes_per_request(empty),
        m.device_energy_j_per_request(empty),
        m.server_utilization(servers, 1, 0.0),
    ]
    assert all(math.isnan(v) for v in values)
    assert m.throughput_rps(empty, 10.0) == 0.0
    assert m.server_utilization(servers, 1, 5.0) == 0.0
    gen, steps = GENERATE_REQUESTS_SCHEMA.empty_table(), STEPS_SCHEMA.empty_table()
    tokens = m.token_figures(
        gen, steps, GENERATE_SERVERS_SCHEMA.empty_table(), replicas=1, sim_time_s=1.0
    )
    counted = ("tokens", "tokens_per_s", "tokens_per_s_per_replica", "kv_used_max_bytes")
    assert [tokens[k] for k in counted] == [0, 0.0, 0.0, 0.0]
    assert all(math.isnan(v) for k, v in tokens.items() if k not in counted)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match=r"lacks columns \['t_done_s'\]"):
        m.latency(few().drop_columns(["t_done_s"]))
    with pytest.raises(ValueError, match=r"lacks columns.*busy_s.*SERVERS_SCHEMA"):
        m.server_utilization(pa.table({"x": [1.0]}), 1, 1.0)
    with pytest.raises(ValueError, match="slo_s must be a finite number of seconds > 0, got -1"):
        m.slo_attainment(few(), -1)


def test_token_figures_from_the_generate_columns_steps_and_servers() -> None:
    """Three completed sequences (4, 4 and 1 new tokens), a dropped one; 9 tokens delivered."""
    done, drop = "completed", "dropped"
    requests = pa.table(
        {
            "status": [done, done, done, drop],
            "new_tokens": pa.array([4, 4, 1, 4], pa.int32()),
            "payload_bytes": [100, 300, 40, 0],
            "ttft_s": [0.5, 1.5, 1.0, NAN],
            "tpot_s": [0.1, 0.3, NAN, NAN],  # one token: no time per output token
            "tokens_matching": pa.array([4, 2, 1, None], pa.int32()),
        }
    )
    steps = pa.table({"step": [0, 1, 2, 3, 0, 1, 2, 3, 0], "payload_bytes": [40, 20, 20, 20,
                      150, 50, 50, 50, 40]})  # fmt: skip
    servers = pa.table(
        {"busy_s": [0.9, 0.9], "tokens": [6, 4], "batches": [4, 4], "kv_used_max_bytes": [5.0, 7.0]}
    )
    got = m.token_figures(requests, steps, servers, replicas=2, sim_time_s=3.0)
    # ttft 0.5 1.0 1.5: p95 at index 1.9 -> 1.45; tpot 0.1 0.3 (NaN left out): p95 -> 0.29
    assert {k: got[k] for k in ("p50_ttft_s", "p95_ttft_s", "mean_ttft_s")} == pytest.approx(
        {"p50_ttft_s": 1.0, "p95_ttft_s": 1.45, "mean_ttft_s": 1.0}
    )
    assert (got["p95_tpot_s"], got["mean_tpot_s"]) == pytest.approx((0.29, 0.2))
    assert (got["tokens"], got["tokens_per_s"], got["tokens_per_s_per_replica"]) == (9, 3.0, 1.5)
    assert got["uplink_bits_per_token"] == pytest.approx(8 * 440 / 9)
    assert got["server_busy_s_per_token"] == pytest.approx(1.8 / 9)  # over tokens delivered
    assert got["prompt_payload_bytes_mean"] == pytest.approx(230 / 3)
    assert (got["step_payload_bytes_mean"], got["step_payload_bytes_var"]) == (35.0, 225.0)
    assert got["mean_running_batch"] == pytest.approx(10 / 8)
    # first min(32, new_tokens) tokens: 4 >= 4 yes, 2 >= 4 no, 1 >= 1 yes
    assert got["share_matching_32"] == pytest.approx(2 / 3)
    assert got["mean_tokens_matching"] == pytest.approx(7 / 3)
    assert got["kv_used_max_bytes"] == 7.0
