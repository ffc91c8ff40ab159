"""Metrics on small hand-made tables, checked against answers computed by hand in comments."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import metrics as m
from analysis.load import Run, load_sweep
from records.tables import GENERATE_REQUESTS_SCHEMA, REQUESTS_SCHEMA, SERVERS_SCHEMA, STEPS_SCHEMA

NAN = float("nan")
DONE, DROP, FAIL = "completed", "dropped", "failed"


def requests() -> pa.Table:
    """Four completed requests (latencies 2, 2, 3, 4 s), one dropped after its uplink, one
    failed before it; only the columns the metrics read."""
    return pa.table(
        {
            "status": [DONE, DONE, DONE, DONE, DROP, FAIL],
            "t_arrival_s": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            "t_uplink_start_s": [0.5, 1.25, 2.25, 3.5, 4.25, NAN],
            "t_uplink_end_s": [1.0, 1.5, 2.75, 3.5, 4.5, NAN],
            "t_server_start_s": [1.25, 2.0, 2.75, 4.0, NAN, NAN],
            "t_server_end_s": [1.75, 2.5, 3.25, 4.5, NAN, NAN],
            "t_done_s": [2.0, 3.0, 5.0, 7.0, NAN, NAN],
            "payload_bytes": [100, 200, 300, 400, 500, 999],
            "server_busy_s": [0.5, 0.5, 0.25, 0.5, 0.0, 0.0],
            "device_energy_j": [1.0, 2.0, 3.0, 4.0, 5.0, 0.0],
            "agreement": [1.0, 1.0, 0.5, 1.0, NAN, NAN],
        }
    )


def test_latency_percentiles_are_numpy_linear_over_completed() -> None:
    # sorted latencies 2, 2, 3, 4: p50 at index 1.5 -> 2.5; p95 at 2.85 -> 3.85; p99 at 2.97
    got = m.latency(requests())
    assert got == pytest.approx(
        {"p50_latency_s": 2.5, "p95_latency_s": 3.85, "p99_latency_s": 3.97, "mean_latency_s": 2.75}
    )


def test_stage_breakdown_sums_to_mean_latency() -> None:
    # device 0.5 0.25 0.25 0.5; uplink 0.5 0.25 0.5 0; queue 0.25 0.5 0 0.5;
    # compute 0.5 0.5 0.5 0.5; downlink 0.25 0.5 1.75 2.5
    got = m.stage_breakdown(requests())
    assert got == {
        "device_s": 0.375,
        "uplink_s": 0.3125,
        "server_queue_s": 0.3125,
        "server_compute_s": 0.5,
        "downlink_s": 1.25,
    }
    assert list(got) == [f"{s}_s" for s in m.STAGES]
    assert sum(got.values()) == pytest.approx(m.latency(requests())["mean_latency_s"])


def test_rates_count_every_request() -> None:
    table = requests()
    assert m.throughput_rps(table, 8.0) == 0.5
    assert m.drop_rate(table) == pytest.approx(1 / 6)
    assert m.failure_rate(table) == pytest.approx(1 / 6)
    # within 2.5 s: two of six; within 3 s (inclusive): three; the drop and failure miss
    assert m.slo_attainment(table, 2.5) == pytest.approx(2 / 6)
    assert m.slo_attainment(table, 3.0) == pytest.approx(3 / 6)
    assert m.slo_attainment(table, 100.0) == pytest.approx(4 / 6)


def test_per_request_metrics_use_their_documented_populations() -> None:
    table = requests()
    assert m.server_busy_s_per_request(table) == pytest.approx(1.75 / 4)  # completed
    assert m.uplink_bytes_per_request(table) == 300.0  # uplink finished: not the failed 999
    assert m.device_energy_j_per_request(table) == 2.5  # every request: 15 / 6
    assert m.quality(table) == {"mean_agreement": 0.875, "quality_change": 0.125}
    assert math.isnan(m.server_busy_s_per_token(table))  # infer: no new_tokens
    assert math.isnan(m.uplink_bits_per_token(table))


def test_server_utilization_is_busy_over_replica_seconds() -> None:
    servers = pa.table({"busy_s": [1.0, 0.9, 0.5]})
    assert m.server_utilization(servers, 2, 8.0) == pytest.approx(2.4 / 16)
    assert math.isnan(m.server_utilization(servers, 2, 0.0))
    with pytest.raises(ValueError, match="replicas must be an integer >= 1, got 0"):
        m.server_utilization(servers, 0, 8.0)


def test_empty_tables_give_nan_and_never_raise() -> None:
    empty = REQUESTS_SCHEMA.empty_table()
    values = [
        *m.latency(empty).values(),
        *m.stage_breakdown(empty).values(),
        *m.quality(empty).values(),
        m.slo_attainment(empty, 1.0),
        m.drop_rate(empty),
        m.failure_rate(empty),
        m.server_busy_s_per_request(empty),
        m.uplink_bytes_per_request(empty),
        m.device_energy_j_per_request(empty),
        m.server_utilization(SERVERS_SCHEMA.empty_table(), 1, 0.0),
    ]
    assert all(math.isnan(v) for v in values)
    assert m.throughput_rps(empty, 10.0) == 0.0
    assert m.server_utilization(SERVERS_SCHEMA.empty_table(), 1, 5.0) == 0.0
    gen = GENERATE_REQUESTS_SCHEMA.empty_table()
    assert all(math.isnan(v) for v in m.token_latency(gen).values())
    assert math.isnan(m.server_busy_s_per_token(gen)) and math.isnan(m.uplink_bits_per_token(gen))


def test_an_all_dropped_run_misses_everything() -> None:
    table = requests().filter(pa.array([False, False, False, False, True, True]))
    table = table.set_column(0, "status", pa.array([DROP, DROP]))
    assert all(math.isnan(v) for v in m.latency(table).values())
    assert all(math.isnan(v) for v in m.stage_breakdown(table).values())
    assert m.drop_rate(table) == 1.0 and m.failure_rate(table) == 0.0
    assert m.slo_attainment(table, 1e9) == 0.0
    assert m.throughput_rps(table, 4.0) == 0.0
    assert math.isnan(m.quality(table)["mean_agreement"])


def test_a_missing_column_is_named() -> None:
    table = requests().drop_columns(["t_done_s"])
    with pytest.raises(ValueError, match=r"lacks columns \['t_done_s'\]"):
        m.latency(table)
    with pytest.raises(ValueError, match=r"lacks columns.*busy_s.*SERVERS_SCHEMA"):
        m.server_utilization(pa.table({"x": [1.0]}), 1, 1.0)
    with pytest.raises(ValueError, match="slo_s must be a finite number of seconds > 0, got -1"):
        m.slo_attainment(requests(), -1)


def generate_requests() -> pa.Table:
    """Three completed sequences (4, 4 and 1 new tokens) and a dropped one."""
    return pa.table(
        {
            "status": [DONE, DONE, DONE, DROP],
            "new_tokens": pa.array([4, 4, 1, 4], pa.int32()),
            "payload_bytes": [100, 300, 40, 0],
            "server_busy_s": [0.2, 0.6, 0.2, 0.0],
            "ttft_s": [0.5, 1.5, 1.0, NAN],
            "tpot_s": [0.1, 0.3, NAN, NAN],  # one token: no time per output token
        }
    )


def test_generate_metrics_from_the_generate_columns() -> None:
    table = generate_requests()
    assert m.server_busy_s_per_token(table) == pytest.approx(1.0 / 9)
    assert m.uplink_bits_per_token(table) == pytest.approx(8 * 440 / 9)
    # ttft 0.5 1.0 1.5: p95 at index 1.9 -> 1.45; tpot 0.1 0.3 (NaN left out): p95 -> 0.29
    assert m.token_latency(table) == pytest.approx(
        {
            "p50_ttft_s": 1.0,
            "p95_ttft_s": 1.45,
            "p99_ttft_s": 1.49,
            "p50_tpot_s": 0.2,
            "p95_tpot_s": 0.29,
            "p99_tpot_s": 0.298,
        }
    )


def test_metrics_match_the_run_summary_on_shared_definitions() -> None:
    from records.summary import summarize

    table = full_requests()
    servers = pa.table({"busy_s": [1.0, 0.75]})
    summary = summarize(table, servers, replicas=2, sim_time_s=8.0)
    ours = {
        **m.latency(table),
        "throughput_rps": m.throughput_rps(table, 8.0),
        "server_utilization": m.server_utilization(servers, 2, 8.0),
        "uplink_bytes_per_request": m.uplink_bytes_per_request(table),
        "device_energy_j_per_request": m.device_energy_j_per_request(table),
        "drop_rate": m.drop_rate(table),
        "failure_rate": m.failure_rate(table),
        "mean_agreement": m.quality(table)["mean_agreement"],
    }
    assert ours == pytest.approx({k: summary[k] for k in ours})
    assert m.server_busy_s_per_request(table) == pytest.approx(summary["server_busy_s_per_request"])


def full_requests() -> pa.Table:
    """``requests()`` filled out to the whole REQUESTS_SCHEMA (head stages inside device)."""
    base = requests()
    n = base.num_rows
    start, up = base.column("t_arrival_s").to_pylist(), base.column("t_uplink_start_s").to_pylist()
    columns: dict[str, Any] = {name: base.column(name) for name in base.column_names}
    columns.update(
        run_id=["r"] * n,
        request_id=list(range(n)),
        device_id=list(range(n)),
        group=["g"] * n,
        model=["m"] * n,
        split=[4] * n,
        codec=["fp16"] * n,
        input_id=[0] * n,
        replica_id=[0, 1, 0, 1, -1, -1],
        t_head_start_s=start,
        t_head_end_s=up,
        t_server_enqueue_s=base.column("t_uplink_end_s"),
        raw_bytes=[1000] * n,
        result_bytes=[4] * n,
        batch_size=[1, 1, 1, 1, 0, 0],
        radio_energy_j=[0.0] * n,
        reason=["", "", "", "", "queue_full", "head: boom"],
    )
    return pa.table({f.name: columns[f.name] for f in REQUESTS_SCHEMA}).cast(REQUESTS_SCHEMA)


def _scenario(task: str = "infer", **changes: Any) -> dict[str, Any]:
    return {
        "name": "hand",
        "seed": 5,
        "model": {"name": "m", "task": task},
        "codec": {"id": "fp16"},
        "fleet": [{"name": "g", "count": 3, "split": 4, "codec": None}],
        "servers": {"replicas": 2},
        **changes,
    }


def test_run_metrics_flattens_every_metric_of_a_run() -> None:
    run = Run(
        path=Path("hand"),
        manifest={"seed": 5, "scenario": _scenario()},
        summary={"sim_time_s": 8.0},
        requests=requests(),
        servers=pa.table({"busy_s": [1.0, 0.75]}),
        steps=None,
    )
    got = m.run_metrics(run, slo_s=3.0)
    assert list(got) == [
        *m.latency(requests()),
        *(f"{s}_s" for s in m.STAGES),
        "throughput_rps",
        "slo_attainment",
        "server_utilization",
        "server_busy_s_per_request",
        "server_busy_s_per_token",
        "uplink_bytes_per_request",
        "uplink_bits_per_token",
        "device_energy_j_per_request",
        "drop_rate",
        "failure_rate",
        "mean_agreement",
        "quality_change",
    ]
    assert got["slo_attainment"] == 0.5 and got["throughput_rps"] == 0.5
    assert got["server_utilization"] == pytest.approx(1.75 / 16)
    assert "slo_attainment" not in m.run_metrics(run)


def test_run_metrics_of_a_generate_run_adds_token_latencies() -> None:
    table = requests()
    table = table.append_column("new_tokens", pa.array([4, 4, 1, 4, 4, 4], pa.int32()))
    table = table.append_column("ttft_s", pa.array([0.5, 1.5, 1.0, 2.0, NAN, NAN]))
    table = table.append_column("tpot_s", pa.array([0.1, 0.3, NAN, 0.5, NAN, NAN]))
    run = Run(
        path=Path("hand"),
        manifest={"seed": 5, "scenario": _scenario("generate")},
        summary={},  # no sim_time_s: the last stage time any request reached, 7 s
        requests=table,
        servers=pa.table({"busy_s": [1.0]}),
        steps=STEPS_SCHEMA.empty_table(),
    )
    got = m.run_metrics(run)
    # ttft 0.5 1 1.5 2: p95 at index 2.85 -> 1.925; tpot 0.1 0.3 0.5 -> p50 0.3
    assert got["p95_ttft_s"] == pytest.approx(1.925) and got["p50_tpot_s"] == pytest.approx(0.3)
    assert list(got)[-6:] == [f"p{q}_{n}" for n in ("ttft_s", "tpot_s") for q in (50, 95, 99)]
    assert got["server_busy_s_per_token"] == pytest.approx(1.75 / 13)
    assert got["uplink_bits_per_token"] == pytest.approx(8 * 1000 / 13)
    assert got["throughput_rps"] == pytest.approx(4 / 7)
    assert got["server_utilization"] == pytest.approx(1.0 / 14)


def test_codec_label_shows_only_what_the_scenario_wrote() -> None:
    assert m.codec_label("slicer") == "slicer"
    assert m.codec_label({"id": "fp16"}) == "fp16"
    assert m.codec_label({"id": "slicer", "max_nmse": 0.001}) == "slicer(max_nmse=0.001)"
    config = {"keep": [1, 2], "id": "topk", "dtype": "fp16", "exact": True}
    assert m.codec_label(config) == "topk(dtype=fp16, exact=true, keep=[1,2])"


def _write_point(path: Path, scenario: dict[str, Any], latency_s: float) -> None:
    path.mkdir(parents=True)
    manifest = {"seed": 1, "status": "complete", "scenario": scenario}
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "summary.json").write_text(json.dumps({"sim_time_s": 10.0}))
    table = requests().set_column(6, "t_done_s", pa.array([latency_s] + [NAN] * 5))
    table = table.set_column(0, "status", pa.array([DONE, DROP, DROP, DROP, DROP, DROP]))
    pq.write_table(table, path / "requests.parquet")
    pq.write_table(pa.table({"busy_s": [1.0]}), path / "servers.parquet")


def test_sweep_rows_derive_fleet_split_and_codec_from_each_point(tmp_path: Path) -> None:
    mixed = _scenario(
        fleet=[
            {"name": "a", "count": 3, "split": 4, "codec": None},
            {"name": "b", "count": 5, "split": 8, "codec": "slicer"},
        ]
    )
    slicer = _scenario(codec={"id": "slicer", "max_nmse": 0.001}, servers={"replicas": 4})
    _write_point(tmp_path / "000-a", mixed, 1.5)
    _write_point(tmp_path / "002-c", slicer, 2.0)
    points = {
        "point": ["000-a", "001-b", "002-c"],
        "seed": [1, 2, 3],
        "codec": ['"fp16"', '"fp16"', '{"id": "slicer", "max_nmse": 0.001}'],
        "servers.replicas": ["2", "2", "4"],
        "status": ["complete", "failed", "complete"],
        "error": [None, "RuntimeError: boom", None],
    }
    pq.write_table(pa.table(points), tmp_path / "sweep.parquet")
    rows = m.sweep_rows(load_sweep(tmp_path), slo_s=1.75)
    assert [r["point"] for r in rows] == ["000-a", "002-c"]  # the failed point is left out
    first, second = ({k: r[k] for k in list(r)[:7]} for r in rows)
    assert first == {
        "point": "000-a",
        "codec": "fp16/slicer",
        "servers.replicas": 2,
        "devices": 8,
        "replicas": 2,
        "split": "4/8",
        "task": "infer",
    }
    assert second["codec"] == "slicer(max_nmse=0.001)" and second["split"] == 4
    assert second["devices"] == 3 and second["replicas"] == 4
    assert rows[0]["p95_latency_s"] == 1.5 and rows[0]["slo_attainment"] == pytest.approx(1 / 6)
    assert rows[1]["slo_attainment"] == 0.0


def curve(
    latencies: list[float], *, codec: str = "fp16", replicas: int = 1
) -> list[dict[str, Any]]:
    devices = [10, 100, 1000, 10000][: len(latencies)]
    return [
        {"split": 4, "codec": codec, "replicas": replicas, "devices": d, "p95_latency_s": p}
        for d, p in zip(devices, latencies, strict=True)
    ]


def test_capacity_interpolates_in_log_devices_to_the_slo_crossing() -> None:
    # 2.0 at 100, 4.0 at 1000: slo 3 is half way in log10 devices -> 10 ** 2.5
    (got,) = m.capacity(curve([1.0, 2.0, 4.0]), slo_s=3.0)
    assert got.status == "interpolated" and got.slo_s == 3.0
    assert got.devices == pytest.approx(10**2.5)
    assert got.key == {"split": 4, "codec": "fp16", "replicas": 1}


def test_capacity_flags_an_slo_met_or_missed_at_every_point() -> None:
    assert m.capacity(curve([1.0, 2.0, 4.0]), slo_s=5.0) == [
        m.Capacity({"split": 4, "codec": "fp16", "replicas": 1}, 1000.0, "met_at_every_point", 5.0)
    ]
    (missed,) = m.capacity(curve([1.0, 2.0, 4.0]), slo_s=0.5)
    assert missed.devices is None and missed.status == "missed_at_every_point"


def test_capacity_ends_at_the_first_miss_of_a_non_monotone_curve() -> None:
    # misses at 100 (4.0) though 1000 meets again: the crossing is between 10 and 100 at
    # (3 - 1) / (4 - 1) = 2/3 of a decade
    (got,) = m.capacity(curve([1.0, 4.0, 2.0, 5.0]), slo_s=3.0)
    assert got.status == "interpolated" and got.devices == pytest.approx(10 ** (1 + 2 / 3))
    (first,) = m.capacity(curve([4.0, 1.0, 1.0]), slo_s=3.0)
    assert first.devices is None and first.status == "missed_at_every_point"


def test_capacity_at_a_point_when_no_crossing_can_be_interpolated() -> None:
    (exact,) = m.capacity(curve([1.0, 3.0, 4.0]), slo_s=3.0)
    assert (exact.devices, exact.status) == (100.0, "at_a_point")
    (unknown,) = m.capacity(curve([1.0, 2.0, NAN]), slo_s=3.0)  # nothing completed at 1000
    assert (unknown.devices, unknown.status) == (100.0, "at_a_point")


def test_capacity_groups_rows_and_sorts_them_by_devices() -> None:
    rows = curve([1.0, 2.0, 4.0], codec="slicer")[::-1] + curve([1.0, 4.0])
    got = m.capacity(rows, slo_s=3.0)
    assert [c.key["codec"] for c in got] == ["slicer", "fp16"]
    assert got[0].devices == pytest.approx(10**2.5)
    assert got[1].devices == pytest.approx(10 ** (1 + 2 / 3))
    with pytest.raises(ValueError, match=r"same devices.*add the parameter"):
        m.capacity(curve([1.0, 2.0]) + curve([1.0]), slo_s=3.0, by=("split",))
    with pytest.raises(ValueError, match="a row lacks 'p99_ttft_s'"):
        m.capacity(curve([1.0]), slo_s=3.0, metric="p99_ttft_s")


def test_replicas_needed_picks_the_fewest_replicas_meeting_the_slo() -> None:
    rows = [
        *curve([5.0, 10.0], replicas=1),
        *curve([2.0, 6.0], replicas=4),
        *curve([3.0, 4.0], replicas=2),
        *curve([1.0], codec="slicer"),
    ]
    got = m.replicas_needed(rows, slo_s=3.0)
    assert got == [
        {"split": 4, "codec": "fp16", "devices": 10, "replicas": 2},
        {"split": 4, "codec": "fp16", "devices": 100, "replicas": None},
        {"split": 4, "codec": "slicer", "devices": 10, "replicas": 1},
    ]
