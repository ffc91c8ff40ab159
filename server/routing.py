"""Routing: which replica's queue an arriving request joins.

``shared-queue`` is not a router: the pool keeps one queue that every replica serves. The
others pick a replica from its load, the number of requests queued at it plus those it is
running; ties go to the lowest replica id, so routing is deterministic for a seed.

A replica that is down carries ``DOWN_LOAD`` on top of its load: least-loaded and power-of-two
then never pick it while another is up (power-of-two samples again when both picks are down),
and round-robin and random skip it. The caller routes only while at least one replica is up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Router = Callable[[Sequence[int]], int]  # loads per replica -> chosen replica

ROUTINGS = ("shared-queue", "round-robin", "random", "least-loaded", "power-of-two")
DOWN_LOAD = 1 << 60  # added to the load of a replica that is down


def make_router(name: str, replicas: int, rng: np.random.Generator) -> Router:
    """A router for ``replicas`` replicas; random choices come from ``rng``."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if name == "round-robin":
        return _RoundRobin(replicas)
    if name == "random":
        return _Random(replicas, rng)
    if name == "least-loaded":
        return _least_loaded
    if name == "power-of-two":
        return _PowerOfTwo(replicas, rng)
    raise ValueError(f"unknown routing {name!r}; use one of {list(ROUTINGS[1:])}")


class _RoundRobin:
    def __init__(self, replicas: int) -> None:
        self._replicas = replicas
        self._next = 0

    def __call__(self, loads: Sequence[int]) -> int:
        chosen = self._next
        while loads[chosen] >= DOWN_LOAD:
            chosen = (chosen + 1) % self._replicas
        self._next = (chosen + 1) % self._replicas
        return chosen


class _Random:
    """Draws in blocks: one numpy call per 4,096 requests, not one per request."""

    def __init__(self, replicas: int, rng: np.random.Generator) -> None:
        self._replicas = replicas
        self._rng = rng
        self._draws: list[int] = []

    def __call__(self, loads: Sequence[int]) -> int:
        while True:
            if not self._draws:
                self._draws = self._rng.integers(0, self._replicas, 4096)[::-1].tolist()
            chosen = self._draws.pop()
            if loads[chosen] < DOWN_LOAD:
                return chosen


def _least_loaded(loads: Sequence[int]) -> int:
    best = 0
    for i in range(1, len(loads)):
        if loads[i] < loads[best]:
            best = i
    return best


class _PowerOfTwo:
    """Samples two distinct replicas and takes the less loaded (the first sampled on a tie)."""

    def __init__(self, replicas: int, rng: np.random.Generator) -> None:
        self._replicas = replicas
        self._rng = rng
        self._pairs: list[tuple[int, int]] = []

    def __call__(self, loads: Sequence[int]) -> int:
        if self._replicas == 1:
            return 0
        while True:
            if not self._pairs:
                self._draw()
            a, b = self._pairs.pop()
            if loads[a] < DOWN_LOAD or loads[b] < DOWN_LOAD:
                return b if loads[b] < loads[a] else a

    def _draw(self) -> None:
        first = self._rng.integers(0, self._replicas, 4096)
        # a second replica distinct from the first: shift by 1..replicas-1
        second = (first + self._rng.integers(1, self._replicas, 4096)) % self._replicas
        self._pairs = list(zip(first.tolist(), second.tolist(), strict=True))[::-1]
