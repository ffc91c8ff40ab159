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

The replica decides *when*; ``step_time(prefills, decodes)`` says how long a step takes, given
(seq_id, prompt tokens) per prefill and (seq_id, context tokens, the new one included) per
decode, and ``on_step(step, sequences, start_s, end_s)`` hears about each one (``sequences``
lists (seq_id, token_index) with token 0 the prefill's output).

With ``window_s`` the replica keeps per-window statistics for ``servers.parquet`` (``table``):
busy seconds (exact across windows), steps and sequences admitted (in the window a step starts
or a sequence is admitted), tokens (where their step ends), the time-average number of
admitted sequences, the most KV memory reserved and the longest admission queue.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy

StepTime = Callable[[list[tuple[int, int]], list[tuple[int, int]]], float]
OnStep = Callable[[int, list[tuple[int, int]], float, float], None]
#: ``table`` columns after run_id, replica_id and the window bounds.
WINDOW_STATS = (
    "busy_s",
    "steps",
    "admitted",
    "tokens",
    "running_s",  # integral of the admitted count over the window; table() gives its mean
    "kv_used_max_bytes",
    "waiting_max",
    "dropped",  # sequences refused (``refuse``)
)


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
        window_s: float = math.inf,
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
        self._window_s = window_s
        # counters by window; running_s and kv_used_max_bytes come from _levels in table()
        self._stats: dict[str, dict[int, float]] = {
            name: {} for name in ("busy_s", "steps", "admitted", "tokens", "waiting_max", "dropped")
        }
        self._levels: list[tuple[float, int, float]] = []  # (time, admitted, KV bytes) changes

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(
        self,
        seq_id: int,
        prompt_tokens: int,
        new_tokens: int,
        kv_bytes_per_token: float | None = None,
    ) -> None:
        """Queue a sequence whose prompt input has arrived; it joins at a step boundary.
        ``kv_bytes_per_token`` overrides the replica's (sequences cut at other splits keep
        other numbers of blocks on the server)."""
        if prompt_tokens < 1 or new_tokens < 1:
            raise ValueError(
                f"sequence {seq_id}: prompt_tokens and new_tokens must be >= 1, got "
                f"{prompt_tokens} and {new_tokens}"
            )
        per_token = self._per_token_bytes if kv_bytes_per_token is None else kv_bytes_per_token
        kv_bytes = (prompt_tokens + new_tokens) * per_token
        if kv_bytes > self._capacity_bytes:
            raise ValueError(
                f"sequence {seq_id} needs {kv_bytes:.3g} B of KV cache, more than the replica's "
                f"{self._capacity_bytes:.3g} B: it could never be admitted"
            )
        self._waiting.append(_Sequence(seq_id, prompt_tokens, new_tokens, kv_bytes))
        self._waiting_max()
        self._maybe_step()

    def fits(self, kv_bytes: float) -> bool:
        """Whether a sequence reserving ``kv_bytes`` would be admitted at the next step
        boundary (behind everything already waiting)."""
        waiting_bytes = sum(s.kv_bytes for s in self._waiting)
        slots = len(self._running) + len(self._waiting) < self._max_batch
        return slots and self.kv_used_bytes + waiting_bytes + kv_bytes <= self._capacity_bytes

    def refuse(self) -> None:
        """Count a sequence its caller refused here (a full admission queue)."""
        self._add("dropped", self._window(self._env.now), 1)

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
            self._add("admitted", self._window(self._env.now), 1)
            self._level_changed()

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
        prefills = [(s.seq_id, s.prompt_tokens) for s in batch if s.generated == 0]
        decodes = [(s.seq_id, s.prompt_tokens + s.generated + 1) for s in batch if s.generated]
        duration_s = self._step_time(prefills, decodes)
        for s in batch:
            s.ready = False
        self._busy = True
        start_s = self._env.now
        self._add("steps", self._window(start_s), 1)
        event = self._env.timeout(duration_s, value=(batch, start_s))
        event.callbacks.append(self._stepped)

    def _stepped(self, event: simpy.events.Event) -> None:
        value: Any = event.value
        batch: list[_Sequence] = value[0]
        start_s: float = value[1]
        end_s = self._env.now
        self._busy = False
        self.busy_s += end_s - start_s
        self._add_busy(start_s, end_s)
        self._add("tokens", self._window(end_s), len(batch))
        produced = []
        for s in batch:
            produced.append((s.seq_id, s.generated))
            s.generated += 1
            if s.generated == s.new_tokens:  # its last token: leave and free the cache
                del self._running[s.seq_id]
                self.kv_used_bytes -= s.kv_bytes
                self._level_changed()
        step = self.steps
        self.steps += 1
        self._on_step(step, produced, start_s, end_s)
        self._maybe_step()

    # -- per-window statistics ----------------------------------------------------------------
    def table(self, replica_id: int, end_s: float) -> list[dict[str, float]]:
        """One row per window up to ``end_s`` in which this replica did anything or held a
        sequence: the window bounds and WINDOW_STATS (``running_mean`` in sequences)."""
        width = self._window_s
        last = self._window(end_s) if end_s > 0 else 0
        running_s: dict[int, float] = {}
        kv_max: dict[int, float] = {}
        levels = [*self._levels, (end_s, 0, 0.0)]
        for (t0, running, kv), (t1, _, _) in itertools.pairwise(levels):
            if running == 0:
                continue
            w = self._window(t0)
            while True:  # the level holds over [t0, t1): every window it touches
                stop_s = min(t1, (w + 1) * width) if width < math.inf else t1
                running_s[w] = running_s.get(w, 0.0) + running * (stop_s - t0)
                kv_max[w] = max(kv_max.get(w, 0.0), kv)
                if stop_s >= t1 or w >= last:
                    break
                t0, w = stop_s, w + 1
        stats = {**self._stats, "running_s": running_s, "kv_used_max_bytes": kv_max}
        windows = sorted(set().union(*(set(v) for v in stats.values())))
        rows = []
        for w in windows:
            start_s = w * width if width < math.inf else 0.0
            stop_s = (w + 1) * width if width < math.inf else end_s
            row: dict[str, float] = {
                "replica_id": replica_id,
                "window_start_s": start_s,
                "window_end_s": stop_s,
            }
            for name in WINDOW_STATS:
                row[name] = stats[name].get(w, 0.0)
            span_s = min(stop_s, end_s) - start_s
            row["running_mean"] = row.pop("running_s") / span_s if span_s > 0 else 0.0
            rows.append(row)
        return rows

    def _window(self, t_s: float) -> int:
        return int(t_s / self._window_s) if self._window_s < math.inf else 0

    def _add(self, name: str, window: int, amount: float) -> None:
        values = self._stats[name]
        values[window] = values.get(window, 0.0) + amount

    def _level_changed(self) -> None:
        """Note the admitted count and KV reservation now (after a change)."""
        self._levels.append((self._env.now, len(self._running), self.kv_used_bytes))
        self._waiting_max()

    def _waiting_max(self) -> None:
        values, window = self._stats["waiting_max"], self._window(self._env.now)
        if len(self._waiting) > values.get(window, 0.0):
            values[window] = len(self._waiting)

    def _add_busy(self, start_s: float, end_s: float) -> None:
        width = self._window_s
        if width == math.inf:
            self._add("busy_s", 0, end_s - start_s)
            return
        window = int(start_s / width)
        while start_s < end_s:
            stop_s = min(end_s, (window + 1) * width)
            self._add("busy_s", window, stop_s - start_s)
            start_s, window = stop_s, window + 1
