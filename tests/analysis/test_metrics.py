"""Metrics on small hand-made tables, checked against answers computed by hand in comments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import metrics as m
from analysis.load import Run, load_sweep
from records.tables import REQUESTS_SCHEMA

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


def test_the_numbers_are_records_metrics() -> None:
    """analysis defines no metric: every one it names is the one summary.json uses."""
    from records import metrics as defs

    for name in (
        "latency",
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
        "quality",
        "token_latency",
    ):
        assert getattr(m, name) is getattr(defs, name), name
    assert m.stage_breakdown is defs.stage_groups
    assert m.STAGES == ("device", "uplink", "server_wait", "server_compute", "downlink")
    assert [f"{s}_s" for s in m.STAGES] == list(defs.STAGE_GROUPS)


def test_stage_breakdown_sums_to_mean_latency() -> None:
    # device 0.5 0.25 0.25 0.5; uplink 0.5 0.25 0.5 0; wait 0.25 0.5 0 0.5;
    # compute 0.5 0.5 0.5 0.5; downlink 0.25 0.5 1.75 2.5
    got = m.stage_breakdown(full_requests())
    assert got == {
        "device_s": 0.375,
        "uplink_s": 0.3125,
        "server_wait_s": 0.3125,
        "server_compute_s": 0.5,
        "downlink_s": 1.25,
    }
    assert sum(got.values()) == pytest.approx(m.latency(requests())["mean_latency_s"])


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
        server_decode_s=[1e-4] * n,
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


def test_run_metrics_flattens_every_figure_of_a_run() -> None:
    from records.metrics import request_figures

    run = Run(
        path=Path("hand"),
        manifest={"seed": 5, "scenario": _scenario()},
        summary={"sim_time_s": 8.0},
        requests=full_requests(),
        servers=pa.table({"busy_s": [1.0, 0.75]}),
        steps=None,
    )
    got = m.run_metrics(run, slo_s=3.0)
    figures = request_figures(run.requests, run.servers, replicas=2, sim_time_s=8.0)
    keys = list(figures)
    keys.insert(keys.index("throughput_rps") + 1, "slo_attainment")
    assert list(got) == keys
    assert {k: got[k] for k in figures} == figures
    assert got["slo_attainment"] == 0.5 and got["throughput_rps"] == 0.5
    assert got["server_utilization"] == pytest.approx(1.75 / 16)
    assert got["server_busy_s_per_request"] == pytest.approx(1.75 / 4)
    assert "slo_attainment" not in m.run_metrics(run)
    assert "p95_ttft_s" not in got  # infer: no token figures


def test_run_metrics_of_a_generate_run_adds_the_token_figures() -> None:
    table = full_requests()
    table = table.append_column("new_tokens", pa.array([4, 4, 1, 4, 4, 4], pa.int32()))
    table = table.append_column("ttft_s", pa.array([0.5, 1.5, 1.0, 2.0, NAN, NAN]))
    table = table.append_column("tpot_s", pa.array([0.1, 0.3, NAN, 0.5, NAN, NAN]))
    table = table.append_column("tokens_matching", pa.array([4, 2, 1, 4, None, None], pa.int32()))
    servers = pa.table(
        {"busy_s": [1.0], "tokens": [13], "batches": [5], "kv_used_max_bytes": [0.0]}
    )
    steps = pa.table({"step": list(range(13)), "payload_bytes": [10] * 13})
    run = Run(
        path=Path("hand"),
        manifest={"seed": 5, "scenario": _scenario("generate")},
        summary={},  # no sim_time_s: the last stage time any request reached, 7 s
        requests=table,
        servers=servers,
        steps=steps,
    )
    got = m.run_metrics(run)
    # ttft 0.5 1 1.5 2: p95 at index 2.85 -> 1.925; tpot 0.1 0.3 0.5 -> p50 0.3
    assert got["p95_ttft_s"] == pytest.approx(1.925) and got["p50_tpot_s"] == pytest.approx(0.3)
    assert got["server_busy_s_per_token"] == pytest.approx(1.0 / 13)
    assert got["uplink_bits_per_token"] == pytest.approx(8 * 1000 / 13)
    assert got["throughput_rps"] == pytest.approx(4 / 7)
    assert got["server_utilization"] == pytest.approx(1.0 / 14)
    assert got["tokens"] == 13 and got["mean_running_batch"] == pytest.approx(13 / 5)


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
    table = full_requests()
    table = table.set_column(
        table.schema.get_field_index("t_done_s"), "t_done_s", pa.array([latency_s] + [NAN] * 5)
    )
    table = table.set_column(
        table.schema.get_field_index("status"), "status", pa.array([DONE] + [DROP] * 5)
    )
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
