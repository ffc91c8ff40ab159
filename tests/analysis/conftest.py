"""Tiny real result directories for the analysis tests, made once per session by the simulator
in replay mode (a hand-written profile, so no model loads and no Ray starts): an infer run, a
sweep over fleet size and replicas, and a generate run. They are shared: a test that writes
into one (a report, a comparison) works on its own copy (``shutil.copytree``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scenarios import Scenario
from tests.fleet.simkit import MODEL, scenario, write_generations, write_profile

#: Free text from the scenario file: the report must escape it.
RISKY_DESCRIPTION = "tiny <b>fleet</b> & 'friends' <script>alert(1)</script>"


def _infer(profile: Path, **changes: Any) -> Scenario:
    """Eight devices on a 10 Mbit/s uplink, a real device spec, two replicas serving in 50 ms
    on average (exponential), so queues build as the fleet grows."""
    data: dict[str, Any] = {
        "name": "tiny-infer",
        "description": RISKY_DESCRIPTION,
        "requests_per_device": 4,
        **changes,
    }
    return scenario(
        profile,
        fleet0={
            "count": 8,
            "hardware": "raspberry-pi-5",
            "arrivals": {"kind": "poisson", "rate_per_s": 2.0},
            "uplink": {"bandwidth_mbps": 10.0, "delay_s": 0.01},
            "downlink": {"bandwidth_mbps": 50.0},
        },
        servers={
            "replicas": 2,
            "hardware": "l4",
            "queue_limit": 6,
            "service": {"kind": "exponential", "mean_s": 0.05},
        },
        **data,
    )


def make_run(root: Path) -> Path:
    """A completed infer run under ``root``: 8 devices x 4 requests, none dropped."""
    from fleet.run.runner import run_one

    write_profile(root / "profile", payload_bytes=[800, 1200, 2500, 4000])
    out = root / "run"
    run_one(_infer(root / "profile"), out, quiet=True)
    return out


def make_sweep(root: Path, sweep: dict[str, list[Any]] | None = None) -> Path:
    """A sweep under ``root``, by default fleet[0].count x servers.replicas: 3 x 2 points; 64
    devices overload one replica (queues, drops), so latency grows with the fleet."""
    from fleet.run.runner import run

    write_profile(root / "profile", payload_bytes=[800, 1200, 2500, 4000])
    s = _infer(
        root / "profile",
        name="tiny-sweep",
        requests_per_device=3,
        ray={"parallel_sweep": False},
        sweep=sweep or {"fleet[0].count": [1, 8, 64], "servers.replicas": [1, 2]},
    )
    out = root / "sweep"
    run(s, out, quiet=True)
    return out


def make_generate(root: Path) -> Path:
    """A replayed task: generate run from a hand-written generations.parquet, under ``root``."""
    from fleet.run.runner import run_one

    profile = root / "gen-profile"
    write_generations(profile)
    s = scenario(
        profile,
        name="tiny-generate",
        requests_per_device=2,
        model={"name": MODEL, "task": "generate", "seq_len": 8, "max_new_tokens": 3, "inputs": 2},
        fleet0={
            "count": 6,
            "hardware": "raspberry-pi-5",
            "arrivals": {"kind": "poisson", "rate_per_s": 1.0},
            "uplink": {"bandwidth_mbps": 1.0},
        },
        servers={"replicas": 1, "hardware": "l4"},
    )
    out = root / "generate"
    run_one(s, out, quiet=True)
    return out


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("infer"))


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="session")
def generate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generate(tmp_path_factory.mktemp("generate"))


def manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return data
