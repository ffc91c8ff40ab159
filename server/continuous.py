"""A replica serving autoregressive sequences with continuous (iteration-level) batching.

A sequence asks to be admitted with its prompt length and the number of tokens it will
generate. It is admitted, first come first served, at a step boundary when the running batch
has fewer than ``max_batch`` sequences and the KV cache has room for the whole sequence (prompt
plus every new token: reserved at admission, so an admitted sequence never runs out); until
then it waits. An admitted sequence's first step is its prefill over the prompt; each later
step generates one token and needs that step's input (in split serving: the device's IF of
the previous token) to have arrived, which the caller reports with ``ready``. A step runs every
admitted sequence whose input is there, so sequences join and leave the running batch at step
boundaries; a sequence leaves, and frees its KV reservation, after its last token. A step
starts at the end of the instant in which work became possible, so sequences whose inputs
arrive at the same moment share it. Do not call ``ready`` for a sequence after its last token.

The replica decides *when*; ``step_time(prefill_lengths, decode_contexts)`` says how long a
step takes and ``on_step(step, sequences, start_s, end_s)`` hears about each one
(``sequences`` lists (seq_id, token_index) with token 0 the prefill's output).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy

StepTime = Callable[[list[int], list[int]], float]
OnStep = Callable[[int, list[tuple[int, int]], float, float], None]


@dataclass
class _Sequence:
    seq_id: int
    prompt_tokens: int
    new_tokens: int
    kv_bytes: float
    generated: int = 0  # tokens produced so far (the prefill produces the first)
    ready: bool = True  # the next step's input has arrived (the prompt, at admission)


class ContinuousReplica:
    def __init__(
        self,
        env: simpy.Environment,
        *,
        max_batch: int,
        kv_capacity_bytes: float,
        kv_bytes_per_token: float,
        step_time: StepTime,
        on_step: OnStep,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if kv_bytes_per_token < 0 or kv_capacity_bytes < 0:
            raise ValueError("KV capacity and bytes per token must be >= 0")
        self._env = env
        self._max_batch = max_batch
        self._capacity_bytes = kv_capacity_bytes
        self._per_token_bytes = kv_bytes_per_token
        self._step_time = step_time
        self._on_step = on_step
        self._waiting: deque[_Sequence] = deque()
        self._running: dict[int, _Sequence] = {}  # admitted, in admission order
        self._busy = False
        self._kicked = False  # a step start is scheduled for the end of this instant
        self.kv_used_bytes = 0.0
        self.steps = 0
        self.busy_s = 0.0

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(self, seq_id: int, prompt_tokens: int, new_tokens: int) -> None:
        """Queue a sequence whose prompt input has arrived; it joins at a step boundary."""
        if prompt_tokens < 1 or new_tokens < 1:
            raise ValueError(
                f"sequence {seq_id}: prompt_tokens and new_tokens must be >= 1, got "
                f"{prompt_tokens} and {new_tokens}"
            )
        kv_bytes = (prompt_tokens + new_tokens) * self._per_token_bytes
        if kv_bytes > self._capacity_bytes:
            raise ValueError(
                f"sequence {seq_id} needs {kv_bytes:.3g} B of KV cache, more than the replica's "
                f"{self._capacity_bytes:.3g} B: it could never be admitted"
            )
        self._waiting.append(_Sequence(seq_id, prompt_tokens, new_tokens, kv_bytes))
        self._maybe_step()

    def ready(self, seq_id: int) -> None:
        """The input of ``seq_id``'s next step has arrived."""
        self._running[seq_id].ready = True
        self._maybe_step()

    def _admit_waiting(self) -> None:
        while self._waiting and len(self._running) < self._max_batch:
            head = self._waiting[0]
            if self.kv_used_bytes + head.kv_bytes > self._capacity_bytes:
                return  # first come, first served: no overtaking of a big sequence
            self._waiting.popleft()
            self.kv_used_bytes += head.kv_bytes
            self._running[head.seq_id] = head

    def _maybe_step(self) -> None:
        """Start a step at the end of this instant (so that everything arriving at the same
        moment joins it), unless one runs or is about to start."""
        if self._busy or self._kicked:
            return
        self._kicked = True
        self._env.timeout(0).callbacks.append(self._start_step)

    def _start_step(self, _event: simpy.events.Event) -> None:
        self._kicked = False
        if self._busy:
            return
        self._admit_waiting()
        batch = [s for s in self._running.values() if s.ready]
        if not batch:
            return
        prefills = [s.prompt_tokens for s in batch if s.generated == 0]
        contexts = [s.prompt_tokens + s.generated + 1 for s in batch if s.generated > 0]
        duration_s = self._step_time(prefills, contexts)
        for s in batch:
            s.ready = False
        self._busy = True
        start_s = self._env.now
        event = self._env.timeout(duration_s, value=(batch, start_s))
        event.callbacks.append(self._stepped)

    def _stepped(self, event: simpy.events.Event) -> None:
        value: Any = event.value
        batch: list[_Sequence] = value[0]
        start_s: float = value[1]
        end_s = self._env.now
        self._busy = False
        self.busy_s += end_s - start_s
        produced = []
        for s in batch:
            produced.append((s.seq_id, s.generated))
            s.generated += 1
            if s.generated == s.new_tokens:  # its last token: leave and free the cache
                del self._running[s.seq_id]
                self.kv_used_bytes -= s.kv_bytes
        step = self.steps
        self.steps += 1
        self._on_step(step, produced, start_s, end_s)
        self._maybe_step()
