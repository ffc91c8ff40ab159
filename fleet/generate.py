"""Greedy generation through a split causal LM with a codec on every uplink transfer.

The device runs the head blocks with its own KV cache, the server the tail blocks with its
own: the prompt's IF goes up once (prefill), then for every generated token the device runs
the head on that token and sends one token's IF. Each transfer is really encoded and decoded,
so the tokens are what the compressed pipeline produces. ``generate`` records every step's
payload and the tokens; the unsplit model's greedy tokens (with its KV cache) come alongside,
and ``teacher_forced_agreement`` runs the split pipeline on the unsplit tokens and counts
the steps whose top-1 token matches the unsplit model's: the per-step fidelity of the codec,
free of the drift that one early mismatch causes in free-running generation.

Step payloads here are whole codec containers; per-sequence codec sessions, whose steps carry
codes only, are future work (issue 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from models.split import CausalSplitModel


@dataclass(frozen=True)
class GenerationTrace:
    tokens: list[int]  # greedy tokens through the split, with the codec
    reference_tokens: list[int]  # the unsplit model's greedy tokens
    raw_bytes: list[int]  # per uplink transfer: [prompt IF, then one per generated token but
    payload_bytes: list[int]  # the last] as float32 and as sent

    @property
    def matching_prefix(self) -> int:
        """How many leading tokens equal the unsplit model's."""
        n = 0
        for got, want in zip(self.tokens, self.reference_tokens, strict=False):
            if got != want:
                break
            n += 1
        return n


def generate(
    model: CausalSplitModel, split: int, codec: Any, prompt: torch.Tensor, new_tokens: int
) -> GenerationTrace:
    """``new_tokens`` greedy tokens after ``prompt`` (ids [T]) through ``split`` with
    ``codec`` (None: float32 without loss) on every uplink transfer."""
    if new_tokens < 1:
        raise ValueError(f"new_tokens must be >= 1, got {new_tokens}")
    reference = reference_tokens(model, prompt, new_tokens)
    tokens, raw, sent = _run(model, split, codec, prompt, new_tokens, forced=None)
    return GenerationTrace(tokens, reference, raw, sent)


def reference_tokens(model: CausalSplitModel, prompt: torch.Tensor, new_tokens: int) -> list[int]:
    """The unsplit model's greedy continuation (all blocks on one side, with a KV cache)."""
    with torch.inference_mode():
        server = model.server_session(0)
        logits = server.prefill(prompt)
        out = [int(logits.argmax())]
        while len(out) < new_tokens:
            out.append(int(server.step(torch.tensor([out[-1]])).argmax()))
    return out


def teacher_forced_agreement(
    model: CausalSplitModel, split: int, codec: Any, prompt: torch.Tensor, new_tokens: int
) -> float:
    """Share of steps whose split top-1 token equals the unsplit model's, feeding the unsplit
    model's own tokens at every step."""
    reference = reference_tokens(model, prompt, new_tokens)
    tokens, _, _ = _run(model, split, codec, prompt, new_tokens, forced=reference)
    return sum(a == b for a, b in zip(tokens, reference, strict=True)) / new_tokens


def _run(
    model: CausalSplitModel,
    split: int,
    codec: Any,
    prompt: torch.Tensor,
    new_tokens: int,
    forced: list[int] | None,
) -> tuple[list[int], list[int], list[int]]:
    device, server = model.device_session(split), model.server_session(split)
    raw: list[int] = []
    sent: list[int] = []

    def uplink(h: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(h):  # split 0: token ids, sent as int32
            raw.append(4 * h.numel())
            sent.append(4 * h.numel())
            return h
        raw.append(4 * h.numel())
        if codec is None:
            sent.append(4 * h.numel())
            return h
        payload = codec.encode(h)
        sent.append(len(payload))
        return codec.decode(payload).to(h.dtype)

    tokens: list[int] = []
    with torch.inference_mode():
        logits = server.prefill(uplink(device.prefill(prompt)))
        tokens.append(int(logits.argmax()))
        while len(tokens) < new_tokens:
            fed = tokens[-1] if forced is None else forced[len(tokens) - 1]
            logits = server.step(uplink(device.step(fed)))
            tokens.append(int(logits.argmax()))
    return tokens, raw, sent
