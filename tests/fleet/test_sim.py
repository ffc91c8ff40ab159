"""The simulator against queueing theory and exact hand-computed schedules.

Runs replay a hand-written profile with ideal devices and links, so only the parts under test
take time. Theory runs are short here (tolerances stated per test); the long runs that hold the
simulator to 3% are in ``benchmarks/sim_validation.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fleet.run.runner import run_one
from server.queueing import md1_wait_s, mm1_wait_s, mmc_wait_s, ps_sojourn_s
from tests.fleet.simkit import requests, scenario, write_profile


def _waits(run_dir: Path) -> np.ndarray:
    rows = [r for r in requests(run_dir) if r["status"] == "completed"]
    return np.array([r["t_server_start_s"] - r["t_server_enqueue_s"] for r in rows])


def _theory_run(tmp_path: Path, rate_per_s: float, servers: dict, count: int = 40) -> np.ndarray:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=None,
        duration_s=30_000.0 / rate_per_s,
        fleet0={"count": count, "arrivals": {"kind": "poisson", "rate_per_s": rate_per_s / count}},
        servers=servers,
    )
    return _waits(run_one(s, tmp_path / "run", quiet=True).path)


def test_mm1_mean_wait_matches_theory(tmp_path: Path) -> None:
    # 30,000 requests at utilisation 0.5: the mean wait's standard error is about 3.5%
    service = {"kind": "exponential", "mean_s": 1.0}
    waits = _theory_run(tmp_path, 0.5, {"service": service})
    assert len(waits) > 25_000
    assert waits.mean() == pytest.approx(mm1_wait_s(0.5, 1.0), rel=0.12)


def test_mmc_shared_queue_matches_erlang_c(tmp_path: Path) -> None:
    service = {"kind": "exponential", "mean_s": 1.0}
    servers = {"replicas": 4, "routing": "shared-queue", "service": service}
    waits = _theory_run(tmp_path, 3.0, servers)
    assert waits.mean() == pytest.approx(mmc_wait_s(3.0, 1.0, 4), rel=0.12)


def test_md1_matches_pollaczek_khinchine(tmp_path: Path) -> None:
    waits = _theory_run(tmp_path, 0.5, {"service": {"kind": "deterministic", "mean_s": 1.0}})
    assert waits.mean() == pytest.approx(md1_wait_s(0.5, 1.0), rel=0.08)


def test_fifo_single_server_schedule_is_exact(tmp_path: Path) -> None:
    """Every request's server start and end equal a hand-run FIFO recurrence."""
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=3,
        fleet0={"count": 4, "arrivals": {"kind": "periodic", "period_s": 0.5}},
        servers={"service": {"kind": "deterministic", "mean_s": 0.3}},
    )
    rows = requests(run_one(s, tmp_path / "run", quiet=True).path)
    assert len(rows) == 12
    free_s = 0.0
    for row in sorted(rows, key=lambda r: (r["t_arrival_s"], r["request_id"])):
        assert row["t_server_enqueue_s"] == row["t_arrival_s"]  # ideal device and link
        start_s = max(row["t_arrival_s"], free_s)
        assert row["t_server_start_s"] == start_s
        assert row["t_server_end_s"] == start_s + 0.3
        assert row["t_done_s"] == row["t_server_end_s"]
        assert row["batch_size"] == 1 and row["server_busy_s"] == 0.3
        free_s = start_s + 0.3


