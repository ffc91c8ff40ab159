"""``fleet.run.calibration.check_coverage`` knows an adaptive group's heads: a head the
calibration does not record is a ``ScenarioError`` naming its field, before any compute."""

from __future__ import annotations

from pathlib import Path

import pytest

import scenarios
from fleet.run.calibration import check_coverage, heads
from scenarios import ScenarioError

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
SLICER = {"id": "slicer", "max_nmse": 0.001}


def _replayed(options: list[dict[str, object]]) -> list[scenarios.RunSpec]:
    policy = {"kind": "adaptive", "slo_s": 1.0, "options": options}
    main = scenarios.load(LIBRARY / "quickstart.yaml", ["sweep=null", f"fleet[0].policy={policy}"])
    return scenarios.expand(main)


def _calibration() -> tuple[str, list[scenarios.RunSpec]]:
    path = str(LIBRARY / "quickstart-calibration.yaml")
    return path, scenarios.expand(scenarios.load(path))


def test_an_adaptive_groups_heads_are_every_option_with_the_groups_codec_by_default() -> None:
    (point,) = _replayed([{"split": 16}, {"split": 28, "codec": SLICER}])
    got = [(field, key[5], key[6]) for field, key in heads(point.scenario)]
    assert [g[:2] for g in got] == [
        ("fleet[0].split", 4),
        ("fleet[0].policy.options[0]", 16),
        ("fleet[0].policy.options[1]", 28),
    ]
    assert got[1][2] == got[0][2] != got[2][2]


def test_calibrated_options_pass() -> None:
    path, specs = _calibration()
    check_coverage(path, specs, _replayed([{"split": 16}, {"split": 28, "codec": SLICER}]))


def test_an_option_the_calibration_lacks_is_a_scenario_error_naming_its_field() -> None:
    path, specs = _calibration()
    replayed = _replayed([{"split": 16}, {"split": 8, "codec": SLICER}])
    with pytest.raises(ScenarioError, match="does not record what this scenario replays") as info:
        check_coverage(path, specs, replayed)
    text = str(info.value)
    assert text.startswith("replay_from: ")
    assert "fleet[0].policy.options[1]: ('smollm2-135m'" in text
    assert "options[0]" not in text  # split 16 with fp16 is calibrated
