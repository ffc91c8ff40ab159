"""One definition of every number: a run's ``summary.json`` is what ``records`` computes from the
Parquet files the run wrote, and the report (``analysis.run_metrics``) says the same under every
name the two share, for an infer run (with drops) and a generate run, both replayed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from analysis import load_run, run_metrics
from fleet.run.runner import run_one
from records import metrics
from records.summary import is_run_fact, summarize
from records.tables import read_table
from tests.fleet.simkit import MODEL, scenario, write_generations, write_profile


def _infer(tmp: Path) -> Path:
    """Twelve devices on a slow uplink, one replica with a short queue: queueing and drops."""
    write_profile(tmp / "profile", payload_bytes=[800, 1200, 2500, 4000])
    s = scenario(
        tmp / "profile",
        name="eq-infer",
        requests_per_device=3,
        fleet0={
            "count": 12,
            "hardware": "raspberry-pi-5",
            "arrivals": {"kind": "poisson", "rate_per_s": 4.0},
            "uplink": {"bandwidth_mbps": 5.0, "delay_s": 0.01},
            "downlink": {"bandwidth_mbps": 50.0},
        },
        servers={
            "replicas": 1,
            "hardware": "l4",
            "queue_limit": 2,
            "service": {"kind": "exponential", "mean_s": 0.08},
        },
    )
    return run_one(s, tmp / "run", quiet=True).path


def _generate(tmp: Path) -> Path:
    write_generations(tmp / "gen-profile")
    s = scenario(
        tmp / "gen-profile",
        name="eq-generate",
        requests_per_device=2,
        model={"name": MODEL, "task": "generate", "seq_len": 8, "max_new_tokens": 3, "inputs": 2},
        fleet0={
            "count": 5,
            "hardware": "raspberry-pi-5",
            "arrivals": {"kind": "poisson", "rate_per_s": 1.0},
            "uplink": {"bandwidth_mbps": 1.0},
        },
        servers={"replicas": 2, "hardware": "l4"},
    )
    return run_one(s, tmp / "run", quiet=True).path


@pytest.fixture(scope="module", params=["infer", "generate"])
def run_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp(request.param)
    return _infer(tmp) if request.param == "infer" else _generate(tmp)


def _json(value: Any) -> Any:
    """What ``summary.json`` stores for ``value``: NaN becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _recomputed(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Every figure from the Parquet files through ``records``; run facts from the summary."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    generate = manifest["scenario"]["model"]["task"] == "generate"
    return summarize(
        read_table(run_dir / "requests.parquet"),
        read_table(run_dir / "servers.parquet"),
        read_table(run_dir / "steps.parquet") if generate else None,
        replicas=manifest["scenario"]["servers"]["replicas"],
        sim_time_s=summary["sim_time_s"],
        decode_cores=manifest["decode_cores"],
    )


def test_summary_json_is_recomputed_from_the_parquet_files(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    figures = {k: v for k, v in summary.items() if not is_run_fact(k)}
    again = _recomputed(run_dir, summary)
    assert _json(again) == figures  # every figure, exactly, and no figure left out
    assert {k for k in summary if is_run_fact(k)} >= {"sim_time_s", "events"}
    assert all(summary[stage] is not None for stage in metrics.STAGES)


def test_the_report_says_what_summary_json_says(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    report = run_metrics(load_run(run_dir), slo_s=1.0)
    shared = [k for k in report if k in summary]
    assert set(report) - set(shared) == {"slo_attainment"}  # the one figure needing an SLO
    assert {k: _json(report[k]) for k in shared} == {k: summary[k] for k in shared}


def test_the_infer_run_drops_and_the_generate_run_has_tokens(run_dir: Path) -> None:
    """The scenarios exercise what they are meant to: drops, and token figures."""
    summary = json.loads((run_dir / "summary.json").read_text())
    if "tokens" in summary:
        assert summary["tokens"] > 0 and summary["p95_tpot_s"] is not None
        assert summary["tokens"] == read_table(run_dir / "steps.parquet").num_rows
    else:
        assert 0 < summary["dropped"] < summary["requests"]
        assert summary["drops_by_reason"] == {"queue_full": summary["dropped"]}
