"""The decode pool: host CPU cores beside the accelerators that decode arriving IFs.

An IF that arrives at the servers waits for a free core (first come, first served), is
decoded there in the time the caller gives (``server.cost.ServerCost.decode_s``: one IF on one
core), and is then handed on (``on_decoded``) to the batch queue or the running sequence. The
pool is its own resource: the accelerators never wait for it, and its busy time is not theirs.
``cores`` is the pool's size (``servers.decode.cores`` or the hardware entry's
``host_cpu_cores``, per replica, times the replicas: the cores of every server node, pooled).
An IF that takes no time (the ``ideal`` hardware) is handed on at once, without an event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import simpy


class DecodePool:
    def __init__(
        self, env: simpy.Environment, *, cores: int, on_decoded: Callable[[int], None]
    ) -> None:
        if cores < 1:
            raise ValueError(f"a decode pool needs at least one core, got {cores}")
        self.cores = cores
        self.busy_s = 0.0  # core-seconds of decode started so far
        self._env = env
        self._free = cores
        self._waiting: deque[tuple[int, float]] = deque()
        self._on_decoded = on_decoded

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, request_id: int, decode_s: float) -> None:
        """Decode an IF of ``request_id`` that takes ``decode_s`` on one core."""
        if decode_s == 0.0 and not self._waiting:
            self._on_decoded(request_id)
        elif self._free:
            self._start(request_id, decode_s)
        else:
            self._waiting.append((request_id, decode_s))

    def _start(self, request_id: int, decode_s: float) -> None:
        self._free -= 1
        self.busy_s += decode_s
        event = self._env.timeout(decode_s, value=request_id)
        event.callbacks.append(self._done)

    def _done(self, event: Any) -> None:
        self._free += 1
        if self._waiting:
            self._start(*self._waiting.popleft())
        self._on_decoded(event.value)