def test_batch_waits_for_max_wait_or_max_batch(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        fleet0={"count": 5, "arrivals": {"kind": "periodic", "period_s": 1.0}},
        servers={
            "batching": {"max_batch": 3, "max_wait_s": 0.25},
            "service": {"kind": "deterministic", "mean_s": 2.0},
        },
    )
    rows = sorted(
        requests(run_one(s, tmp_path / "run", quiet=True).path),
        key=lambda r: (r["t_arrival_s"], r["request_id"]),
    )
    arrivals = [r["t_arrival_s"] for r in rows]
    # hand-run dynamic batching: the first batch starts when 3 are queued or the oldest has
    # waited 0.25 s, whichever is first
    deadline = arrivals[0] + 0.25
    in_time = [a for a in arrivals if a <= deadline]
    first_size = min(3, len(in_time))
    first_start = arrivals[2] if len(in_time) >= 3 else deadline
    assert [r["t_server_start_s"] for r in rows[:first_size]] == [first_start] * first_size
    assert {r["batch_size"] for r in rows[:first_size]} == {first_size}
    # the rest queue behind a 2 s batch, so the next batch is full or holds what is left
    rest = rows[first_size:]
    assert rest[0]["t_server_start_s"] == first_start + 2.0
    assert rest[0]["batch_size"] == min(3, len(rest))


