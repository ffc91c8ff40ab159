"""Continuous batching behind ``server.protocol.ServerSide``: replicas of
``server.continuous.ContinuousReplica`` for autoregressive sequences, routed by
``server.routing``.

A sequence's first arrival (its prompt's IF) is routed to a replica and admitted there; every
later arrival (one token's IF) makes it ready for that replica's next step: its KV cache lives
there, so it never moves. Routing sees each replica's load as its admitted plus waiting
sequences; ``shared-queue`` routes as ``least-loaded`` (a sequence cannot wait in a queue
shared by replicas that do not hold its cache). With ``queue_limit`` a prompt that finds that
many sequences waiting at its replica, and cannot be admitted at once, is refused.

The KV budget of a replica is ``servers.kv_cache_bytes``, or 90% of its hardware's memory less
the weights of the deepest tail served (``kv_budget_bytes``); each sequence reserves prompt plus
new tokens at admission.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import simpy

from server.continuous import ContinuousReplica, OnStep, StepTime
from server.routing import make_router

#: servers.parquet columns taken from each replica's window rows, as (column, replica stat)
_COLUMNS = (
    ("replica_id", "replica_id"),
    ("window_start_s", "window_start_s"),
    ("window_end_s", "window_end_s"),
    ("busy_s", "busy_s"),
    ("batches", "steps"),
    ("requests", "admitted"),
    ("dropped", "dropped"),
    ("queue_len_max", "waiting_max"),
    ("tokens", "tokens"),
    ("running_mean", "running_mean"),
    ("kv_used_max_bytes", "kv_used_max_bytes"),
)
_INTEGERS = {"batches", "requests", "dropped", "queue_len_max", "tokens"}


def kv_budget_bytes(
    memory_capacity_bytes: float,
    tail_weight_bytes: Sequence[float],
    kv_cache_bytes: float | None,
) -> float:
    """The KV-cache bytes one replica has: ``kv_cache_bytes`` when given, else 90% of memory
    less the weights of the largest tail it serves."""
    if kv_cache_bytes is not None:
        return kv_cache_bytes
    return 0.9 * memory_capacity_bytes - max(tail_weight_bytes)


class ContinuousPool:
    def __init__(
        self,
        env: simpy.Environment,
        *,
        replicas: int,
        routing: str,
        rng: np.random.Generator,
        max_batch: int,
        queue_limit: int | None,
        prompt_tokens: int,
        new_tokens: int,
        kv_capacity_bytes: float,
        kv_bytes_per_token: Sequence[float],
        step_time: StepTime,
        on_step: Callable[[int], OnStep],
        window_s: float,
    ) -> None:
        """``kv_bytes_per_token[klass]`` is what one token of a sequence of that class keeps
        on the server; ``on_step(replica)`` gives the step callback of each replica."""
        self._prompt_tokens = prompt_tokens
        self._new_tokens = new_tokens
        self._kv_per_token = list(kv_bytes_per_token)
        self._queue_limit = queue_limit
        self._router = make_router(
            "least-loaded" if routing == "shared-queue" else routing, replicas, rng
        )
        self.replicas = [
            ContinuousReplica(
                env,
                max_batch=max_batch,
                kv_capacity_bytes=kv_capacity_bytes,
                kv_bytes_per_token=self._kv_per_token[0],
                step_time=step_time,
                on_step=on_step(r),
                window_s=window_s,
            )
            for r in range(replicas)
        ]
        self._replica_of: dict[int, int] = {}  # sequences admitted, until their last token

    @property
    def stops_when_done(self) -> bool:
        return False

    def replica_of(self, request_id: int) -> int:
        return self._replica_of[request_id]

    def receive(self, request_id: int, klass: int) -> bool:
        """A prompt is routed and admitted (False: refused); a token's IF makes its sequence
        ready for the next step."""
        r = self._replica_of.get(request_id)
        if r is not None:
            self.replicas[r].ready(request_id)
            return True
        r = self._router([rep.running + rep.waiting for rep in self.replicas])
        replica = self.replicas[r]
        per_token = self._kv_per_token[klass]
        kv_bytes = (self._prompt_tokens + self._new_tokens) * per_token
        limit = self._queue_limit
        if limit is not None and replica.waiting >= limit and not replica.fits(kv_bytes):
            replica.refuse()
            return False
        self._replica_of[request_id] = r
        replica.admit(request_id, self._prompt_tokens, self._new_tokens, per_token)
        return True

    def done(self, request_id: int) -> None:
        """The sequence's last token is out: forget where it ran."""
        self._replica_of.pop(request_id, None)

    def table(self, run_id: str, end_s: float) -> dict[str, list[Any]]:
        """``records.tables.GENERATE_SERVERS_SCHEMA`` columns: per replica, the windows it was
        active in."""
        rows: dict[str, list[Any]] = {"run_id": [], **{name: [] for name, _ in _COLUMNS}}
        for r, replica in enumerate(self.replicas):
            for row in replica.table(r, end_s):
                rows["run_id"].append(run_id)
                for name, stat in _COLUMNS:
                    value = row[stat]
                    rows[name].append(int(value) if name in _INTEGERS else value)
        return rows

    def failure_stats(self, end_s: float) -> tuple[int, float]:
        return 0, 0.0
