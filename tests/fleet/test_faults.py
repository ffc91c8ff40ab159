"""Faults: failed compute, device dropouts, replica failures and link outages.

Exact schedules where a hand computation exists (outage windows, one request against a known
failure schedule), statistical checks with their tolerance stated otherwise, and the two rules
that hold whatever happens: every request has exactly one row, and the servers' busy time is
the sum of what requests were charged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import simpy

from fleet.arrivals import offline_arrivals
from fleet.compute.replay import ReplayOracle
from fleet.network.links import Link, OutageLink, SharedLink
from fleet.network.outages import FixedOutages, RandomOutages, first_outages
from fleet.network.traces import Trace, constant
from fleet.run.runner import run_one
from records.summary import reason_counts, summarize
from records.tables import REQUESTS_SCHEMA
from scenarios import ScenarioError, loads
from scenarios.schema import DeviceGroup, OnOffAvailability, ProbabilityAvailability
from server.engine.jobs import ComputeFailed, HeadJob, TailJob
from server.replica import ServerPool
from tests.fleet.simkit import fp32_key, requests, scenario, simulate, write_profile

Rows = list[dict[str, Any]]


class _Raises:
    def __init__(self, message: str) -> None:
        self._message = message

    def result(self) -> Any:
        raise ComputeFailed(self._message)


class FailingOracle:
    """Replays a profile, but the heads or tails of the chosen request ids fail."""

    def __init__(self, profile: Path, heads: Sequence[int] = (), tails: Sequence[int] = ()):
        self._inner = ReplayOracle([profile])
        self._heads, self._tails = set(heads), set(tails)
        self.tails_collected: list[int] = []

    def submit_heads(self, jobs: Sequence[HeadJob]) -> list[Any]:
        done = self._inner.submit_heads(jobs)
        return [
            _Raises(f"head died {j.request_id}") if j.request_id in self._heads else d
            for j, d in zip(jobs, done, strict=True)
        ]

    def submit_tails(self, jobs: Sequence[TailJob]) -> list[Any]:
        done = self._inner.submit_tails(jobs)
        return [
            _Raises(f"tail died {j.request_id}") if j.request_id in self._tails else d
            for j, d in zip(jobs, done, strict=True)
        ]

    works_ahead = False

    def prefetch(self, jobs: Sequence[HeadJob]) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return self._inner.stats()

    def close(self) -> None:
        pass


def _table(rows: Rows) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA)


def _once(rows: Rows, n: int) -> None:
    """Every request has exactly one row, with a known status."""
    assert [r["request_id"] for r in rows] == list(range(n))
    assert {r["status"] for r in rows} <= {"completed", "dropped", "failed"}
    assert all((r["reason"] == "") == (r["status"] == "completed") for r in rows)


# --------------------------------------------------------------------------- failed compute


def test_failed_head_frees_the_device_and_is_recorded(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=3,
        fleet0={"arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0}},
        servers={"service": {"kind": "deterministic", "mean_s": 0.25}},
    )
    output, rows = simulate(s, FailingOracle(profile, heads=[1]))
    _once(rows, 3)
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    failed = rows[1]
    assert failed["reason"] == "head: head died 1"
    assert (failed["t_head_start_s"], failed["t_head_end_s"]) == (1.0, 1.0)
    assert math.isnan(failed["t_uplink_start_s"]) and math.isnan(failed["t_done_s"])
    assert failed["replica_id"] == -1 and failed["payload_bytes"] == 0
    assert rows[2]["t_done_s"] == 2.25  # the device went on as usual
    assert (output.completed, output.dropped, output.failed) == (2, 0, 1)


def test_failed_tail_fails_alone_in_its_batch(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        fleet0={"count": 3, "arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0}},
        servers={
            "batching": {"max_batch": 3, "max_wait_s": 0.1},
            "service": {"kind": "deterministic", "mean_s": 0.5},
        },
    )
    output, rows = simulate(s, FailingOracle(profile, tails=[1]))
    _once(rows, 3)
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert rows[1]["reason"] == "tail: tail died 1"
    for row in rows:  # all three ran in one batch of 0.5 s; the failed one just has no answer
        assert (row["t_server_start_s"], row["t_server_end_s"], row["batch_size"]) == (0, 0.5, 3)
    assert math.isnan(rows[1]["agreement"]) and math.isnan(rows[1]["t_done_s"])
    assert rows[0]["t_done_s"] == rows[2]["t_done_s"] == 0.5
    summary = summarize(_table(rows), pa.table({"busy_s": [0.5]}), replicas=1, sim_time_s=1.0)
    assert (summary["completed"], summary["failed"]) == (2, 1)
    assert summary["failure_rate"] == pytest.approx(1 / 3)
    assert summary["mean_latency_s"] == 0.5  # over completed requests only
    assert reason_counts(_table(rows)) == {
        "drops_by_reason": {},
        "failures_by_reason": {"tail: tail died 1": 1},
    }
    assert output.failed == 1


# --------------------------------------------------------------------------- device dropouts


def test_probability_availability_drops_the_expected_share(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=5,
        fleet0={"count": 2000, "availability": {"kind": "probability", "p_available": 0.9}},
    )
    output, rows = simulate(s)
    _once(rows, 10_000)
    dropped = [r for r in rows if r["status"] == "dropped"]
    # binomial: sigma = sqrt(0.1 * 0.9 / 10,000) = 0.003; allow 4 sigma
    assert len(dropped) / 10_000 == pytest.approx(0.1, abs=0.012)
    assert output.dropped == len(dropped) and output.completed == 10_000 - len(dropped)
    for row in dropped:
        assert row["reason"] == "device_offline"
        assert math.isnan(row["t_head_start_s"]) and row["device_energy_j"] == 0.0


def test_on_off_availability_has_the_stated_means() -> None:
    """Arrivals every second on 50 devices for 20,000 s: the offline share is
    down / (up + down) and offline (online) stretches last down_s (up_s) on average."""
    spec = OnOffAvailability(kind="on-off", up_s=60.0, down_s=20.0)
    devices, seconds = 50, 20_000
    device = np.repeat(np.arange(devices), seconds)
    t_s = np.tile(np.arange(seconds, dtype=np.float64), devices)
    offline = offline_arrivals(spec, device, t_s, np.random.default_rng(3)).reshape(devices, -1)
    # about 12,500 periods of each kind: the share and the means hold to a few percent
    assert offline.mean() == pytest.approx(0.25, abs=0.015)
    edges = np.diff(offline.astype(np.int8), axis=1)
    starts_off, starts_on = (edges == 1).sum(), (edges == -1).sum()
    assert offline.sum() / starts_off == pytest.approx(20.0, rel=0.06)
    assert (~offline).sum() / starts_on == pytest.approx(60.0, rel=0.06)
    # devices are independent: the share offline at one instant varies binomially
    per_instant = offline.mean(axis=0)
    assert per_instant.std() == pytest.approx(math.sqrt(0.25 * 0.75 / devices), rel=0.15)


def test_availability_is_all_online_without_a_spec_and_any_order_works() -> None:
    rng = np.random.default_rng(0)
    device, t_s = rng.integers(0, 7, 500), rng.uniform(0, 100, 500)
    assert not offline_arrivals(None, device, t_s, rng).any()
    spec = OnOffAvailability(kind="on-off", up_s=5.0, down_s=5.0)
    forward = offline_arrivals(spec, device, t_s, np.random.default_rng(1))
    order = np.lexsort((t_s, device))
    sorted_ = offline_arrivals(spec, device[order], t_s[order], np.random.default_rng(1))
    assert np.array_equal(forward[order], sorted_)
    always = ProbabilityAvailability(kind="probability", p_available=1.0)
    assert not offline_arrivals(always, device, t_s, rng).any()


def test_on_off_availability_in_a_run(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=None,
        duration_s=2000.0,
        fleet0={
            "count": 20,
            "arrivals": {"kind": "poisson", "rate_per_s": 0.2},
            "availability": {"kind": "on-off", "up_s": 30.0, "down_s": 10.0},
        },
    )
    output, rows = simulate(s)
    _once(rows, output.requests)
    dropped = [r for r in rows if r["status"] == "dropped"]
    assert {r["reason"] for r in dropped} == {"device_offline"}
    # Poisson arrivals see time averages: 0.25 offline; about 2,000 periods, so within 0.05
    assert len(dropped) / len(rows) == pytest.approx(0.25, abs=0.05)


# --------------------------------------------------------------------------- replica failures


def _failure_scenario(profile: Path, on_failure: str, **servers: Any) -> Any:
    return scenario(
        profile,
        seed=4,
        fleet0={"arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0}},
        servers={
            "service": {"kind": "deterministic", "mean_s": 10.0},
            "failures": {"mtbf_s": 6.0, "mttr_s": 2.0, "on_failure": on_failure},
            **servers,
        },
    )


def _windows(s: Any, end_s: float) -> list[tuple[float, float]]:
    """Replica 0's (fail_s, repair_s) windows up to ``end_s``, from a fresh pool's draws."""
    from fleet.sim import Simulation

    sim = Simulation(
        s, ReplayOracle([s.replay_from]), run_id="w", codec_keys=[fp32_key()], sink=print
    )
    assert isinstance(sim.server, ServerPool)
    return sim.server.failure_windows(end_s)[0]


@pytest.mark.parametrize("routing", ["shared-queue", "round-robin"])
def test_reroute_retries_until_an_up_period_is_long_enough(tmp_path: Path, routing: str) -> None:
    """One request of 10 s on one replica: cut at every failure, queued again (with every
    replica down: at the one repaired first), restarted at the repair, done in the first up
    period of at least 10 s. Busy time stops at failures."""
    profile = write_profile(tmp_path / "profile")
    s = _failure_scenario(profile, "reroute", routing=routing)
    output, rows = simulate(s)
    _once(rows, 1)
    windows = _windows(s, 1e6)
    start_s, ran_s, enqueue_s = 0.0, 0.0, 0.0
    for fail_s, repair_s in windows:
        if fail_s - start_s >= 10.0:
            break
        ran_s += fail_s - start_s
        start_s, enqueue_s = repair_s, fail_s
    assert output.replica_failures >= 2  # the seed makes the request fail more than once
    row = rows[0]
    assert row["status"] == "completed" and row["replica_id"] == 0 and row["batch_size"] == 1
    assert row["t_server_enqueue_s"] == enqueue_s  # reset at the last failure
    assert row["t_server_start_s"] == start_s
    assert row["t_done_s"] == start_s + 10.0
    assert row["server_busy_s"] == pytest.approx(ran_s + 10.0, rel=1e-12)
    busy_s = sum(output.servers["busy_s"])
    assert busy_s == pytest.approx(ran_s + 10.0, rel=1e-12)
    failures = [w for w in windows if w[0] <= output.sim_time_s]
    assert output.replica_failures == len(failures)
    down_s = sum(min(r, output.sim_time_s) - f for f, r in failures)
    assert output.replica_down_s == pytest.approx(down_s, rel=1e-12)


def test_drop_policy_drops_the_batch_and_the_queue(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile")
    s = _failure_scenario(profile, "drop", routing="round-robin")
    s = s.model_copy(update={"fleet": [s.fleet[0].model_copy(update={"count": 3})]})
    output, rows = simulate(s)
    _once(rows, 3)
    fail_s = _windows(s, 1e6)[0][0]
    assert fail_s < 10.0  # the seed fails the replica during the first batch
    assert [(r["status"], r["reason"]) for r in rows] == [("dropped", "replica_failed")] * 3
    running, *queued = rows
    assert (running["replica_id"], running["t_server_start_s"]) == (0, 0.0)
    assert math.isnan(running["t_server_end_s"])
    assert running["server_busy_s"] == pytest.approx(fail_s, rel=1e-12)
    for row in queued:
        assert row["replica_id"] == -1 and math.isnan(row["t_server_start_s"])
    assert sum(output.servers["busy_s"]) == pytest.approx(fail_s, rel=1e-12)
    assert output.dropped == 3 and output.replica_failures >= 1


@pytest.mark.parametrize("routing", ["shared-queue", "least-loaded", "round-robin", "random"])
def test_reroute_serves_everything_once_and_never_while_down(tmp_path: Path, routing: str) -> None:
    profile = write_profile(tmp_path / "profile")
    s = scenario(
        profile,
        requests_per_device=None,
        duration_s=200.0,
        fleet0={"count": 30, "arrivals": {"kind": "poisson", "rate_per_s": 0.1}},
        servers={
            "replicas": 3,
            "routing": routing,
            "batching": {"max_batch": 4, "max_wait_s": 0.2},
            "service": {"kind": "exponential", "mean_s": 0.6},
            "failures": {"mtbf_s": 15.0, "mttr_s": 4.0},
        },
    )
    output, rows = simulate(s)
    _once(rows, output.requests)
    assert output.completed == output.requests and output.replica_failures >= 10
    from fleet.sim import Simulation

    fresh = Simulation(s, ReplayOracle([profile]), run_id="w", codec_keys=[fp32_key()], sink=print)
    assert isinstance(fresh.server, ServerPool)
    windows = fresh.server.failure_windows(output.sim_time_s)
    for row in rows:  # the batch that served a request ran while its replica was up
        start_s, end_s = row["t_server_start_s"], row["t_server_end_s"]
        for fail_s, repair_s in windows[row["replica_id"]]:
            assert end_s <= fail_s or start_s >= repair_s
    busy = sum(output.servers["busy_s"])
    assert busy == pytest.approx(sum(r["server_busy_s"] for r in rows), rel=1e-9)
    served = [(r["t_server_end_s"] - r["t_server_start_s"]) / r["batch_size"] for r in rows]
    assert busy >= sum(served) - 1e-9  # plus the work that failures cut short


# --------------------------------------------------------------------------- link outages


def test_outage_window_adds_its_overlap_to_a_transfer(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile", payload_bytes=[1000], result_bytes=40)
    windows = [{"start_s": 0.0005, "end_s": 0.0105}, {"start_s": 2.0, "end_s": 2.5}]
    s = scenario(
        profile,
        requests_per_device=3,
        fleet0={
            "arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0},
            "uplink": {"bandwidth_mbps": 8.0, "delay_s": 0.02, "outages": windows},
            "downlink": {"bandwidth_mbps": 1.0, "delay_s": 0.005, "outages": windows},
        },
    )
    _, rows = simulate(s)
    first, second, third = rows
    # 1000 B at 8 Mbps = 1 ms; the first outage overlaps it by 10 ms
    assert first["t_uplink_start_s"] == 0.0
    assert first["t_uplink_end_s"] == pytest.approx(0.001 + 0.01 + 0.02, rel=1e-12)
    assert second["t_uplink_end_s"] - second["t_uplink_start_s"] == pytest.approx(0.021)
    # the third is ready inside the second outage: it starts at once and waits it out
    assert third["t_uplink_start_s"] == 2.0
    assert third["t_uplink_end_s"] == pytest.approx(2.5 + 0.001 + 0.02, rel=1e-12)
    downlink_s = 40 * 8 / 1e6 + 0.005
    for row in rows:
        assert row["t_done_s"] - row["t_server_end_s"] == pytest.approx(downlink_s, rel=1e-9)


def test_cell_outage_pauses_every_flow(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile", payload_bytes=[2500])
    cell_uplink = {"bandwidth_mbps": 10.0, "outages": [{"start_s": 0.001, "end_s": 0.004}]}
    s = scenario(
        profile,
        fleet0={
            "count": 4,
            "arrivals": {"kind": "periodic", "period_s": 1.0, "phase_s": 0.0},
            "uplink": None,
            "cell": "tower",
        },
        network={"cells": [{"name": "tower", "uplink": cell_uplink}]},
    )
    _, rows = simulate(s)
    for row in rows:  # four equal flows share 10 Mbps for 8 ms of capacity, plus 3 ms down
        assert row["t_uplink_end_s"] == pytest.approx(4 * 2500 * 8 / 10e6 + 0.003, rel=1e-9)


def _gapped() -> tuple[Trace, FixedOutages]:
    """The same capacity twice: a trace with a zero step on [2, 3.5), and 1 B/s on [0, 5)
    with fixed outages on [2, 3.5) + 5 k for the first 100 loops (500 s)."""
    trace = Trace("gaps", np.array([0.0, 2.0, 3.5]), np.array([8.0, 0.0, 8.0]), 5.0)
    return trace, FixedOutages([(2.0 + 5 * k, 3.5 + 5 * k) for k in range(100)])


def test_outage_link_matches_a_trace_with_the_same_gaps() -> None:
    trace, outages = _gapped()
    rng = np.random.default_rng(5)
    plain = Link(trace, offset_s=0.0, delay_s=0.1)
    gated = OutageLink(constant(8.0), offset_s=0.0, delay_s=0.1, outages=outages)
    ready_s = np.sort(rng.uniform(0, 150, 60))
    for ready, nbytes in zip(ready_s, rng.uniform(0.0, 6.0, 60), strict=True):
        expected = plain.send(float(ready), float(nbytes))
        assert gated.send(float(ready), float(nbytes)) == pytest.approx(expected, rel=1e-12)


def test_outage_link_on_a_stepped_trace_with_offset() -> None:
    # 1 B/s on trace [0,2), 0 on [2,3), 2 B/s on [3,5); offset 1; an outage on sim [3, 4)
    steps = Trace("steps", np.array([0.0, 2.0, 3.0]), np.array([8.0, 0.0, 16.0]), 5.0)
    link = OutageLink(steps, 1.0, 0.0, FixedOutages([(3.0, 4.0)]))
    # sim [0,1): 1 B; [1,2): nothing; [2,3): 2 B; outage [3,4); sim 4 = trace 5: 1 B by 5
    assert link.send(0.0, 4.0) == (0.0, 5.0)


def test_shared_link_outage_is_a_zero_capacity_step() -> None:
    trace, outages = _gapped()
    rng = np.random.default_rng(8)
    flows = [(float(rng.uniform(0, 60)), f"f{i}", float(rng.uniform(0.5, 9))) for i in range(14)]

    def finish_times(link_trace: Trace, link_outages: FixedOutages | None) -> dict[str, float]:
        env = simpy.Environment()
        link = SharedLink(env, link_trace, 0.0, 0.0, link_outages)
        done: dict[str, float] = {}
        for t_s, name, nbytes in flows:
            event = env.timeout(t_s)
            event.callbacks.append(
                lambda _e, n=name, b=nbytes: link.send(  # type: ignore[misc]
                    b, lambda _s, a, n=n: done.__setitem__(n, a)
                )
            )
        env.run()
        return done

    expected = finish_times(trace, None)
    got = finish_times(constant(8.0), outages)
    assert got.keys() == expected.keys()
    for name in got:
        assert got[name] == pytest.approx(expected[name], rel=1e-9)


def test_random_outages_have_the_stated_means() -> None:
    outages = RandomOutages(10.0, 2.0, np.random.default_rng(2))
    t_s, down_s, count = 0.0, 0.0, 0
    while t_s < 100_000:
        start_s, end_s = outages.next_window(t_s)
        down_s += end_s - max(start_s, t_s)
        count += 1
        t_s = end_s
    # about 8,300 windows: the share and the mean gap hold to a few percent
    assert down_s / t_s == pytest.approx(2 / 12, rel=0.05)
    assert (t_s - down_s) / count == pytest.approx(10.0, rel=0.05)
    with pytest.raises(ValueError, match="forward in time"):
        outages.next_window(5.0)
    # the stationary start: in an outage with P = 1/6, else after a gap of mean 10 s
    starts, ends = first_outages(10.0, 2.0, 100_000, np.random.default_rng(4))
    assert np.mean(starts == 0.0) == pytest.approx(1 / 6, abs=0.005)
    assert starts[starts > 0].mean() == pytest.approx(10.0, rel=0.02)
    assert (ends - starts).mean() == pytest.approx(2.0, rel=0.02)
    alone = [RandomOutages(10.0, 2.0, np.random.default_rng(k)).next_window(0.0) for k in range(5)]
    assert all(start_s >= 0 and end_s > start_s for start_s, end_s in alone)


def test_random_outages_make_their_generator_only_when_needed() -> None:
    made: list[int] = []

    def make() -> np.random.Generator:
        made.append(1)
        return np.random.default_rng(0)

    outages = RandomOutages(10.0, 1.0, make, first=(3.0, 4.0))
    assert outages.next_window(0.0) == outages.next_window(3.5) == (3.0, 4.0)
    assert not made
    start_s, end_s = outages.next_window(4.0)
    assert 4.0 < start_s < end_s and made == [1]


def test_outage_schedules_refuse_bad_windows() -> None:
    with pytest.raises(ValueError, match="before the previous one ends"):
        FixedOutages([(0.0, 2.0), (1.0, 3.0)])
    with pytest.raises(ValueError, match="start_s < end_s"):
        FixedOutages([(2.0, 2.0)])
    with pytest.raises(ValueError, match="mean_s"):
        RandomOutages(1.0, 0.0, np.random.default_rng(0))


def test_schema_fault_fields_name_the_problem() -> None:
    head = "name: t\nrequests_per_device: 1\nmodel: {name: m}\nfleet:\n"
    group = "  - {name: g, count: 1, hardware: ideal, split: 1, arrivals: {kind: poisson, "
    group += "rate_per_s: 1}, uplink: UPLINK}\n"
    bad = {
        "{bandwidth_mbps: 1, outages: [{start_s: 1, end_s: 3}, {start_s: 2, end_s: 4}]}": (
            "fleet[0].uplink.outages[1].start_s: outage windows must be sorted"
        ),
        "{kind: ideal, outages: {mean_gap_s: 1, mean_s: 1}}": (
            "fleet[0].uplink.outages: an ideal link takes no outages"
        ),
        "{bandwidth_mbps: 1, outages: 5}": "fleet[0].uplink.outages: must be {mean_gap_s",
    }
    for uplink, message in bad.items():
        with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("{", r"\{")):
            loads(head + group.replace("UPLINK", uplink), source="x")
    failures = "servers: {failures: {mtbf_s: 1, mttr_s: 1, on_failure: retry}}\n"
    with pytest.raises(ScenarioError, match="on_failure: must be one of"):
        loads(head + group.replace("UPLINK", "{bandwidth_mbps: 1}") + failures, source="x")


# --------------------------------------------------------------------------- all at once


def _everything(profile: Path, seed: int) -> Any:
    cell = {
        "name": "tower",
        "uplink": {"bandwidth_mbps": 4.0, "outages": {"mean_gap_s": 5.0, "mean_s": 1.0}},
        "downlink": {"bandwidth_mbps": 4.0, "outages": [{"start_s": 20.0, "end_s": 22.0}]},
    }
    celled = {
        "name": "celled",
        "count": 10,
        "hardware": "ideal",
        "split": 4,
        "arrivals": {"kind": "poisson", "rate_per_s": 0.3},
        "availability": {"kind": "probability", "p_available": 0.8},
        "cell": "tower",
    }
    s = scenario(
        profile,
        seed=seed,
        requests_per_device=None,
        duration_s=60.0,
        network={"cells": [cell]},
        fleet0={
            "count": 40,
            "arrivals": {"kind": "poisson", "rate_per_s": 0.3},
            "availability": {"kind": "on-off", "up_s": 20.0, "down_s": 5.0},
            "uplink": {"bandwidth_mbps": 2.0, "outages": {"mean_gap_s": 8.0, "mean_s": 1.0}},
            "downlink": {"bandwidth_mbps": 5.0, "outages": [{"start_s": 10.0, "end_s": 12.0}]},
        },
        servers={
            "replicas": 3,
            "routing": "power-of-two",
            "queue_limit": 6,
            "batching": {"max_batch": 4, "max_wait_s": 0.05},
            "service": {"kind": "exponential", "mean_s": 0.2},
            "failures": {"mtbf_s": 10.0, "mttr_s": 3.0, "on_failure": "drop"},
        },
    )
    return s.model_copy(update={"fleet": [s.fleet[0], DeviceGroup.model_validate(celled)]})


def test_same_seed_gives_identical_files_with_every_fault(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile", payload_bytes=[800, 1200, 1900])
    s = _everything(profile, seed=5)
    a = run_one(s, tmp_path / "a", quiet=True).path
    b = run_one(s, tmp_path / "b", quiet=True).path
    for name in ("requests.parquet", "servers.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    rows = requests(a)
    _once(rows, len(rows))
    reasons = reason_counts(_table(rows))["drops_by_reason"]
    assert {"device_offline", "replica_failed"} <= set(reasons)
    assert {r["group"] for r in rows if r["status"] == "completed"} == {"g", "celled"}
    for row in rows:  # outages only ever add time: 2 Mbps alone is the fastest an uplink goes
        uplink_s = row["t_uplink_end_s"] - row["t_uplink_start_s"]
        if row["group"] == "g" and not math.isnan(uplink_s):
            assert uplink_s >= row["payload_bytes"] * 8 / 2e6 * (1 - 1e-12)
    c = run_one(_everything(profile, seed=6), tmp_path / "c", quiet=True).path
    assert (a / "requests.parquet").read_bytes() != (c / "requests.parquet").read_bytes()


def test_links_without_outages_stay_plain(tmp_path: Path) -> None:
    from fleet.sim import Simulation

    profile = write_profile(tmp_path / "profile")
    s = scenario(profile, fleet0={"uplink": {"bandwidth_mbps": 1.0}})
    sim = Simulation(s, ReplayOracle([profile]), run_id="p", codec_keys=[fp32_key()], sink=print)
    assert type(sim.links.link(0, 0)) is Link
    assert not sim.server.stops_when_done
