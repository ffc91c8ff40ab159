"""Sweep expansion: grid and zip order, names, per-point seeds, bad sweeps, re-validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenarios import RunSpec, Scenario, ScenarioError, expand, load, loads
from scenarios.sweep import MAX_POINTS, point_seed

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
    assert [s.name for s in specs[:2]] == ["000-count=10-id=fp16", "001-count=10-id=int8"]
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
    assert specs[0].name == "000-fleet.0.split=1-fleet.1.split=4"


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
    expected = np.random.SeedSequence(7, spawn_key=(2,)).generate_state(1, dtype=np.uint32)[0]
    assert seeds[2] == point_seed(7, 2) == int(expected)
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
    one, two = (requests(p) for p in sorted((tmp_path / "out").glob("00*")))
    assert [r["t_arrival_s"] for r in one] == [r["t_arrival_s"] for r in two]


def test_names_are_filesystem_safe_padded_and_short() -> None:
    specs = sweep_of(
        "  codec: [{id: slicer, max_nmse: 0.01}, fp16]\n"
        "  fleet[0]:\n"
        "    - {name: x, count: 1, hardware: ideal, split: 0, arrivals: {kind: poisson, "
        "rate_per_s: 1}}\n"
        "  description: ['a long description: with spaces, commas and more text than fits']\n"
    )
    assert specs[0].name == (
        "000-codec=id_slicer_max_nmse_0.01-fleet.0=name_x_count_1_hardware_ideal_split_0"
    )
    assert specs[1].name.startswith("001-codec=fp16-fleet.0=name_x_count_1_")
    for spec in specs:
        assert len(spec.name) <= 80
        assert all(c.isalnum() or c in "_.=-" for c in spec.name)
    many = sweep_of("  fleet[0].count: [" + ", ".join(str(i) for i in range(1, 1002)) + "]\n")
    assert many[0].name == "0000-count=1" and many[-1].name == "1000-count=1001"


def test_points_are_validated_and_reported_at_their_sweep_entry() -> None:
    assert sweep_problems("  fleet[0].count: [1, -1, 0]\n") == [
        ("sweep.fleet[0].count", "point 1 (fleet[0].count=-1): must be >= 1, got -1"),
        ("sweep.fleet[0].count", "point 2 (fleet[0].count=0): must be >= 1, got 0"),
    ]
    grouped = sweep_problems("  servers.replicas: [1, 2]\n  fleet[0].arrivals.rate_per_s: [-1]\n")
    assert grouped == [
        (
            "sweep.fleet[0].arrivals.rate_per_s",
            "points 0-1 (fleet[0].arrivals.rate_per_s=-1): must be > 0, got -1",
        )
    ]
    nested = sweep_problems("  servers: [{replicas: 0}]\n")
    assert nested == [
        (
            "sweep.servers",
            "point 0 (servers={'replicas': 0}): servers.replicas: must be >= 1, got 0",
        )
    ]
    unknown = sweep_problems("  fleet[0].cnt: [1]\n")
    assert unknown[0][0] == "sweep.fleet[0].cnt"
    assert "unknown key; allowed here: name, count," in unknown[0][1]
    both = sweep_problems("  requests_per_device: [5]\n")
    assert both == [
        (
            "sweep",
            "point 0 (requests_per_device=5): give exactly one of duration_s and "
            "requests_per_device",
        )
    ]


def test_sweep_structure_errors() -> None:
    assert sweep_problems("  fleet[0].count: 10\n") == [
        ("sweep.fleet[0].count", "must be a non-empty list of values, got 10 (an integer)")
    ]
    assert sweep_problems("  fleet[0].count: []\n")[0][1].startswith("must be a non-empty list")
    assert sweep_problems("  zip:\n    fleet[0].count: [1, 2]\n    codec.id: [fp16]\n") == [
        ("sweep.zip", "lists must have equal lengths; got fleet[0].count: 2, codec.id: 1")
    ]
    assert sweep_problems("  zip: [1]\n")[0][0] == "sweep.zip"
    missing = sweep_problems("  fleet[5].count: [1, 2]\n")
    assert missing == [
        (
            "sweep.fleet[5].count",
            "fleet has 2 item(s), so [5] does not exist; change an existing item, or set the "
            "whole list (fleet=[...])",
        )
    ]
    for key in ("seed", "name", "sweep.x"):
        (problem,) = sweep_problems(f"  {key}: [1, 2]\n")
        assert problem[0] == f"sweep.{key}" and problem[1].startswith("cannot be swept")
    overlap = sweep_problems("  codec: [fp16]\n  zip:\n    codec.id: [int8]\n")
    assert overlap == [
        ("sweep.zip.codec.id", "sets the same place as sweep.codec; keep one of them")
    ]
    assert sweep_problems("  {}\n")[0][0] == "sweep"
    assert sweep_problems("  fleet[x]: [1]\n")[0][1].startswith("cannot read this path")
    assert sweep_problems("  zip: {1: [1]}\n") == [
        ("sweep.zip.1", "a path is text like fleet[0].count, got 1 (an integer)")
    ]
    assert sweep_problems("  servers.replicas: [1]\n  zip: {}\n") == [
        ("sweep.zip", "must be a mapping of path: [values], got {} (a mapping)")
    ]


def test_too_many_points_are_refused_before_expanding() -> None:
    values = "[" + ", ".join(str(i) for i in range(1, 401)) + "]"
    block = f"  fleet[0].count: {values}\n  fleet[1].count: {values}\n"
    assert MAX_POINTS < 400 * 400
    assert sweep_problems(block) == [
        ("sweep", f"160000 points, more than {MAX_POINTS}; sweep fewer")
    ]


def test_revalidating_a_dump_is_idempotent() -> None:
    s = load(BASE, ["codec={id: slicer, max_nmse: 0.01}", "servers.batching=none"])
    assert Scenario.model_validate(s.model_dump()) == s
    assert Scenario.model_validate(s.model_dump(exclude_unset=True)) == s
    assert Scenario.model_validate(s.model_dump(mode="json")) == s
    for spec in sweep_of("  fleet[0].count: [1, 2]\n"):
        assert Scenario.model_validate(spec.scenario.model_dump()) == spec.scenario


def test_a_point_changing_a_links_trace_infers_its_kind_anew() -> None:
    """The base group's uplink is {bandwidth_mbps: 20}: constant by inference, not by name."""
    (spec,) = sweep_of("  fleet[0].uplink.trace: ['synthetic:5g']\n")
    uplink = spec.scenario.fleet[0].uplink
    assert uplink is not None and (uplink.kind, uplink.trace) == ("trace", "synthetic:5g")
    with pytest.raises(ScenarioError, match="a constant link takes no trace"):
        sweep_of("  fleet[0].uplink.trace: ['synthetic:5g']\n", "fleet[0].uplink.kind=constant")


def test_file_paths_in_sweep_values_resolve_against_the_scenario(tmp_path: Path) -> None:
    text = BASE_TEXT + (
        "sweep:\n  fleet[0].uplink: [{trace: 'file:a.log', format: csv}]\n"
        "  zip:\n    fleet[0].downlink.trace: ['file:/abs/b.log']\n"
        "    fleet[0].downlink.format: [mahimahi]\n"
    )
    (tmp_path / "s.yaml").write_text(text)
    (spec,) = expand(load(tmp_path / "s.yaml"))
    up, down = spec.scenario.fleet[0].uplink, spec.scenario.fleet[0].downlink
    assert up is not None and up.trace == f"file:{tmp_path / 'a.log'}"
    assert down is not None and down.trace == "file:/abs/b.log"
    assert spec.params["fleet[0].uplink"] == {
        "trace": f"file:{tmp_path / 'a.log'}",
        "format": "csv",
    }
