"""Simulated durations of the model: head and tail time and energy from ``models.cost``
(codec time is ``models.codec_time``). Nothing here reads a clock.

Head: ``range_cost(blocks[:split])`` on the group's hardware for one input of ``seq_len``
tokens. Tail: ``range_cost(blocks[split:])`` on the server's hardware at the batch size (weights
are read once per batch, so time per request falls with the batch). Both are cached per
(split, batch). The ``ideal`` hardware entry costs nothing and loads no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.hardware import HardwareSpec
    from models.split import BlockProfile, SplitModel

IDEAL = "ideal"


class ModelCosts:
    """Head and tail costs of one model at one input length, on named hardware entries."""

    def __init__(self, model: str, seq_len: int) -> None:
        self.model = model
        self.seq_len = seq_len
        self._profiles: dict[int, list[BlockProfile]] = {}
        self._shape: SplitModel | None = None
        self._head = lru_cache(maxsize=None)(self._head_uncached)
        self._tail = lru_cache(maxsize=None)(self._tail_uncached)
        self._step = lru_cache(maxsize=4096)(self._step_uncached)
        self._head_step = lru_cache(maxsize=4096)(self._head_step_uncached)

    def head(self, hardware: HardwareSpec, dtype: str, split: int) -> tuple[float, float]:
        """(time_s, energy_j) of one head call on one input."""
        return self._head(hardware, dtype, split)

    def tail_s(self, hardware: HardwareSpec, dtype: str, split: int, batch: int) -> float:
        """Time of one tail call over a batch of ``batch`` inputs."""
        return self._tail(hardware, dtype, split, batch)

    def tail_step_s(
        self, hardware: HardwareSpec, dtype: str, split: int, contexts: Sequence[int]
    ) -> float:
        """One autoregressive decode step of the tail for a running batch: each sequence adds
        one token and attends over its context (``contexts``, tokens including the new one).
        Weights are read once per step and every sequence's KV cache once; KV reads and
        attention FLOPs are linear in context, so the batch is costed at its mean context
        (rounded), which is exact up to that rounding."""
        if not contexts:
            raise ValueError("a decode step needs at least one sequence")
        context = max(1, round(sum(contexts) / len(contexts)))
        return self._step(hardware, dtype, split, len(contexts), context)

    def head_step(
        self, hardware: HardwareSpec, dtype: str, split: int, context: int
    ) -> tuple[float, float]:
        """(time_s, energy_j) of one decode step of the head on the device: one new token
        attending over ``context`` tokens (the new one included)."""
        return self._head_step(hardware, dtype, split, context)

    def kv_bytes_per_token(self, start: int, stop: int, dtype: str = "fp32") -> float:
        """KV-cache bytes one sequence keeps per token in blocks ``[start, stop)``, stored in
        ``dtype``."""
        from models.cost import DTYPE_BYTES, PROFILE_DTYPE_BYTES

        profiles = self._block_profiles(1)
        per_token = float(sum(p.kv_bytes_per_token for p in profiles[start:stop]))
        return per_token * DTYPE_BYTES[dtype] / PROFILE_DTYPE_BYTES

    def weight_bytes(self, start: int, stop: int, dtype: str = "fp32") -> float:
        """Parameter bytes of blocks ``[start, stop)`` stored in ``dtype``."""
        from models.cost import DTYPE_BYTES, PROFILE_DTYPE_BYTES

        profiles = self._block_profiles(1)
        total = float(sum(p.weight_bytes for p in profiles[start:stop]))
        return total * DTYPE_BYTES[dtype] / PROFILE_DTYPE_BYTES

    @property
    def num_blocks(self) -> int:
        return self._shape_model().num_blocks

    def _head_step_uncached(
        self, hardware: HardwareSpec, dtype: str, split: int, context: int
    ) -> tuple[float, float]:
        if hardware.name == IDEAL or split == 0:
            hardware.peak(dtype)
            return 0.0, 0.0
        from models.cost import range_cost

        profiles = self._shape_model().block_profiles(seq_len=1, batch=1, context_len=context)
        cost = range_cost(profiles, 0, split, hardware, dtype)
        return cost.time_s, cost.energy_j

    def _step_uncached(
        self, hardware: HardwareSpec, dtype: str, split: int, batch: int, context: int
    ) -> float:
        if hardware.name == IDEAL:
            hardware.peak(dtype)
            return 0.0
        from models.cost import range_cost

        shape = self._shape_model()
        profiles = shape.block_profiles(seq_len=1, batch=batch, context_len=context)
        return range_cost(profiles, split, len(profiles), hardware, dtype).time_s

    def _head_uncached(self, hardware: HardwareSpec, dtype: str, split: int) -> tuple[float, float]:
        if hardware.name == IDEAL or split == 0:
            hardware.peak(dtype)
            return 0.0, 0.0
        from models.cost import range_cost

        cost = range_cost(self._block_profiles(1), 0, split, hardware, dtype)
        return cost.time_s, cost.energy_j

    def _tail_uncached(self, hardware: HardwareSpec, dtype: str, split: int, batch: int) -> float:
        if hardware.name == IDEAL:
            hardware.peak(dtype)
            return 0.0
        from models.cost import range_cost

        profiles = self._block_profiles(batch)
        return range_cost(profiles, split, len(profiles), hardware, dtype).time_s

    def _shape_model(self) -> SplitModel:
        if self._shape is None:
            from models import load_shape

            self._shape = load_shape(self.model)
        return self._shape

    def _block_profiles(self, batch: int) -> list[BlockProfile]:
        if batch not in self._profiles:
            shape = self._shape_model()
            self._profiles[batch] = shape.block_profiles(seq_len=self.seq_len, batch=batch)
        return self._profiles[batch]
