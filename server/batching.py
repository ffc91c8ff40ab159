"""Batch queues: which queued requests a free replica runs next, and when.

A queue holds requests of several *classes* (requests that can share a batch: same model, split
and codec). The policy is dynamic batching as in Triton or TorchServe: a free replica takes up
to ``max_batch`` requests of one class as soon as that class has ``max_batch`` waiting, or once
its oldest request has waited ``max_wait_s``. Classes are served oldest head first. With
``max_batch == 1`` (batching ``none``) every request is its own batch and nothing waits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int = 1
    max_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {self.max_wait_s}")


class BatchQueue:
    """FIFO per class. Items are request ids; each carries its enqueue time and a sequence
    number that orders classes by their oldest item (ties broken by arrival order)."""

    __slots__ = ("_classes", "_len", "_policy", "_seq")

    def __init__(self, policy: BatchPolicy) -> None:
        self._policy = policy
        # class -> deque of (seq, enqueue time, request id); insertion order of classes is
        # deterministic, so iteration over them is too.
        self._classes: dict[Hashable, deque[tuple[int, float, int]]] = {}
        self._len = 0
        self._seq = 0

    def __len__(self) -> int:
        return self._len

    def push(self, request_id: int, klass: Hashable, now_s: float) -> None:
        items = self._classes.get(klass)
        if items is None:
            items = self._classes[klass] = deque()
        items.append((self._seq, now_s, request_id))
        self._seq += 1
        self._len += 1

    def pop_newest(self, klass: Hashable) -> int:
        """Remove and return the request pushed last in ``klass`` (a refused arrival)."""
        items = self._classes[klass]
        request_id = items.pop()[2]
        if not items:
            del self._classes[klass]
        self._len -= 1
        return request_id

    def drain(self) -> list[int]:
        """Remove and return every queued request, oldest first (a failed replica's queue)."""
        items = sorted(item for queue in self._classes.values() for item in queue)
        self._classes.clear()
        self._len = 0
        return [request_id for _, _, request_id in items]

    def take(self, now_s: float) -> list[int] | None:
        """The next batch to run now, or None when no class is ready yet."""
        klass = self._ready_class(now_s)
        if klass is None:
            return None
        items = self._classes[klass]
        count = min(self._policy.max_batch, len(items))
        batch = [items.popleft()[2] for _ in range(count)]
        if not items:
            del self._classes[klass]
        self._len -= count
        return batch

    def deadline_s(self) -> float | None:
        """When the oldest class becomes ready by waiting (None: the queue is empty)."""
        head = self._oldest()
        if head is None:
            return None
        return self._classes[head][0][1] + self._policy.max_wait_s

    def _oldest(self) -> Hashable | None:
        best: Hashable | None = None
        best_seq = -1
        for klass, items in self._classes.items():
            seq = items[0][0]
            if best is None or seq < best_seq:
                best, best_seq = klass, seq
        return best

    def _ready_class(self, now_s: float) -> Hashable | None:
        if not self._len:
            return None
        max_batch = self._policy.max_batch
        max_wait_s = self._policy.max_wait_s
        ready: Hashable | None = None
        ready_seq = -1
        for klass, items in self._classes.items():
            seq, enqueued_s, _ = items[0]
            full_or_due = len(items) >= max_batch or now_s >= enqueued_s + max_wait_s
            if full_or_due and (ready is None or seq < ready_seq):
                ready, ready_seq = klass, seq
        return ready
