"""``benchmarks.llm_serving --slicer-llm``: its sweep pairs every slicer-llm with its split's
profile and validates as a sweep of the bundled scenario; its SLO table names the winning codec."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.llm_serving import SCENARIO, slicer_llm_sweep, slo_table
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


def _row(split: int, codec: str, busy_s: float, bits: float, p95_tpot_s: float) -> dict[str, Any]:
    return {
        "devices": 10,
        "split": split,
        "codec": codec,
        "codec_id": codec.split("(")[0],
        "server_busy_s_per_token": busy_s,
        "uplink_bits_per_token": bits,
        "p95_tpot_s": p95_tpot_s,
        "completed": 5,
        "requests": 5,
    }


def test_slo_table_names_the_winning_codec_and_breaks_ties_on_bits() -> None:
    rows = [
        _row(4, "fp16", 1.5e-3, 27_000.0, 0.044),
        _row(16, "fp16", 0.9e-3, 27_000.0, 0.048),
        _row(16, "slicer(max_nmse=0.001)", 0.9e-3, 8_600.0, 0.048),
        _row(16, "slicer-llm(profile=smollm2-135m/16,bits=3.0)", 0.9e-3, 5_500.0, 0.048),
        _row(28, "slicer(max_nmse=0.001)", 0.26e-3, 8_700.0, 0.052),  # over the SLO
    ]
    _, body = slo_table(rows, 0.05)
    assert body == [["10", "split 4", "1.5e+03", "split 16 slicer-llm", "900", "1.67x"]]
