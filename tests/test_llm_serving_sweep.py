"""``benchmarks.llm_serving --slicer-llm``: its sweep pairs every slicer-llm with its split's
profile and validates as a sweep of the bundled scenario."""

from __future__ import annotations

import json

from benchmarks.llm_serving import SCENARIO, slicer_llm_sweep
from codec._llm_profile import shipped, shipped_splits
from scenarios import load
from scenarios.sweep import expand


def test_every_slicer_llm_point_names_its_own_split_profile() -> None:
    sweep = slicer_llm_sweep(3.0)
    points = expand(load(SCENARIO, ["sweep=" + json.dumps(sweep)]))
    splits = shipped_splits("smollm2-135m")
    assert splits and all(f"smollm2-135m/{s}" in shipped() for s in splits)
    assert len(points) == 3 * 3 * len(splits)
    seen = set()
    for point in points:
        group = point.scenario.fleet[0]
        config = point.scenario.codec.config()
        if config["id"] == "slicer-llm":
            assert config["profile"] == f"smollm2-135m/{group.split}"
            assert config["bits"] == 3.0
        seen.add((group.split, config["id"]))
    assert seen == {(s, c) for s in splits for c in ("fp16", "slicer", "slicer-llm")}
