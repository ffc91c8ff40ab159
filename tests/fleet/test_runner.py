"""Real compute, then replay: the documented workflow, end to end on MobileNetV2."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from fleet.run.runner import run_one
from scenarios import Scenario


def _scenario(**changes: object) -> Scenario:
    data = {
        "name": "vision",
        "seed": 5,
        "requests_per_device": 3,
        "model": {"name": "mobilenetv2", "inputs": 3},
        "codec": {"id": "slicer", "max_nmse": 0.03},
        "fleet": [
            {
                "name": "cams",
                "count": 2,
                "hardware": "jetson-orin-nano",
                "split": 7,
                "arrivals": {"kind": "poisson", "rate_per_s": 2.0},
                "uplink": {"trace": "synthetic:lte"},
            }
        ],
        "servers": {"replicas": 1, "hardware": "l4", "batching": {"max_batch": 4}},
    }
    data.update(changes)
    return Scenario.model_validate(data)


def test_real_run_records_a_profile_that_replay_samples(tmp_path: Path) -> None:
    real = run_one(_scenario(), tmp_path / "real", quiet=True)
    assert real.summary["completed"] == 6
    profile = pq.read_table(real.path / "profile.parquet").to_pylist()
    assert 1 <= len(profile) <= 3  # at most one row per distinct input
    sizes = {row["payload_bytes"] for row in profile}
    raw = {row["raw_bytes"] for row in profile}
    assert raw == {100352} and max(sizes) < 100352 / 5  # SLICER made the IF much smaller
    rows = pq.read_table(real.path / "requests.parquet").to_pylist()
    assert all(r["payload_bytes"] in sizes for r in rows)
    assert all(r["t_head_end_s"] > r["t_head_start_s"] for r in rows)  # the cost model ran
    manifest = json.loads((real.path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["mode"] == "real"

    fleet = [{**_scenario().fleet[0].model_dump(exclude_unset=True), "count": 50}]
    big = _scenario(mode="replay", replay_from=str(real.path), fleet=fleet)
    replay = run_one(big, tmp_path / "replay", quiet=True)
    assert replay.summary["completed"] == 150
    rows = pq.read_table(replay.path / "requests.parquet").to_pylist()
    assert {r["payload_bytes"] for r in rows} <= sizes
    assert not (replay.path / "profile.parquet").exists()
