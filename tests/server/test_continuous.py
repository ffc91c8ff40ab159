"""Continuous batching: exact step schedules, joins at step boundaries, KV admission."""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from server.continuous import ContinuousReplica


def _replica(
    env: simpy.Environment, log: list[Any], *, ready_after_s: float | None = 0.0, **kwargs: Any
) -> ContinuousReplica:
    """A replica whose prefill steps take 2 s and decode steps 1 s; each produced token's
    next input arrives ``ready_after_s`` later (None: the test readies by hand)."""
    calls: list[Any] = []

    def step_time(prefills: list[tuple[int, int]], decodes: list[tuple[int, int]]) -> float:
        calls.append(([n for _, n in prefills], [n for _, n in decodes]))
        return 2.0 if prefills else 1.0

    def on_step(step: int, produced: list[tuple[int, int]], start_s: float, end_s: float) -> None:
        log.append((step, produced, start_s, end_s))
        if ready_after_s is None:
            return
        for seq_id, token in produced:
            if token + 1 < lengths[seq_id]:
                if ready_after_s == 0:
                    replica.ready(seq_id)
                else:
                    env.process(_later(env, ready_after_s, replica, seq_id))

    options = {"max_batch": 8, "kv_capacity_bytes": 1e9, "kv_bytes_per_token": 1.0}
    options.update(kwargs)
    replica = ContinuousReplica(env, step_time=step_time, on_step=on_step, **options)
    replica.calls = calls  # type: ignore[attr-defined]
    lengths: dict[int, int] = {}
    replica.lengths = lengths  # type: ignore[attr-defined]
    return replica


def _later(env: simpy.Environment, delay_s: float, replica: ContinuousReplica, seq_id: int) -> Any:
    yield env.timeout(delay_s)
    replica.ready(seq_id)


def _admit_at(
    env: simpy.Environment, t_s: float, replica: Any, seq_id: int, prompt: int, new: int
) -> None:
    def go() -> Any:
        yield env.timeout(t_s)
        replica.lengths[seq_id] = new
        replica.admit(seq_id, prompt, new)

    env.process(go())


def test_one_sequence_prefill_then_one_token_per_step() -> None:
    env, log = simpy.Environment(), []
    replica = _replica(env, log)
    _admit_at(env, 0.0, replica, 7, prompt=10, new=3)
    env.run()
    assert log == [(0, [(7, 0)], 0.0, 2.0), (1, [(7, 1)], 2.0, 3.0), (2, [(7, 2)], 3.0, 4.0)]
    assert replica.calls == [([10], []), ([], [12]), ([], [13])]  # contexts count the new token
    assert replica.running == 0 and replica.kv_used_bytes == 0.0 and replica.busy_s == 4.0


def test_a_sequence_joins_at_the_next_step_boundary() -> None:
    env, log = simpy.Environment(), []
    replica = _replica(env, log)
    _admit_at(env, 0.0, replica, 1, prompt=10, new=3)
    _admit_at(env, 0.5, replica, 2, prompt=5, new=2)  # arrives during 1's prefill
    env.run()
    assert log == [
        (0, [(1, 0)], 0.0, 2.0),
        (1, [(1, 1), (2, 0)], 2.0, 4.0),  # a mixed step: 1 decodes, 2 prefills
        (2, [(1, 2), (2, 1)], 4.0, 5.0),
    ]
    assert replica.calls[1] == ([5], [12])


def test_max_batch_makes_later_sequences_wait() -> None:
    env, log = simpy.Environment(), []
    replica = _replica(env, log, max_batch=1)
    _admit_at(env, 0.0, replica, 1, prompt=4, new=2)
    _admit_at(env, 0.0, replica, 2, prompt=4, new=1)
    env.run()
    assert log == [(0, [(1, 0)], 0.0, 2.0), (1, [(1, 1)], 2.0, 3.0), (2, [(2, 0)], 3.0, 5.0)]


def test_kv_memory_admits_first_come_first_served() -> None:
    env, log = simpy.Environment(), []
    # room for 20 tokens: sequence 1 takes 12, sequence 2 (12) must wait, 3 (6) may not overtake
    replica = _replica(env, log, kv_capacity_bytes=20.0)
    _admit_at(env, 0.0, replica, 1, prompt=10, new=2)
    _admit_at(env, 0.1, replica, 2, prompt=10, new=2)
    _admit_at(env, 0.2, replica, 3, prompt=4, new=2)
    env.run()
    assert [produced for _, produced, _, _ in log] == [
        [(1, 0)],
        [(1, 1)],
        [(2, 0), (3, 0)],
        [(2, 1), (3, 1)],
    ]
    assert replica.kv_used_bytes == 0.0
    with pytest.raises(ValueError, match="could never be admitted"):
        replica.admit(9, prompt_tokens=30, new_tokens=1)


def test_a_step_runs_only_sequences_whose_input_arrived() -> None:
    env, log = simpy.Environment(), []
    replica = _replica(env, log, ready_after_s=None)
    _admit_at(env, 0.0, replica, 1, prompt=3, new=2)
    _admit_at(env, 0.0, replica, 2, prompt=3, new=2)
    env.run()
    assert log == [(0, [(1, 0), (2, 0)], 0.0, 2.0)]  # then idle: no input arrived

    def arrive() -> Any:
        yield env.timeout(1.5)
        replica.ready(2)
        yield env.timeout(0.5)
        replica.ready(1)

    env.process(arrive())
    env.run()
    assert log[1:] == [(1, [(2, 1)], 3.5, 4.5), (2, [(1, 1)], 4.5, 5.5)]


def test_window_table_accounts_busy_time_tokens_running_and_kv_exactly() -> None:
    env, log = simpy.Environment(), []
    replica = _replica(env, log, window_s=1.5)
    _admit_at(env, 0.0, replica, 7, prompt=10, new=3)  # steps [0, 2], [2, 3], [3, 4]
    env.run()
    rows = replica.table(replica_id=2, end_s=4.0)
    assert [r["window_start_s"] for r in rows] == [0.0, 1.5, 3.0]
    assert [r["busy_s"] for r in rows] == [1.5, 1.5, 1.0]
    assert [r["steps"] for r in rows] == [1, 1, 1]
    assert [r["tokens"] for r in rows] == [0, 1, 2]  # counted where their step ends
    assert [r["admitted"] for r in rows] == [1, 0, 0]
    assert [r["running_mean"] for r in rows] == [1.0, 1.0, 1.0]  # the last window ends at 4
    assert [r["kv_used_max_bytes"] for r in rows] == [13.0, 13.0, 13.0]  # (10 + 3) x 1 B
    assert {r["replica_id"] for r in rows} == {2}


def test_window_table_running_mean_and_kv_follow_admissions_and_leaves() -> None:
    env, log = simpy.Environment(), []
    replica = _replica(env, log, window_s=10.0, max_batch=1)
    _admit_at(env, 0.0, replica, 1, prompt=4, new=2)  # runs [0, 3]
    _admit_at(env, 0.0, replica, 2, prompt=6, new=2)  # waits for the batch slot: [3, 6]
    env.run()
    (row,) = replica.table(replica_id=0, end_s=10.0)
    assert row["running_mean"] == pytest.approx((3 * 1 + 3 * 1) / 10)
    assert row["kv_used_max_bytes"] == 8.0  # never both at once: max(4 + 2, 6 + 2)
    # both queue at t = 0 until the step boundary at the end of that instant
    assert row["waiting_max"] == 2 and row["admitted"] == 2 and row["tokens"] == 4
