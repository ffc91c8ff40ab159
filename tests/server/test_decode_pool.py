"""The decode pool: first come, first served on a fixed number of cores."""

from __future__ import annotations

import pytest
import simpy

from server.decode_pool import DecodePool


def test_ifs_wait_for_a_free_core_in_arrival_order() -> None:
    env = simpy.Environment()
    done: list[tuple[int, float]] = []
    pool = DecodePool(env, cores=2, on_decoded=lambda rid: done.append((rid, env.now)))
    for rid in range(3):
        pool.submit(rid, 1.0)
    assert pool.waiting == 1
    env.run()
    assert done == [(0, 1.0), (1, 1.0), (2, 2.0)]
    assert pool.busy_s == 3.0


def test_an_if_that_takes_no_time_is_handed_on_at_once() -> None:
    env = simpy.Environment()
    done: list[int] = []
    pool = DecodePool(env, cores=1, on_decoded=done.append)
    pool.submit(7, 0.0)
    assert done == [7]


def test_a_pool_needs_a_core() -> None:
    with pytest.raises(ValueError, match="at least one core"):
        DecodePool(simpy.Environment(), cores=0, on_decoded=print)
