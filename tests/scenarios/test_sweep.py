"""Sweep expansion: grid and zip order, names, per-point seeds, bad sweeps, re-validation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from scenarios import RunSpec, ScenarioError, expand, load, loads
from scenarios.sweep import point_seed, values_key

BASE = Path(__file__).with_name("base.yaml")
BASE_TEXT = BASE.read_text()


def sweep_of(block: str, *overrides: str) -> list[RunSpec]:
    """Expand the base scenario with ``block`` (YAML lines below ``sweep:``) appended."""
    return expand(loads(BASE_TEXT + "sweep:\n" + block, "s.yaml", overrides))


def sweep_problems(block: str) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as caught:
        loads(BASE_TEXT + "sweep:\n" + block, "s.yaml")
    return [(p.path, p.message) for p in caught.value.problems]


def test_no_sweep_is_one_run_with_the_scenario_itself() -> None:
    s = load(BASE)
    (spec,) = expand(s)
    assert (spec.index, spec.name, spec.params) == (0, "run", {})
    assert spec.scenario is s and spec.scenario.seed == 7


def test_grid_varies_the_first_key_slowest() -> None:
    specs = sweep_of("  fleet[0].count: [10, 20]\n  codec.id: [fp16, int8, bf16]\n")
    assert [s.index for s in specs] == list(range(6))
    assert [s.params for s in specs] == [
        {"fleet[0].count": c, "codec.id": i} for c in (10, 20) for i in ("fp16", "int8", "bf16")
    ]
    assert [s.name for s in specs[:2]] == ["count=10-id=fp16", "count=10-id=int8"]
    assert [(s.scenario.fleet[0].count, s.scenario.codec.id) for s in specs] == [
        (c, i) for c in (10, 20) for i in ("fp16", "int8", "bf16")
    ]
    assert all(s.scenario.sweep is None for s in specs)
    assert all(s.scenario.fleet[1].count == 5 for s in specs)


def test_zip_walks_its_lists_together() -> None:
    specs = sweep_of("  zip:\n    fleet[0].split: [1, 2, 3]\n    fleet[1].split: [4, 5, 6]\n")
    assert [(s.scenario.fleet[0].split, s.scenario.fleet[1].split) for s in specs] == [
        (1, 4),
        (2, 5),
        (3, 6),
    ]
    # two params share the short name "split": the names use their whole paths
    assert specs[0].name == "fleet.0.split=1-fleet.1.split=4"


def test_grid_times_zip_puts_the_zip_rows_innermost() -> None:
    specs = sweep_of(
        "  servers.replicas: [1, 2]\n"
        "  zip:\n    codec.id: [fp16, int8]\n    fleet[0].count: [3, 4]\n"
    )
    assert [
        (s.scenario.servers.replicas, s.scenario.codec.id, s.scenario.fleet[0].count) for s in specs
    ] == [(1, "fp16", 3), (1, "int8", 4), (2, "fp16", 3), (2, "int8", 4)]
    assert list(specs[0].params) == ["servers.replicas", "codec.id", "fleet[0].count"]


def test_each_point_has_its_own_stable_seed() -> None:
    specs = sweep_of("  fleet[0].count: [1, 2, 3, 4]\n")
    seeds = [s.scenario.seed for s in specs]
    assert len(set(seeds)) == 4 and 7 not in seeds
    key = values_key({"fleet[0].count": 3})
    expected = np.random.SeedSequence(7, spawn_key=key).generate_state(1, dtype=np.uint32)[0]
    assert seeds[2] == point_seed(7, {"fleet[0].count": 3}) == int(expected)
    assert [s.scenario.seed for s in sweep_of("  fleet[0].count: [1, 2, 3, 4]\n")] == seeds
    other = sweep_of("  fleet[0].count: [1, 2, 3, 4]\n", "seed=8")
    assert not set(seeds) & {s.scenario.seed for s in other}


def test_shared_seeds_run_every_point_with_the_scenarios_seed() -> None:
    specs = sweep_of("  fleet[0].count: [1, 2, 3]\n", "seeds=shared")
    assert [s.scenario.seed for s in specs] == [7, 7, 7]
    assert {s.scenario.seeds for s in specs} == {"shared"}


def test_shared_seeds_give_common_arrivals_across_points(tmp_path: Path) -> None:
    """Two points that differ only in replicas see the very same requests."""
    from fleet.run.runner import run
    from tests.fleet.simkit import requests, scenario, write_profile

    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        seeds="shared",
        requests_per_device=5,
        fleet0={"count": 3, "arrivals": {"kind": "poisson", "rate_per_s": 2.0}},
        sweep={"servers.replicas": [1, 2]},
        ray={"parallel_sweep": False},
    )
    run(s, tmp_path / "out", quiet=True)
    one, two = (requests(p) for p in sorted((tmp_path / "out").glob("replicas=*")))
    assert [r["t_arrival_s"] for r in one] == [r["t_arrival_s"] for r in two]


def test_names_are_filesystem_safe_and_short_with_a_hash_where_they_drop_something() -> None:
    specs = sweep_of(
        "  codec: [{id: slicer, max_nmse: 0.01}, fp16]\n"
        "  fleet[0]:\n"
        "    - {name: x, count: 1, hardware: ideal, split: 0, arrivals: {kind: poisson, "
        "rate_per_s: 1}}\n"
        "  description: ['a long description: with spaces, commas and more text than fits']\n"
    )
    first = "codec=id_slicer_max_nmse_0.01-fleet.0=name_x_count_1_hardware_ideal_split_0"
    assert specs[0].name.startswith(first[:71]) and re.fullmatch(r".*-[0-9a-f]{8}", specs[0].name)
    assert specs[1].name.startswith("codec=fp16-fleet.0=name_x_count_1_")
    assert specs[0].name[-8:] != specs[1].name[-8:]
    for spec in specs:
        assert len(spec.name) <= 80
        assert all(c.isalnum() or c in "_.=-" for c in spec.name)
    many = sweep_of("  fleet[0].count: [" + ", ".join(str(i) for i in range(1, 1002)) + "]\n")
    assert many[0].name == "count=1" and many[-1].name == "count=1001"


def test_extending_a_grid_keeps_every_points_name_and_seed() -> None:
    """Names and seeds come from a point's values, never its position (issue 17)."""
    small = sweep_of("  fleet[0].count: [10, 100]\n  codec.id: [fp16, int8]\n")
    grown = sweep_of("  fleet[0].count: [1, 10, 100, 1000]\n  codec.id: [fp16, bf16, int8]\n")
    before = {s.name: (s.scenario.seed, s.params) for s in small}
    after = {s.name: (s.scenario.seed, s.params) for s in grown}
    assert len(after) == 12 and {k: after[k] for k in before} == before
    assert before["count=10-id=fp16"][0] == point_seed(
        7, {"fleet[0].count": 10, "codec.id": "fp16"}
    )


def test_a_value_listed_twice_runs_twice_with_its_own_seed() -> None:
    specs = sweep_of("  fleet[0].count: [1, 2, 1]\n")
    assert [s.name for s in specs] == ["count=1", "count=2", "count=1-2"]
    assert specs[2].scenario.seed == point_seed(7, {"fleet[0].count": 1}, repeat=2)
    assert len({s.scenario.seed for s in specs}) == 3