def test_constant_link_takes_bytes_over_rate_plus_delay(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile", payload_bytes=[1000, 3000], result_bytes=40)
    s = scenario(
        profile,
        fleet0={
            "count": 6,
            "uplink": {"bandwidth_mbps": 8.0, "delay_s": 0.02},
            "downlink": {"bandwidth_mbps": 1.0, "delay_s": 0.005},
        },
    )
    for row in requests(run_one(s, tmp_path / "run", quiet=True).path):
        uplink_s = row["t_uplink_end_s"] - row["t_uplink_start_s"]
        assert uplink_s == pytest.approx(row["payload_bytes"] * 8 / 8e6 + 0.02, rel=1e-12)
        downlink_s = row["t_done_s"] - row["t_server_end_s"]
        assert downlink_s == pytest.approx(40 * 8 / 1e6 + 0.005, rel=1e-12)


def test_shared_cell_is_processor_sharing(tmp_path: Path) -> None:
    """Four equal transfers that start together on a cell each take 4x one alone."""
    profile = write_profile(tmp_path / "profile", payload_bytes=[2500])
    s = scenario(
        profile,
        fleet0={
            "count": 4,
            "arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0},
            "uplink": None,
            "cell": "tower",
        },
        network={"cells": [{"name": "tower", "uplink": {"bandwidth_mbps": 10.0}}]},
    )
    rows = requests(run_one(s, tmp_path / "run", quiet=True).path)
    expected_s = ps_sojourn_s(4, 2500, 10e6)
    for row in rows:
        assert row["t_uplink_start_s"] == 0.0
        assert row["t_uplink_end_s"] == pytest.approx(expected_s, rel=1e-12)


def test_queue_limit_drops_with_reason(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        fleet0={"count": 5, "arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0}},
        servers={"queue_limit": 2, "service": {"kind": "deterministic", "mean_s": 1.0}},
    )
    result = run_one(s, tmp_path / "run", quiet=True)
    rows = requests(result.path)
    # one runs at once, two wait, two are refused
    assert [r["status"] for r in rows] == ["completed"] * 3 + ["dropped"] * 2
    assert [r["reason"] for r in rows[3:]] == ["queue_full", "queue_full"]
    assert all(math.isnan(r["t_server_start_s"]) and r["replica_id"] == -1 for r in rows[3:])
    assert result.summary["dropped"] == 2


def test_round_robin_spreads_requests(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=3,
        fleet0={"count": 8},
        servers={"replicas": 4, "routing": "round-robin"},
    )
    rows = requests(run_one(s, tmp_path / "run", quiet=True).path)
    served = np.bincount([r["replica_id"] for r in rows], minlength=4)
    assert served.tolist() == [6, 6, 6, 6]


@pytest.mark.parametrize("routing", ["random", "least-loaded", "power-of-two"])
def test_every_routing_serves_everything(tmp_path: Path, routing: str) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=5,
        fleet0={"count": 20, "arrivals": {"kind": "poisson", "rate_per_s": 2.0}},
        servers={
            "replicas": 3,
            "routing": routing,
            "service": {"kind": "exponential", "mean_s": 0.1},
        },
    )
    result = run_one(s, tmp_path / "run", quiet=True)
    assert result.summary["completed"] == 100
    rows = requests(result.path)
    assert set(r["replica_id"] for r in rows) == {0, 1, 2}


def test_busy_time_is_exact_across_windows(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=4,
        fleet0={"count": 3, "arrivals": {"kind": "poisson", "rate_per_s": 0.5}},
        servers={"service": {"kind": "lognormal", "mean_s": 0.7, "cv": 0.5}},
        record={"window_s": 0.25},
    )
    result = run_one(s, tmp_path / "run", quiet=True)
    busy = pq.read_table(result.path / "servers.parquet").column("busy_s").to_numpy()
    per_request = [r["server_busy_s"] for r in requests(result.path)]
    assert busy.sum() == pytest.approx(sum(per_request), rel=1e-12)
    assert busy.max() <= 0.25 + 1e-12


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile", payload_bytes=[800, 1200, 1900])
    s = scenario(
        profile,
        requests_per_device=None,
        duration_s=20.0,
        fleet0={
            "count": 30,
            "arrivals": {"kind": "poisson", "rate_per_s": 0.5},
            "uplink": {"trace": "synthetic:lte"},
        },
        servers={
            "replicas": 2,
            "routing": "power-of-two",
            "service": {"kind": "exponential", "mean_s": 0.05},
        },
    )
    a = run_one(s, tmp_path / "a", quiet=True).path
    b = run_one(s, tmp_path / "b", quiet=True).path
    for name in ("requests.parquet", "servers.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    other = s.model_copy(update={"seed": 2})
    c = run_one(other, tmp_path / "c", quiet=True).path
    assert (a / "requests.parquet").read_bytes() != (c / "requests.parquet").read_bytes()


def test_never_overwrites_a_finished_run(tmp_path: Path) -> None:
    """The same scenario again reuses the finished run; another scenario there is refused."""
    profile = write_profile(tmp_path / "profile")
    s = scenario(profile)
    first = run_one(s, tmp_path / "run", quiet=True)
    before = (first.path / "requests.parquet").read_bytes()
    assert run_one(s, first.path, quiet=True).summary == first.summary
    with pytest.raises(FileExistsError, match="finished run of a different scenario"):
        run_one(s.model_copy(update={"seed": 2}), first.path, quiet=True)
    assert (first.path / "requests.parquet").read_bytes() == before


def test_exact_stage_trace_of_a_small_run(tmp_path: Path) -> None:
    """Two devices in step, 1 ms uplinks, 0.4 s service on one replica: every stage time."""
    profile = write_profile(tmp_path / "profile", payload_bytes=[1000])
    s = scenario(
        profile,
        requests_per_device=2,
        fleet0={
            "count": 2,
            "arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0},
            "uplink": {"bandwidth_mbps": 8.0},
        },
        servers={"service": {"kind": "deterministic", "mean_s": 0.4}},
    )
    stages = (
        "t_arrival_s",
        "t_head_start_s",
        "t_head_end_s",
        "t_uplink_start_s",
        "t_uplink_end_s",
        "t_server_start_s",
        "t_server_end_s",
        "t_done_s",
    )
    rows = requests(run_one(s, tmp_path / "run", quiet=True).path)
    trace = [(r["request_id"], r["device_id"], *(r[k] for k in stages)) for r in rows]
    expected = [
        (0, 0, 0.0, 0.0, 0.0, 0.0, 0.001, 0.001, 0.401, 0.401),
        (1, 1, 0.0, 0.0, 0.0, 0.0, 0.001, 0.401, 0.801, 0.801),
        (2, 0, 1.0, 1.0, 1.0, 1.0, 1.001, 1.001, 1.401, 1.401),
        (3, 1, 1.0, 1.0, 1.0, 1.0, 1.001, 1.401, 1.801, 1.801),
    ]
    assert trace == [pytest.approx(row, abs=1e-12) for row in expected]


def test_radio_energy_follows_the_lte_model(tmp_path: Path) -> None:
    """Huang et al.'s LTE model: 1.28804 W while a transfer is under way, plus 0.43839 J per
    uplink Mbit and 0.05197 J per downlink Mbit; ideal hardware adds no compute energy."""
    profile = write_profile(tmp_path / "profile", payload_bytes=[1000], result_bytes=500)
    s = scenario(
        profile,
        fleet0={
            "radio": "lte",
            "uplink": {"bandwidth_mbps": 8.0, "delay_s": 0.02},
            "downlink": {"bandwidth_mbps": 4.0},
        },
    )
    result = run_one(s, tmp_path / "run", quiet=True)
    (row,) = requests(result.path)
    up_s, down_s = 1000 * 8 / 8e6 + 0.02, 500 * 8 / 4e6
    expected_j = 1.28804 * (up_s + down_s) + 0.43839 * 0.008 + 0.05197 * 0.004
    assert row["radio_energy_j"] == pytest.approx(expected_j, rel=1e-12)
    assert row["device_energy_j"] == pytest.approx(expected_j, rel=1e-12)
    assert result.summary["radio_energy_j_per_request"] == pytest.approx(expected_j)
    without = run_one(scenario(profile), tmp_path / "plain", quiet=True)
    assert requests(without.path)[0]["radio_energy_j"] == 0.0


def test_the_decode_pool_delays_a_request_by_its_decode_off_the_accelerator(
    tmp_path: Path,
) -> None:
    from models.codec_time import CodecTimes, gpu_decode_s
    from models.durations import ModelCosts
    from models.hardware import get_hardware
    from tests.fleet.simkit import MODEL, fp32_key, simulate

    profile = write_profile(tmp_path, raw_bytes=4_000_000, payload_bytes=[4_000_100])
    h100 = get_hardware("h100-sxm")
    tail_s = ModelCosts(MODEL, 8).tail_s(h100, "fp16", 4, 1)
    decode_s = CodecTimes.read().seconds("decode", fp32_key(), 4_000_000, 4_000_100, h100)
    assert decode_s > 1e-4  # a 4 MB decode on one host core is not free

    _, (row,) = simulate(scenario(profile, servers={"hardware": "h100-sxm"}))
    assert row["server_busy_s"] == pytest.approx(tail_s)  # the pool is not the accelerator
    assert row["server_decode_s"] == pytest.approx(decode_s)
    waited_s = row["t_server_enqueue_s"] - row["t_uplink_end_s"]
    assert waited_s == pytest.approx(decode_s)

    on_gpu = scenario(profile, servers={"hardware": "h100-sxm", "decode": {"on": "gpu"}})
    _, (row,) = simulate(on_gpu)
    gpu_s = gpu_decode_s(["fp32"], [4_000_000.0], [4_000_100.0], h100)
    assert row["server_busy_s"] == pytest.approx(tail_s + gpu_s)
    assert row["server_decode_s"] == pytest.approx(gpu_s)
    assert row["t_server_enqueue_s"] == row["t_uplink_end_s"]


def test_a_device_encodes_at_its_cpu_score(tmp_path: Path) -> None:
    from models.codec_time import CodecTimes
    from models.hardware import get_hardware
    from tests.fleet.simkit import fp32_key, simulate

    profile = write_profile(tmp_path, raw_bytes=4_000_000, payload_bytes=[4_000_100])
    times = CodecTimes.read()
    encode = {}
    for hardware in ("flagship-phone", "raspberry-pi-5"):
        _, (row,) = simulate(scenario(profile, fleet0={"hardware": hardware}))
        encode[hardware] = row["t_uplink_start_s"] - row["t_head_end_s"]
        spec = get_hardware(hardware)
        assert encode[hardware] == pytest.approx(
            times.seconds("encode", fp32_key(), 4_000_000, 4_000_100, spec)
        )
    # a Pi 5 core scores about a third of a Snapdragon 8 Gen 3's prime core
    assert encode["raspberry-pi-5"] > 2.5 * encode["flagship-phone"]
