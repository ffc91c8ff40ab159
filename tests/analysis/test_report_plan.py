"""The report's "Recommended configuration" section from a hand-written plan.json."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.report_html import Table, Text
from analysis.report_plan import plan_section

PLAN = {
    "goal": {
        "slo_s": 1.0,
        "metric": "p95_latency_s",
        "minimize": "replicas",
        "max_quality_loss": 0.05,
    },
    "grid_points": 12,
    "simulated_points": 2,
    "recommended": {
        "config": "fleet[0].split=4 codec={id:slicer}",
        "replicas": 1,
        "p95_latency_s": 0.62,
        "server_busy_s_per_request": 0.001,
        "device_energy_j_per_request": 0.3,
        "uplink_bytes_per_request": 22000.0,
        "slo_attainment": 0.99,
        "quality_loss": 0.05,
    },
    "pareto": [
        {
            "config": "fleet[0].split=4 codec={id:slicer}",
            "replicas": 1,
            "server_busy_s_per_request": 0.001,
            "device_energy_j_per_request": 0.3,
            "uplink_bytes_per_request": 22000.0,
            "p95_latency_s": 0.62,
        }
    ],
}


def test_no_plan_no_section(tmp_path: Path) -> None:
    assert plan_section(tmp_path) is None


def test_the_section_shows_the_recommendation_and_the_pareto_set(tmp_path: Path) -> None:
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "plan.json").write_text(json.dumps(PLAN))
    section = plan_section(tmp_path)
    assert section is not None and section.title == "Recommended configuration"
    texts = [b.text for b in section.blocks if isinstance(b, Text)]
    assert "simulated 2 of the 12 points" in texts[0]
    tables = [b for b in section.blocks if isinstance(b, Table)]
    assert tables[0].rows[0] == ["configuration", "fleet[0].split=4 codec={id:slicer}"]
    assert ["replicas", 1] in tables[0].rows
    assert tables[1].rows == [["fleet[0].split=4 codec={id:slicer}", 1, 0.001, 0.3, 22000.0, 0.62]]
