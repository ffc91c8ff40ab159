"""Batch queues, routers and the closed forms the simulator is checked against."""

from __future__ import annotations

import numpy as np
import pytest

from server.batching import BatchPolicy, BatchQueue
from server.queueing import erlang_c, md1_wait_s, mm1_wait_s, mmc_wait_s
from server.routing import make_router


def test_queue_waits_until_full_or_due() -> None:
    q = BatchQueue(BatchPolicy(max_batch=3, max_wait_s=1.0))
    q.push(10, "a", 0.0)
    q.push(11, "a", 0.2)
    assert q.take(0.5) is None  # neither full nor due
    assert q.deadline_s() == 1.0
    assert q.take(1.0) == [10, 11]  # due
    for rid in (1, 2, 3, 4):
        q.push(rid, "a", 2.0)
    assert q.take(2.0) == [1, 2, 3]  # full
    assert len(q) == 1


def test_classes_never_mix_and_oldest_class_goes_first() -> None:
    q = BatchQueue(BatchPolicy(max_batch=4, max_wait_s=0.0))
    q.push(1, "split8", 0.0)
    q.push(2, "split4", 0.1)
    q.push(3, "split8", 0.2)
    assert q.take(0.3) == [1, 3]
    assert q.take(0.3) == [2]
    assert q.take(0.3) is None and len(q) == 0


def test_a_full_class_goes_before_an_older_waiting_one() -> None:
    q = BatchQueue(BatchPolicy(max_batch=2, max_wait_s=5.0))
    q.push(1, "a", 0.0)
    q.push(2, "b", 0.1)
    q.push(3, "b", 0.2)
    assert q.take(0.3) == [2, 3]
    assert q.pop_newest("a") == 1


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BatchPolicy(max_batch=0)


def test_routers() -> None:
    rng = np.random.default_rng(0)
    rr = make_router("round-robin", 3, rng)
    assert [rr([0, 0, 0]) for _ in range(5)] == [0, 1, 2, 0, 1]
    ll = make_router("least-loaded", 3, rng)
    assert ll([2, 1, 1]) == 1 and ll([0, 0, 0]) == 0
    p2 = make_router("power-of-two", 4, rng)
    picks = [p2([5, 0, 5, 5]) for _ in range(200)]
    # replica 1 wins whenever it is sampled: about half the time with 4 replicas
    assert 0.35 < picks.count(1) / 200 < 0.65
    rand = make_router("random", 4, np.random.default_rng(1))
    counts = np.bincount([rand([0] * 4) for _ in range(4000)], minlength=4)
    assert counts.min() > 900
    with pytest.raises(ValueError, match="unknown routing"):
        make_router("fastest", 2, rng)


def test_closed_forms() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert mm1_wait_s(0.5, 1.0) == pytest.approx(1.0)
    assert mmc_wait_s(0.5, 1.0, 1) == pytest.approx(mm1_wait_s(0.5, 1.0))
    assert md1_wait_s(0.5, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unstable"):
        mm1_wait_s(2.0, 1.0)
