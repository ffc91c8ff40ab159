"""The simulated server pool: replicas with batch queues, routing, failures and exact busy time.

A replica runs one batch at a time. With ``shared-queue`` routing the pool keeps one queue and
the lowest-numbered free replica takes the next batch; otherwise a router puts each request in
one replica's queue. A queue that holds ``queue_limit`` requests refuses more (the caller records
the drop). Busy time is the exact sum of the time batches ran, split across accounting windows
at their boundaries and charged when a batch ends (or is cut by a failure). The pool decides
*when*; the caller says how long a batch takes (``service_time``) and hears about starts and
ends through callbacks.

Failures (``failures``): each replica fails after Exp(mtbf_s) of up time and is repaired after
Exp(mttr_s), from its own generator. At a failure the running batch is cut (busy time stops at
the failure; its end never comes) and, with per-replica queues, the replica's queue is emptied;
``on_fail(replica, batch, ran_s, service_s, queued)`` hands both to the caller, which drops
them or enqueues them again. While down a replica takes no work: routers skip it, and when every
replica is down a request joins the queue of the replica repaired first (with the shared queue
it simply waits there). The failure process never ends, so a caller with failures stops its
loop when its own work is done; ``failure_stats(end_s)`` counts failures and down time in
[0, end_s] from the same draws.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from server.batching import BatchPolicy, BatchQueue
from server.routing import DOWN_LOAD, make_router

SHARED = -1  # the replica id under which the shared queue's drops and lengths are recorded
MAX_FAILURES_PER_REPLICA = 1_000_000  # more is an error (mtbf_s + mttr_s too small), not a hang
OnFail = Callable[[int, list[int], float, float, list[int]], None]


@dataclass(frozen=True)
class FailurePolicy:
    mtbf_s: float  # mean up time before a replica fails
    mttr_s: float  # mean time to repair it

    def __post_init__(self) -> None:
        for name in ("mtbf_s", "mttr_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"failures: {name} must be finite and > 0, got {value!r}")


class ServerPool:
    """Request batching behind ``server.protocol.ServerSide``."""

    def __init__(
        self,
        env: simpy.Environment,
        *,
        replicas: int,
        policy: BatchPolicy,
        routing: str,
        rng: np.random.Generator,
        queue_limit: int | None,
        window_s: float,
        service_time: Callable[[list[int]], float],
        on_start: Callable[[int, list[int], float], None],
        on_end: Callable[[int, list[int]], None],
        failures: FailurePolicy | None = None,
        failure_seed: np.random.SeedSequence | None = None,
        on_fail: OnFail | None = None,
    ) -> None:
        self._env = env
        self._replicas = replicas
        self._shared = routing == "shared-queue"
        self._router = None if self._shared else make_router(routing, replicas, rng)
        self._queues = [BatchQueue(policy) for _ in range(1 if self._shared else replicas)]
        self._timer_at: list[float | None] = [None] * len(self._queues)
        self._busy = [False] * replicas  # running a batch, or down: cannot start one
        self._idle = list(range(replicas))  # shared queue: a heap of free replicas, lowest first
        self._loads = [0] * replicas  # queued at the replica plus running on it (+ DOWN_LOAD)
        self._running: list[tuple[list[int], float, float] | None] = [None] * replicas
        self._token = [0] * replicas  # bumped by a failure: the cut batch's end is ignored
        self._queue_limit = queue_limit
        self._service_time = service_time
        self._on_start = on_start
        self._on_end = on_end
        self._window_s = window_s
        self._busy_s = [_Series() for _ in range(replicas)]
        self._batches = [_Series() for _ in range(replicas)]
        self._served = [_Series() for _ in range(replicas)]
        self._dropped = [_Series() for _ in self._queues]
        self._queue_max = [_Series() for _ in self._queues]
        self.total_busy_s = 0.0
        self._clocks: list[_FailureClock] = []
        self._repair_at = [0.0] * replicas  # when a down replica comes back
        self._up = replicas
        self._on_fail = on_fail
        if failures is not None:
            if on_fail is None:
                raise ValueError("a pool with failures needs on_fail to hand cut work back")
            seed = failure_seed if failure_seed is not None else np.random.SeedSequence(0)
            for replica, child in enumerate(seed.spawn(replicas)):
                clock = _FailureClock(failures, np.random.default_rng(child))
                self._clocks.append(clock)
                self._at(clock.window(0)[0], self._fail, replica)

    @property
    def stops_when_done(self) -> bool:
        """With failures the failure process never ends (``server.protocol``)."""
        return bool(self._clocks)

    def receive(self, request_id: int, klass: int) -> bool:
        """Queue a request now; False when the chosen queue is full (the request is dropped)."""
        now = self._env.now
        if self._shared:
            q = 0
        elif self._up:
            assert self._router is not None
            q = self._router(self._loads)
        else:  # every replica is down: wait at the one repaired first
            q = min(range(self._replicas), key=self._repair_at.__getitem__)
        queue = self._queues[q]
        window = int(now / self._window_s)
        queue.push(request_id, klass, now)
        if not self._shared:
            self._loads[q] += 1
        self._dispatch(q)
        if self._queue_limit is not None and len(queue) > self._queue_limit:
            # no free replica took it and the queue was full: refuse the newcomer
            queue.pop_newest(klass)
            if not self._shared:
                self._loads[q] -= 1
            self._dropped[q].add(window, 1)
            return False
        self._queue_max[q].maximum(window, len(queue))
        return True

    def _dispatch(self, q: int) -> None:
        """Start what queue ``q`` has ready on its free replicas; arm a timer for the rest."""
        queue = self._queues[q]
        now = self._env.now
        if self._shared:
            idle = self._idle
            while queue and idle:
                batch = queue.take(now)
                if batch is None:
                    break
                self._start(heapq.heappop(idle), batch)
            free = bool(idle)
        else:
            if queue and not self._busy[q]:
                batch = queue.take(now)
                if batch is not None:
                    self._start(q, batch)
            free = not self._busy[q]
        if queue and free:
            deadline_s = queue.deadline_s()
            if deadline_s is not None and deadline_s > now:
                self._arm(q, deadline_s)

    def _arm(self, q: int, at_s: float) -> None:
        armed = self._timer_at[q]
        if armed is not None and armed <= at_s:
            return
        self._timer_at[q] = at_s
        event = self._env.timeout(at_s - self._env.now, value=(q, at_s))
        event.callbacks.append(self._timer_fired)

    def _timer_fired(self, event: Any) -> None:
        q, at_s = event.value
        if self._timer_at[q] != at_s:
            return  # superseded by an earlier timer
        self._timer_at[q] = None
        self._dispatch(q)

    def _start(self, replica: int, batch: list[int]) -> None:
        now = self._env.now
        self._busy[replica] = True
        if self._shared:
            self._loads[replica] += len(batch)
        service_s = self._service_time(batch)
        self._on_start(replica, batch, service_s)
        first = int(now / self._window_s)
        self._batches[replica].add(first, 1)
        self._served[replica].add(first, len(batch))
        self._running[replica] = (batch, now, service_s)
        event = self._env.timeout(service_s, value=(replica, self._token[replica]))
        event.callbacks.append(self._finished)

    def _finished(self, event: Any) -> None:
        replica, token = event.value
        if token != self._token[replica]:
            return  # the batch was cut by a failure
        running = self._running[replica]
        assert running is not None
        batch, start_s, _ = running
        self._running[replica] = None
        self._account(replica, start_s, self._env.now)
        self._busy[replica] = False
        if self._shared:
            heapq.heappush(self._idle, replica)
        self._loads[replica] -= len(batch)
        self._on_end(replica, batch)
        self._dispatch(0 if self._shared else replica)

    # ------------------------------------------------------------------ failures
    def _at(self, t_s: float, callback: Callable[[Any], None], replica: int) -> None:
        event = self._env.timeout(t_s - self._env.now, value=replica)
        event.callbacks.append(callback)

    def _fail(self, event: Any) -> None:
        replica = event.value
        now = self._env.now
        self._up -= 1
        self._token[replica] += 1
        if self._shared and not self._busy[replica]:
            self._idle.remove(replica)
            heapq.heapify(self._idle)
        self._busy[replica] = True
        batch: list[int] = []
        ran_s = service_s = 0.0
        running = self._running[replica]
        if running is not None:
            batch, start_s, service_s = running
            self._running[replica] = None
            self._account(replica, start_s, now)
            ran_s = now - start_s
            self._loads[replica] -= len(batch)
        queued: list[int] = []
        if not self._shared:
            queued = self._queues[replica].drain()
            self._loads[replica] += DOWN_LOAD - len(queued)
        clock = self._clocks[replica]
        repair_s = clock.window(clock.current)[1]
        self._repair_at[replica] = repair_s
        self._at(repair_s, self._repair, replica)
        assert self._on_fail is not None
        self._on_fail(replica, batch, ran_s, service_s, queued)

    def _repair(self, event: Any) -> None:
        replica = event.value
        self._up += 1
        self._busy[replica] = False
        clock = self._clocks[replica]
        clock.current += 1
        self._at(clock.window(clock.current)[0], self._fail, replica)
        if self._shared:
            heapq.heappush(self._idle, replica)
            self._dispatch(0)
        else:
            self._loads[replica] -= DOWN_LOAD
            self._dispatch(replica)

    def failure_windows(self, end_s: float) -> list[list[tuple[float, float]]]:
        """Each replica's (fail_s, repair_s) down windows that begin by ``end_s`` (a failure
        at ``end_s`` counts), drawn as the events draw them (whether or not the run got that
        far); [] without failures."""
        out = []
        for clock in self._clocks:
            windows, k = [], 0
            while (window := clock.window(k))[0] <= end_s:
                windows.append(window)
                k += 1
            out.append(windows)
        return out

    def failure_stats(self, end_s: float) -> tuple[int, float]:
        """(failures, replica-seconds down) over [0, end_s]."""
        windows = [w for replica in self.failure_windows(end_s) for w in replica]
        return len(windows), sum(min(repair_s, end_s) - fail_s for fail_s, repair_s in windows)

    # ------------------------------------------------------------------ accounting
    def _account(self, replica: int, start_s: float, end_s: float) -> None:
        width = self._window_s
        self.total_busy_s += end_s - start_s
        window = int(start_s / width)
        while True:
            window_end_s = (window + 1) * width
            if end_s <= window_end_s:
                self._busy_s[replica].add(window, end_s - max(start_s, window * width))
                return
            self._busy_s[replica].add(window, window_end_s - max(start_s, window * width))
            window += 1

    def table(self, run_id: str, end_s: float = math.inf) -> dict[str, list[Any]]:
        """``servers.parquet`` columns (``end_s`` is not needed: a window's figures are final
        once its batches ended): one row per replica (and the shared queue, id -1) per
        window in which it did something; idle windows are left out, so a long, quiet run
        stays small. Rows are ordered by replica, then window. ``batches`` and ``requests``
        count batches started, cut ones included; ``busy_s`` stops at a failure."""
        names = ("busy_s", "batches", "requests", "dropped", "queue_len_max")
        rows: dict[str, list[Any]] = {
            k: [] for k in ("run_id", "replica_id", "window_start_s", "window_end_s", *names)
        }
        ids = ([SHARED] if self._shared else []) + list(range(self._replicas))
        width = self._window_s
        for rid in ids:
            worker = rid != SHARED
            queue = 0 if rid == SHARED else (None if self._shared else rid)
            series = [
                self._busy_s[rid] if worker else None,
                self._batches[rid] if worker else None,
                self._served[rid] if worker else None,
                None if queue is None else self._dropped[queue],
                None if queue is None else self._queue_max[queue],
            ]
            windows = sorted(set().union(*(x.windows() for x in series if x is not None)))
            for w in windows:
                rows["run_id"].append(run_id)
                rows["replica_id"].append(rid)
                rows["window_start_s"].append(w * width)
                rows["window_end_s"].append((w + 1) * width)
                for name, x in zip(names, series, strict=True):
                    value = 0.0 if x is None else x.get(w)
                    rows[name].append(value if name == "busy_s" else int(value))
        return rows


class _FailureClock:
    """One replica's failure schedule: its k-th (fail_s, repair_s) window, drawn in order (up
    time, then repair time), so the events and ``failure_stats`` read one and the same
    sequence. ``current`` is the window the events are at."""

    __slots__ = ("_policy", "_rng", "_windows", "current")

    def __init__(self, policy: FailurePolicy, rng: np.random.Generator) -> None:
        self._policy = policy
        self._rng = rng
        self._windows: list[tuple[float, float]] = []
        self.current = 0

    def window(self, k: int) -> tuple[float, float]:
        windows = self._windows
        if k >= MAX_FAILURES_PER_REPLICA:
            policy, t_s = self._policy, windows[-1][1] if windows else 0.0
            raise ValueError(
                f"replica failures: more than {MAX_FAILURES_PER_REPLICA:,} failures of one "
                f"replica by t={t_s:.6g} s (mtbf_s {policy.mtbf_s:g}, mttr_s {policy.mttr_s:g}); "
                "make them larger"
            )
        while len(windows) <= k:
            up_from_s = windows[-1][1] if windows else 0.0
            fail_s = up_from_s + float(self._rng.exponential(self._policy.mtbf_s))
            windows.append((fail_s, fail_s + float(self._rng.exponential(self._policy.mttr_s))))
        return windows[k]


class _Series:
    """A sparse per-window counter."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[int, float] = {}

    def add(self, window: int, amount: float) -> None:
        self._values[window] = self._values.get(window, 0.0) + amount

    def maximum(self, window: int, value: float) -> None:
        if value > self._values.get(window, 0.0):
            self._values[window] = value

    def windows(self) -> set[int]:
        return set(self._values)

    def get(self, window: int) -> float:
        return self._values.get(window, 0.0)
