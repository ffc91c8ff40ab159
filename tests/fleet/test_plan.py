"""``slicer plan`` (``fleet.plan``): the search finds the exhaustive optimum with few
simulations, on hand-made monotone tables and on a small replayed grid; the files it writes
run."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleet.plan.output import plan
from fleet.plan.search import Goal, Verdict, exhaustive, search
from fleet.plan.space import Config, Space
from records.tables import PROFILE_SCHEMA, TableWriter
from server.engine.jobs import full_codec_key
from tests.fleet.simkit import MODEL, scenario


def _tables(rng: np.random.Generator, configs: int, counts: list[int]) -> dict[Any, float]:
    """A p95 per (config, replicas) that never rises with replicas."""
    table = {}
    for c in range(configs):
        floor = rng.uniform(0.2, 1.5)
        excess = np.sort(rng.uniform(0, 3, len(counts)))[::-1]
        excess[rng.integers(0, len(counts) + 1) :] = 0.0  # no queueing from some count on
        for r, e in zip(counts, excess, strict=True):
            table[(c, r)] = floor + e
    return table


def _fake(configs: int, counts: list[int]) -> tuple[Space, list[Verdict]]:
    cs = [Config(i, {"c": i}, {r: (i, r) for r in counts}) for i in range(configs)]  # type: ignore[misc]
    grid = Space(None, cs, counts, {})  # type: ignore[arg-type]
    return grid, [
        Verdict(c, quality_loss=0.0, latency_bound_s=0.0, fewest_replicas=counts[0]) for c in cs
    ]


@pytest.mark.parametrize("seed", range(40))
def test_the_search_finds_the_exhaustive_optimum_on_monotone_tables(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = [1, 2, 3, 4, 6, 8, 12, 16]
    table = _tables(rng, 6, counts)
    goal = Goal(slo_s=1.0)
    calls: list[Any] = []

    def simulate(point: Any) -> dict[str, Any]:
        calls.append(point)
        return {"p95_latency_s": table[point], "requests": 10, "dropped": 0, "failed": 0}

    grid, verdicts = _fake(6, counts)
    found = search(grid, verdicts, goal, simulate)
    searched = len(calls)
    grid, verdicts = _fake(6, counts)
    truth = exhaustive(grid, verdicts, goal, simulate)
    assert (found is None) == (truth is None)
    if truth is not None:
        assert found is not None
        assert (found.config.index, found.answer) == (truth.config.index, truth.answer)
    assert searched <= len(calls) / 2  # 48 points: binary search and the bound at least halve


def _profile(directory: Path, rows: list[tuple[int, dict[str, Any], int, float]]) -> Path:
    """A profile with one input per (split, codec, payload bytes, agreement)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(rows)
    with TableWriter(directory / "profile.parquet", PROFILE_SCHEMA) as writer:
        writer.append(
            {
                "model": [MODEL] * n,
                "split": [r[0] for r in rows],
                "codec": [full_codec_key(r[1]) for r in rows],
                "codec_id": [r[1]["id"] for r in rows],
                "input_id": [0] * n,
                "seq_len": [8] * n,
                "raw_bytes": [200_000] * n,
                "payload_bytes": [r[2] for r in rows],
                "result_bytes": [4] * n,
                "agreement": [r[3] for r in rows],
                "head_wall_s": [0.0] * n,
                "tail_wall_s": [0.0] * n,
                "prompts": ["lee-background"] * n,
            }
        )
    return directory


FP32, FP16 = {"id": "fp32"}, {"id": "fp16"}
PAYLOADS = {
    (2, "fp32"): (200_000, 1.0),  # 0.8 s on 2 Mbit/s: the latency bound rules it out
    (2, "fp16"): (50_000, 1.0),
    (4, "fp32"): (160_000, 1.0),  # 0.64 s: ruled out
    (4, "fp16"): (40_000, 1.0),
    (8, "fp32"): (60_000, 1.0),
    (8, "fp16"): (30_000, 0.8),  # the fastest, but it loses 20% agreement
}


def _grid(tmp_path: Path) -> Any:
    rows = [(sp, {"id": c}, p, a) for (sp, c), (p, a) in PAYLOADS.items()]
    profile = _profile(tmp_path / "calibration", rows)
    return scenario(
        profile,
        requests_per_device=None,
        duration_s=10.0,
        seeds="shared",
        fleet0={
            "count": 100,
            "hardware": "flagship-phone",
            "arrivals": {"kind": "poisson", "rate_per_s": 1.25},
            "uplink": {"bandwidth_mbps": 2.0, "delay_s": 0.01},
            "downlink": {"bandwidth_mbps": 50.0, "delay_s": 0.01},
        },
        servers={
            "hardware": "l4",
            "batching": "none",
            "service": {"kind": "deterministic", "mean_s": 0.02},
        },
        sweep={
            "fleet[0].split": [2, 4, 8],
            "codec": [FP32, FP16],
            "servers.replicas": [1, 2, 3, 4, 6],
            "fleet[0].count": [100, 1000],  # not searched: planned at 100
        },
    )


def test_plan_matches_the_exhaustive_sweep_with_a_fifth_of_the_points(tmp_path: Path) -> None:
    s = _grid(tmp_path)
    goal = Goal(slo_s=0.5)
    found = plan(s, goal, tmp_path / "plan")
    truth = plan(s, goal, tmp_path / "full", full=True)
    assert found.space.points == 30 and len(truth.simulated) == 30
    assert len(found.simulated) <= 30 / 5
    assert found.recommended() is not None
    picked = {k: v for k, v in found.recommended().items() if k != "slo_attainment"}  # type: ignore[union-attr]
    assert picked == {k: v for k, v in truth.recommended().items() if k != "slo_attainment"}  # type: ignore[union-attr]
    assert picked["params"] == {"fleet[0].split": 4, "codec": FP16} and picked["replicas"] == 3
    why = {v.config.label: v.pruned for v in found.verdicts}
    assert why["fleet[0].split=8 codec={id:fp16}"].startswith("quality loss 0.200")
    assert why["fleet[0].split=2 codec={id:fp32}"].startswith("latency bound")
    assert found.space.dropped == {"fleet[0].count": [100, 1000]}
    doc = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert doc["simulated_points"] == len(found.simulated) and doc["grid_points"] == 30
    assert doc["recommended"]["replicas"] == 3 and doc["pareto"]


def test_the_written_scenario_runs_the_recommendation(tmp_path: Path) -> None:
    import scenarios
    from fleet.run.runner import run

    s = _grid(tmp_path)
    plan(s, Goal(slo_s=0.5), tmp_path / "plan")
    planned = scenarios.load(tmp_path / "plan" / "plan.yaml")
    assert planned.sweep is None and planned.servers.replicas == 3
    assert planned.fleet[0].split == 4 and planned.codec.id == "fp16"
    [result] = run(planned, tmp_path / "run", quiet=True)
    assert result.summary["p95_latency_s"] <= 0.5


def test_goals_are_checked() -> None:
    with pytest.raises(ValueError, match="--minimize must be one of"):
        Goal(slo_s=1.0, minimize="money")
    with pytest.raises(ValueError, match="--slo-s must be a positive"):
        Goal(slo_s=-1.0)
    assert math.isfinite(Goal(slo_s=1.0).slo_s)
    assert list(itertools.islice(range(3), 1)) == [0]
