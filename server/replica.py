"""The simulated server pool: replicas with batch queues, routing and exact busy accounting.

A replica runs one batch at a time. With ``shared-queue`` routing the pool keeps one queue and
the lowest-numbered free replica takes the next batch; otherwise a router puts each request in
one replica's queue. A queue that holds ``queue_limit`` requests refuses more (the caller records
the drop). Busy time is the exact sum of batch service times, split across accounting windows
at their boundaries. The pool decides *when*; the caller says how long a batch takes
(``service_time``) and hears about starts and ends through callbacks.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import simpy

from server.batching import BatchPolicy, BatchQueue
from server.routing import make_router

SHARED = -1  # the replica id under which the shared queue's drops and lengths are recorded


class ServerPool:
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
    ) -> None:
        self._env = env
        self._replicas = replicas
        self._shared = routing == "shared-queue"
        self._router = None if self._shared else make_router(routing, replicas, rng)
        self._queues = [BatchQueue(policy) for _ in range(1 if self._shared else replicas)]
        self._timer_at: list[float | None] = [None] * len(self._queues)
        self._busy = [False] * replicas
        self._idle = list(range(replicas))  # shared queue: a heap of free replicas, lowest first
        self._loads = [0] * replicas  # queued at the replica plus running on it
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

    def enqueue(self, request_id: int, klass: Hashable) -> bool:
        """Queue a request now; False when the chosen queue is full (the request is dropped)."""
        now = self._env.now
        if self._shared:
            q = 0
        else:
            assert self._router is not None
            q = self._router(self._loads)
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
        self._account(replica, now, now + service_s, len(batch))
        event = self._env.timeout(service_s, value=(replica, batch))
        event.callbacks.append(self._finished)

    def _finished(self, event: Any) -> None:
        replica, batch = event.value
        self._busy[replica] = False
        if self._shared:
            heapq.heappush(self._idle, replica)
        self._loads[replica] -= len(batch)
        self._on_end(replica, batch)
        self._dispatch(0 if self._shared else replica)

    def _account(self, replica: int, start_s: float, end_s: float, size: int) -> None:
        width = self._window_s
        first = int(start_s / width)
        self._batches[replica].add(first, 1)
        self._served[replica].add(first, size)
        self.total_busy_s += end_s - start_s
        window = first
        while True:
            window_end_s = (window + 1) * width
            if end_s <= window_end_s:
                self._busy_s[replica].add(window, end_s - max(start_s, window * width))
                return
            self._busy_s[replica].add(window, window_end_s - max(start_s, window * width))
            window += 1

    def table(self, run_id: str) -> dict[str, list[Any]]:
        """``servers.parquet`` columns: one row per replica (and the shared queue, id -1) per
        window in which it did something; idle windows are left out, so a long, quiet run
        stays small. Rows are ordered by replica, then window."""
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
