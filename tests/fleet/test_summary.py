"""Headline metrics on small hand-made tables, checked against hand-computed answers."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pytest

from records.summary import STAGES, summarize
from records.tables import REQUESTS_SCHEMA, SERVERS_SCHEMA, STAGE_TIMES

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
    expected = {
        "device_queue_s": 0.1 / 3,
        "head_s": 0.2,
        "encode_s": 0.1,
        "uplink_s": 1.0,
        "dispatch_s": 0.2 / 3,
        "server_queue_s": (0.2 + 0.0 + 0.3) / 3,
        "server_s": 0.4,
        "downlink_s": (0.0 + 0.1 + 2.0) / 3,
    }
    for stage, value in expected.items():
        assert got[stage] == pytest.approx(value), stage
    assert sum(float(got[s]) for s in STAGES) == pytest.approx(got["mean_latency_s"])


def test_values_are_plain_python_and_json_serialisable() -> None:
    got = summarize(table(), servers_table([1.0]), replicas=1, sim_time_s=10.0)
    assert all(type(v) in (int, float) for v in got.values())
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
