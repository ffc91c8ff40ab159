"""The README's scenario example and the bundled scenario files validate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import scenarios
from fleet.run.check import check

ROOT = Path(__file__).resolve().parents[2]


def test_readme_scenario_example_is_valid() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Scenario files", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    scenario = scenarios.loads(block.group(1), source="README.md")
    check(scenario)
    assert len(scenarios.expand(scenario)) == 6


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_scenarios_are_valid(path: Path) -> None:
    check(scenarios.load(path))
