"""The resource estimate and its limits (``fleet.run.estimate``) on small hand-made scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.run.estimate import BASE_BYTES, BYTES_PER_REQUEST, Limits, estimate, problems
from fleet.run.runner import run
from scenarios import ScenarioError
from tests.fleet.simkit import scenario, write_profile

PROFILE = Path("/nonexistent/profile.parquet")  # never read: nothing runs


def test_requests_follow_the_arrival_process() -> None:
    poisson = scenario(
        PROFILE,
        requests_per_device=None,
        duration_s=10.0,
        fleet0={"count": 4, "arrivals": {"kind": "poisson", "rate_per_s": 0.5}},
    )
    est = estimate(poisson)
    assert (est.devices, est.requests, est.horizon_s) == (4, 20.0, 10.0)
    assert est.memory_bytes > BASE_BYTES + 20 * BYTES_PER_REQUEST
    periodic = scenario(PROFILE, requests_per_device=3, fleet0={"count": 2})
    assert estimate(periodic).requests == 6.0 and estimate(periodic).horizon_s == 3.0


def test_each_limit_names_its_field() -> None:
    s = scenario(
        PROFILE,
        requests_per_device=None,
        duration_s=100.0,
        fleet0={
            "count": 10,
            "uplink": {"bandwidth_mbps": 10, "outages": {"mean_gap_s": 1.0, "mean_s": 1.0}},
        },
        servers={"replicas": 2, "failures": {"mtbf_s": 10.0, "mttr_s": 10.0}},
        record={"window_s": 0.5},
    )
    est = estimate(s)
    assert est.link_windows == pytest.approx(10 * (100 / 2 + 1))
    assert est.failures == pytest.approx(2 * (100 / 20 + 1))
    assert est.server_windows == pytest.approx(2 * (100 / 0.5 + 1))
    tight = Limits(memory_bytes=1.0, events=1.0, link_windows=1.0, failures=1.0, server_windows=1.0)
    # 100 requests per device from 10 devices: the arrivals, more than the count, decide (the
    # events limit is not repeated where memory already names the same fields)
    assert [p.path for p in problems(s, tight)] == [
        "fleet[0].arrivals",
        "fleet[0].uplink.outages",
        "servers.failures",
        "record.window_s",
    ]
    assert problems(s, Limits(memory_bytes=1e12)) == []
    (events,) = problems(s, Limits(memory_bytes=1e12, events=1.0, link_windows=1e9))
    assert events.path == "fleet[0].arrivals" and "events a run may take" in events.message


def test_run_refuses_before_writing_anything_unless_told_to_ignore_limits(tmp_path: Path) -> None:
    s = scenario(write_profile(tmp_path / "profile"))
    out = tmp_path / "out"
    with pytest.raises(ScenarioError, match=r"fleet\[0\]\.count: about 1 requests"):
        run(s, out, quiet=True, limits=Limits(memory_bytes=1.0))
    assert not out.exists()
    (result,) = run(s, out, quiet=True, limits=Limits(memory_bytes=1.0), ignore_limits=True)
    assert result.summary["completed"] == 1
