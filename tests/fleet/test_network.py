"""Links: exact FIFO transfers over traces, and processor sharing on a cell, by exact event logs."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import simpy

from fleet.network.links import Link, SharedLink, device_offsets
from fleet.network.trace_synthetic import synthetic
from fleet.network.traces import Trace, constant

Log = list[tuple[float, str]]


def steps() -> Trace:
    """1 B/s on [0, 2), nothing on [2, 3), 2 B/s on [3, 5); loops every 5 s."""
    return Trace("steps", np.array([0.0, 2.0, 3.0]), np.array([8.0, 0.0, 16.0]), 5.0)


# ------------------------------------------------------------------------------ own links


def test_constant_link_takes_bytes_over_rate_plus_delay() -> None:
    for rate_bps, nbytes, ready_s, delay_s in [(1e6, 12345.0, 0.3, 0.02), (7.3e7, 1.0, 1e5, 0.0)]:
        link = Link(constant(rate_bps), offset_s=0.0, delay_s=delay_s)
        start_s, arrive_s = link.send(ready_s, nbytes)
        assert start_s == ready_s
        assert arrive_s == pytest.approx(ready_s + nbytes * 8 / rate_bps + delay_s, rel=1e-12)
        assert arrive_s == ready_s + nbytes * 8 / rate_bps + delay_s  # in fact bit for bit


def test_fifo_next_transfer_starts_when_last_bit_left() -> None:
    link = Link(constant(8.0), offset_s=0.0, delay_s=10.0)  # 1 B/s, long delay
    assert link.send(0.0, 2.0) == (0.0, 12.0)
    assert link.send(1.0, 3.0) == (2.0, 15.0)  # waits for the wire, not for the delay
    assert link.free_s == 5.0
    assert link.send(9.0, 1.0) == (9.0, 20.0)  # idle link: starts when ready


def test_trace_link_uses_its_offset_and_steps() -> None:
    link = Link(steps(), offset_s=1.0, delay_s=0.25)
    # trace time 1: 1 B by 2, nothing until 3, 1 B at 2 B/s: last bit at trace 3.5 = sim 2.5
    assert link.send(0.0, 2.0) == (0.0, 2.75)
    # from sim 2.5 = trace 3.5: 3 B at 2 B/s ends at trace 5.0 = sim 4.0
    assert link.send(0.0, 3.0) == (2.5, 4.25)
    # sim 4.0 = trace 5.0, the next loop: 2 B on [5,7), wait [7,8), 2 B on [8,9) = sim 8
    assert link.send(4.0, 4.0) == (4.0, 8.25)


def test_zero_rate_step_waits() -> None:
    link = Link(steps(), offset_s=0.0, delay_s=0.0)
    assert link.send(2.0, 1.0) == (2.0, 3.5)


def test_ideal_link_takes_no_time_and_no_delay() -> None:
    link = Link(None, offset_s=0.0, delay_s=0.5)
    assert link.send(3.0, 1e9) == (3.0, 3.0)
    assert link.send(1.0, 1e9) == (1.0, 1.0)


def test_link_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="delay_s"):
        Link(constant(1.0), 0.0, -1.0)
    with pytest.raises(ValueError, match="offset_s"):
        Link(constant(1.0), math.nan, 0.0)
    with pytest.raises(ValueError, match="nbytes"):
        Link(steps(), 0.0, 0.0).send(0.0, -1.0)


def test_device_offsets() -> None:
    rng = np.random.default_rng(1)
    assert np.array_equal(device_offsets(rng, 3, None), np.zeros(3))
    assert np.array_equal(device_offsets(rng, 3, constant(1e6)), np.zeros(3))
    trace = synthetic("lte", 0, duration_s=100.0)
    offsets = device_offsets(np.random.default_rng(2), 10000, trace)
    assert offsets.shape == (10000,) and offsets.min() >= 0 and offsets.max() < 100.0
    assert offsets.mean() == pytest.approx(50.0, rel=0.05)
    assert np.array_equal(offsets, device_offsets(np.random.default_rng(2), 10000, trace))


# --------------------------------------------------------------------------- shared links


def run_flows(
    trace: Trace,
    flows: list[tuple[float, str, float]],
    delay_s: float = 0.0,
    offset_s: float = 0.0,
) -> Log:
    """Send (t_s, name, nbytes) flows on a fresh shared link; log (t_arrive_s, name)."""
    env = simpy.Environment()
    link = SharedLink(env, trace, delay_s, offset_s)
    log: Log = []

    def arrived(name: str, t_send_s: float) -> Callable[[float, float], None]:
        def on_arrive(t_start_s: float, t_arrive_s: float) -> None:
            assert t_start_s == t_send_s
            assert env.now == t_arrive_s  # called at the arrival time
            log.append((t_arrive_s, name))

        return on_arrive

    for t_s, name, nbytes in flows:
        event = env.timeout(t_s)
        event.callbacks.append(
            lambda _e, n=name, b=nbytes, t=t_s: link.send(b, arrived(n, t))  # type: ignore[misc]
        )
    env.run()
    assert link.active == 0
    return log


def test_equal_flows_started_together_share_equally() -> None:
    for n in (1, 2, 3, 7):
        size, rate = 1500.0, 2.5e6
        log = run_flows(constant(rate), [(0.0, f"f{i}", size) for i in range(n)])
        assert [name for _, name in log] == [f"f{i}" for i in range(n)]  # start order
        for t_s, _ in log:
            assert t_s == pytest.approx(n * size * 8 / rate, rel=1e-12)


def test_staggered_flows_follow_processor_sharing() -> None:
    # 1 B/s. A alone on [0,1) gets 1 B; A and B share on [1,5): B's 2 B done at 5, A has 1 B
    # left, alone on [5,6).
    assert run_flows(constant(8.0), [(0.0, "A", 4.0), (1.0, "B", 2.0)]) == [(5.0, "B"), (6.0, "A")]
    # Add C at 2 (1 B): A,B share [1,2) (A 2.5 left, B 1.5); three share [2,5): C done at 5,
    # A 1.5 and B 0.5 left; two share [5,6): B done, A 1 left; alone [6,7).
    log = run_flows(constant(8.0), [(0.0, "A", 4.0), (1.0, "B", 2.0), (2.0, "C", 1.0)])
    assert [name for _, name in log] == ["C", "B", "A"]
    assert [t for t, _ in log] == pytest.approx([5.0, 6.0, 7.0], rel=1e-12)


def test_flows_finishing_together_arrive_in_start_order() -> None:
    # A gets 1 B alone on [0,1), then A and B need 1 B each at 0.5 B/s: both done at 3.
    log = run_flows(constant(8.0), [(0.0, "A", 2.0), (1.0, "B", 1.0)])
    assert log == [(3.0, "A"), (3.0, "B")]
    log = run_flows(constant(8.0), [(0.0, "Z", 1.0), (0.0, "Y", 1.0), (0.0, "X", 1.0)])
    assert log == [(3.0, "Z"), (3.0, "Y"), (3.0, "X")]


def test_capacity_steps_mid_transfer() -> None:
    trace = Trace("up", np.array([0.0, 2.0]), np.array([8.0, 16.0]), 4.0)  # 1 B/s, then 2 B/s
    assert run_flows(trace, [(0.0, "A", 4.0)]) == [(3.0, "A")]
    # each gets 1 B on [0,2) and 1 B/s on [2,4): both done exactly at the step back to 1 B/s
    assert run_flows(trace, [(0.0, "A", 3.0), (0.0, "B", 3.0)]) == [(4.0, "A"), (4.0, "B")]
    # a third byte each: shared 1 B/s again on [4,6)
    assert run_flows(trace, [(0.0, "A", 4.0), (0.0, "B", 4.0)]) == [(6.0, "A"), (6.0, "B")]


def test_zero_capacity_steps_hold_every_flow() -> None:
    trace = Trace("gaps", np.array([0.0, 1.0]), np.array([8.0, 0.0]), 3.0)  # 1 B/s on [0,1)
    # A: 1 B by 1; nothing until 3; B joins at 1.5 and both share [3,4): B's 0.5 B done at 4,
    # A has 0.5 B left; nothing on [4,6); alone on [6,7): done at 6.5.
    log = run_flows(trace, [(0.0, "A", 2.0), (1.5, "B", 0.5)])
    assert log == [(4.0, "B"), (6.5, "A")]


def test_offset_and_delay() -> None:
    trace = Trace("up", np.array([0.0, 2.0]), np.array([8.0, 16.0]), 4.0)
    # sim 0 = trace 1: 1 B on [1,2), then 2 B at 2 B/s: trace 3 = sim 2, plus 0.5 delay
    assert run_flows(trace, [(0.0, "A", 3.0)], delay_s=0.5, offset_s=1.0) == [(2.5, "A")]


def test_zero_bytes_arrive_after_the_delay_only() -> None:
    assert run_flows(constant(8.0), [(1.0, "A", 0.0)], delay_s=0.25) == [(1.25, "A")]


def test_idle_link_restarts_on_the_current_step() -> None:
    # A ends at 1; B is sent at 3.5 during the 2 B/s step [3,5): 1 B takes 0.5 s
    log = run_flows(steps(), [(0.0, "A", 1.0), (3.5, "B", 1.0)])
    assert log == [(1.0, "A"), (4.0, "B")]


def test_on_arrive_may_send_again() -> None:
    env = simpy.Environment()
    link = SharedLink(env, constant(8.0), delay_s=0.0)
    log: Log = []

    def chain(count: int) -> Callable[[float, float], None]:
        def on_arrive(t_start_s: float, t_arrive_s: float) -> None:
            log.append((t_arrive_s, f"hop{count}"))
            if count < 3:
                link.send(2.0, chain(count + 1))

        return on_arrive

    link.send(1.0, chain(1))
    env.run()
    assert log == [(1.0, "hop1"), (3.0, "hop2"), (5.0, "hop3")]


def test_active_counts_flows_in_transfer() -> None:
    env = simpy.Environment()
    link = SharedLink(env, constant(8.0), delay_s=5.0)
    link.send(1.0, lambda a, b: None)
    link.send(3.0, lambda a, b: None)
    assert link.active == 2
    env.run(until=2.5)
    assert link.active == 1
    env.run(until=4.5)
    assert link.active == 0


def reference_ps(trace: Trace, flows: list[tuple[float, str, float]]) -> dict[str, float]:
    """Processor sharing by remaining bytes, event by event (a second implementation)."""
    pending = sorted(flows)
    left: dict[str, float] = {}
    done: dict[str, float] = {}
    t = 0.0
    while pending or left:
        rate = trace.rate_at(t)
        horizon = min(trace.next_change_s(t), pending[0][0] if pending else math.inf)
        if left and rate > 0:
            share = rate / 8.0 / len(left)
            first = min(left.values())
            if t + first / share <= horizon:
                horizon = t + first / share
        if left:
            share = rate / 8.0 / len(left) * (horizon - t)
            for name in list(left):
                left[name] -= share
                if left[name] <= 1e-9:
                    done[name] = horizon
                    del left[name]
        t = horizon
        while pending and pending[0][0] <= t:
            _, name, nbytes = pending.pop(0)
            left[name] = nbytes
    return done


def test_shared_link_matches_reference_on_random_flows() -> None:
    rng = np.random.default_rng(11)
    trace = Trace("random", np.array([0.0, 1.5, 2.0, 4.5]), np.array([80.0, 0.0, 24.0, 160.0]), 6.0)
    for _ in range(20):
        flows = [
            (float(rng.uniform(0, 20)), f"f{i}", float(rng.uniform(0.5, 40)))
            for i in range(int(rng.integers(1, 12)))
        ]
        expected = reference_ps(trace, flows)
        got = dict((name, t) for t, name in run_flows(trace, flows))
        assert got.keys() == expected.keys()
        for name in got:
            assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-9)


def test_shared_link_rejects_bad_input() -> None:
    env = simpy.Environment()
    with pytest.raises(ValueError, match="delay_s"):
        SharedLink(env, constant(8.0), delay_s=-1.0)
    with pytest.raises(ValueError, match="nbytes"):
        SharedLink(env, constant(8.0), delay_s=0.0).send(math.inf, lambda a, b: None)
