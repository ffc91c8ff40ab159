"""The one memo-and-batch path ``RayOracle`` sends heads, tails and generations through.

A ``RayMemo`` is one kind of job with its small per-kind parts: ``key`` (a job's memo key),
``send`` (one Ray call to one actor for a batch of (key, job) pairs; returns the ref of the
call's result list, one item per job) and ``build`` (an actor's item -> (result, wall
seconds)). Actors report a job that cannot run as its error text instead of an item; its
future raises ``ComputeFailed`` with that text.

``submit`` answers a job whose key it has seen from the memo without any Ray call (the future
handed out before, or the result once collected), sends the others grouped by the actor their
key hashes to (a stable hash, so an actor's own memo sees every repeat), one Ray call per
actor, and counts ``<kind>_calls``, ``<kind>_memo_hits`` (unless told not to: prefetches) and
``ray_calls`` in the counters it shares with the oracle. A collected result stays in ``done``
with its wall seconds, for the replay profile.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from fleet.compute.ray_pending import CallResults, Placeholder, RayPending
from server.engine.jobs import ComputeFailed, Done, Pending

J = TypeVar("J")
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class RayMemo(Generic[J, K, R]):
    """Jobs of one ``kind`` ("head", "tail", "gen"), counted in ``counts`` and fetched
    through ``calls`` (both shared by the kinds of one oracle): see the module docstring."""

    def __init__(
        self,
        kind: str,
        counts: dict[str, int],
        calls: CallResults,
        *,
        key: Callable[[J], K],
        actors: int,
        send: Callable[[int, list[tuple[K, J]]], Any],
        build: Callable[[Any], tuple[R, float]],
    ) -> None:
        self.kind = kind
        self.pending: dict[K, Pending[R]] = {}  # a future per key ever submitted
        self.done: dict[K, tuple[R, float]] = {}  # collected results and their wall seconds
        self._key, self._actors, self._send, self._build = key, actors, send, build
        self._counts, self._calls = counts, calls

    def submit(self, jobs: Sequence[J], *, count: bool) -> list[Pending[R]]:
        """Futures for ``jobs``, in order; ``count``: add them to the call counters."""
        keys = [self._key(job) for job in jobs]  # a job that names nothing valid raises here
        out: list[Pending[R] | None] = []
        batches: dict[int, list[tuple[int, K, J]]] = defaultdict(list)
        for i, (key, job) in enumerate(zip(keys, jobs, strict=True)):
            self._counts[f"{self.kind}_calls"] += count
            if key in self.pending:
                self._counts[f"{self.kind}_memo_hits"] += count
                out.append(self.pending[key])
                continue
            out.append(None)
            self.pending[key] = Placeholder()  # same key twice in one submission: one job
            batches[actor_of(key, self._actors)].append((i, key, job))
        for actor, batch in batches.items():
            ref = self._send(actor, [(key, job) for _, key, job in batch])
            self._counts["ray_calls"] += 1
            self._calls.expect(ref, len(batch))
            for index, (i, key, _) in enumerate(batch):
                pending = RayPending(self._calls, ref, index, partial(self._collect, key))
                self.pending[key] = out[i] = pending
        assert all(p is not None for p in out)
        return [p for p in out if p is not None]

    def _collect(self, key: K, item: Any) -> R:
        if isinstance(item, str):  # the actor's error text for a job that cannot run
            raise ComputeFailed(item)
        result, wall_s = self._build(item)
        self.done[key] = (result, wall_s)
        self.pending[key] = Done(result)  # later submissions need neither the future nor Ray
        return result


def actor_of(key: Hashable, actors: int) -> int:
    """The actor a key goes to: a stable hash, the same in every process and run."""
    return zlib.crc32(repr(key).encode()) % actors
