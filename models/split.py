"""The split-model contract: a DNN cut into named blocks, run as a head on the device and a tail
on the server at any split point.

Split point ``s`` in ``0..L`` (``L = len(blocks)``) means the device runs ``blocks[:s]`` and the
server ``blocks[s:]``: 0 sends the raw input, ``L`` runs everything on the device. For every
model and split, ``tail(head(x, s), s)`` equals the unsplit output to float tolerance.
Causal LMs add per-sequence sessions (``CausalSplitModel``) whose KV caches live on the side
that runs the attention layers: blocks before the split on the device, the rest on the server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


class ModelError(ValueError):
    """A model name, split point, input or weights package is wrong; the message says how."""


@dataclass(frozen=True)
class Sample:
    """One real input with a stable id (``input_id`` i always yields the same sample)."""

    input_id: int
    x: Any  # the model input: token ids [T] (int64), or an image tensor [3, H, W]
    label: Any = None  # task label where the data has one (e.g. 0/1 sentiment)
    text: str | None = None


@dataclass(frozen=True)
class BlockProfile:
    """What one block costs for one call: the numbers the cost model needs."""

    name: str
    flops: float  # floating-point operations of the call (multiply-add = 2)
    weight_bytes: float  # parameters read once per call, whatever the batch
    activation_bytes: float  # activations read and written by the call
    kv_read_bytes: float  # KV cache read by attention (decode steps over a context)
    out_bytes: float  # the block's output, i.e. the IF size when the split is after it
    kv_bytes_per_token: float  # KV cache a sequence keeps per token in this block


class SplitModel(ABC):
    """A model cut into blocks. Subclasses set the class attributes and the four methods."""

    name: str
    task: str  # "causal-lm" | "sentence-embedding" | "image-classification"
    pretrained: bool  # False: random weights, for timing and cost studies only

    @property
    @abstractmethod
    def blocks(self) -> tuple[str, ...]:
        """Block names in execution order."""

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def split_points(self) -> range:
        """Valid split points: 0 (send the input) .. num_blocks (device runs everything)."""
        return range(self.num_blocks + 1)

    def check_split(self, split: int) -> int:
        if (
            isinstance(split, bool)
            or not isinstance(split, int)
            or not 0 <= split <= self.num_blocks
        ):
            raise ModelError(
                f"{self.name}: split must be an integer in 0..{self.num_blocks}, got {split!r}"
            )
        return split

    @abstractmethod
    def head(self, x: Any, split: int) -> Any:
        """Run ``blocks[:split]`` on a batch of inputs; returns the intermediate feature."""

    @abstractmethod
    def tail(self, h: Any, split: int) -> torch.Tensor:
        """Run ``blocks[split:]`` on an intermediate feature; returns the model output."""

    def __call__(self, x: Any) -> torch.Tensor:
        """The unsplit model."""
        return self.tail(self.head(x, self.num_blocks), self.num_blocks)

    @abstractmethod
    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        """Per-block cost of one call on ``batch`` inputs of ``seq_len`` tokens (vision models
        ignore the lengths), attending over ``context_len`` tokens (default ``seq_len``)."""

    @abstractmethod
    def samples(self) -> Sequence[Sample]:
        """The model's real offline inputs, indexable by input id."""


class DeviceSession(ABC):
    """The device side of one generated sequence: runs the head blocks with their KV cache."""

    @abstractmethod
    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        """Prompt token ids [T] -> the prompt's IF ([T, d]; the ids themselves at split 0)."""

    @abstractmethod
    def step(self, token: int) -> torch.Tensor:
        """The newest token -> its IF ([1, d]; the id itself at split 0)."""


class ServerSession(ABC):
    """The server side of one generated sequence: runs the tail blocks with their KV cache."""

    @abstractmethod
    def prefill(self, h: torch.Tensor) -> torch.Tensor:
        """The prompt's IF -> next-token logits after the last prompt position ([vocab])."""

    @abstractmethod
    def step(self, h: torch.Tensor) -> torch.Tensor:
        """One token's IF -> next-token logits ([vocab])."""


class CausalSplitModel(SplitModel):
    """A causal LM: besides whole-sequence ``head``/``tail`` (logits at every position), it
    generates through the split with one device session and one server session per sequence."""

    @abstractmethod
    def device_session(self, split: int) -> DeviceSession: ...

    @abstractmethod
    def server_session(self, split: int) -> ServerSession: ...
