"""Greedy generation through a split causal LM with a codec on every uplink transfer.

The device runs the head blocks with its own KV cache, the server the tail blocks with its
own: the prompt's IF goes up once (prefill), then for every generated token the device runs
the head on that token and sends one token's IF. Each transfer is really encoded and decoded,
so the tokens are what the compressed pipeline produces:

* the prompt's IF ``[T, d]`` goes as one whole codec container (``codec.encode``); the device
  then opens a codec stream on it (``codec.stream.open_encoder``), whose set-up bytes go once
  with the prompt and let the server open the matching decoder; every later token's IF
  ``[1, d]`` goes as one stream frame (codes only);
* split 0 sends the token ids as int32 (4 bytes a token), no codec, no set-up;
* ``codec=None`` sends float32 without loss (4 bytes an element), no set-up.

``generate`` records every transfer's size and the tokens; the unsplit model's greedy tokens
(with its KV cache) come alongside. ``teacher_forced_agreement`` feeds the unsplit model's
tokens instead of the split's own and counts the steps whose top-1 token matches: the per-step
fidelity of the codec, free of the drift that one early mismatch causes in free-running
generation. By default it runs the device head once over prompt + reference tokens, encodes
the prompt rows as a container and each later row as a stream frame in order, and runs the
server tail once over the decoded rows: causal attention makes that the same computation as
stepping both KV caches (``stepwise=True``), up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from codec.stream import open_decoder, open_encoder
from models.split import CausalSplitModel


@dataclass(frozen=True)
class GenerationTrace:
    tokens: list[int]  # greedy tokens through the split, with the codec
    reference_tokens: list[int]  # the unsplit model's greedy tokens
    # per uplink transfer: [the prompt's IF, then one per generated token but the last], as
    # float32 (int32 ids at split 0) and as sent (a container, then stream frames)
    raw_bytes: list[int]
    payload_bytes: list[int]
    setup_bytes: int = 0  # the codec stream's set-up, sent once with the prompt

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
    model: CausalSplitModel,
    split: int,
    codec: Any,
    prompt: torch.Tensor,
    new_tokens: int,
    *,
    reference: list[int] | None = None,
) -> GenerationTrace:
    """``new_tokens`` greedy tokens after ``prompt`` (ids [T]) through ``split`` with
    ``codec`` (None: float32 without loss) on every uplink transfer. ``reference``: the
    unsplit greedy tokens if already known (``reference_tokens``), else computed here."""
    _check_new_tokens(new_tokens)
    if reference is None:
        reference = reference_tokens(model, prompt, new_tokens)
    _check_reference(reference, new_tokens)
    link = _Uplink(codec)
    device, server = model.device_session(split), model.server_session(split)
    tokens: list[int] = []
    with torch.inference_mode():
        logits = server.prefill(link.prompt(device.prefill(prompt)))
        tokens.append(int(logits.argmax()))
        while len(tokens) < new_tokens:
            logits = server.step(link.step(device.step(tokens[-1])))
            tokens.append(int(logits.argmax()))
    return GenerationTrace(tokens, list(reference), link.raw, link.sent, link.setup_bytes)


def reference_tokens(model: CausalSplitModel, prompt: torch.Tensor, new_tokens: int) -> list[int]:
    """The unsplit model's greedy continuation (all blocks on one side, with a KV cache)."""
    _check_new_tokens(new_tokens)
    with torch.inference_mode():
        server = model.server_session(0)
        logits = server.prefill(prompt)
        out = [int(logits.argmax())]
        while len(out) < new_tokens:
            out.append(int(server.step(torch.tensor([out[-1]])).argmax()))
    return out


def teacher_forced_agreement(
    model: CausalSplitModel,
    split: int,
    codec: Any,
    prompt: torch.Tensor,
    new_tokens: int,
    *,
    reference: list[int] | None = None,
    stepwise: bool = False,
) -> float:
    """Share of steps whose split top-1 token equals the unsplit model's, feeding the unsplit
    model's own tokens at every step (one batched pass per side unless ``stepwise``)."""
    if reference is None:
        reference = reference_tokens(model, prompt, new_tokens)
    _check_new_tokens(new_tokens)
    _check_reference(reference, new_tokens)
    run = _forced_stepwise if stepwise else _forced_batched
    tokens = run(model, split, codec, prompt, reference)
    return sum(a == b for a, b in zip(tokens, reference, strict=True)) / new_tokens


def _forced_stepwise(
    model: CausalSplitModel, split: int, codec: Any, prompt: torch.Tensor, reference: list[int]
) -> list[int]:
    """The split's top-1 token at every step, stepping both KV caches on the forced tokens."""
    link = _Uplink(codec)
    device, server = model.device_session(split), model.server_session(split)
    with torch.inference_mode():
        tokens = [int(server.prefill(link.prompt(device.prefill(prompt))).argmax())]
        for fed in reference[:-1]:
            tokens.append(int(server.step(link.step(device.step(fed))).argmax()))
    return tokens


def _forced_batched(
    model: CausalSplitModel, split: int, codec: Any, prompt: torch.Tensor, reference: list[int]
) -> list[int]:
    """The split's top-1 token at every step from one head pass and one tail pass over prompt
    + forced tokens; every row crosses the uplink exactly as in ``_forced_stepwise``."""
    prompt_len = int(prompt.shape[0])
    fed = torch.tensor(reference[:-1], dtype=torch.int64)
    link = _Uplink(codec)
    with torch.inference_mode():
        h = model.head(torch.cat([prompt, fed]), split)
        rows = [link.prompt(h[:prompt_len])]
        rows += [link.step(h[t : t + 1]) for t in range(prompt_len, int(h.shape[0]))]
        logits = model.tail(torch.cat(rows), split)
        tokens: list[int] = logits[prompt_len - 1 :].argmax(-1).tolist()
    return tokens


class _Uplink:
    """One sequence's uplink: encodes what the device sends, decodes what the server gets,
    and records the size of every transfer."""

    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.raw: list[int] = []
        self.sent: list[int] = []
        self.setup_bytes = 0
        self._encoder: Any = None
        self._decoder: Any = None

    def prompt(self, h: torch.Tensor) -> torch.Tensor:
        """The prompt's IF ``[T, d]`` (ids ``[T]`` at split 0): one whole container, then the
        stream opens on it."""
        self.raw.append(4 * h.numel())
        if not torch.is_floating_point(h) or self.codec is None:  # int32 ids / float32
            self.sent.append(4 * h.numel())
            return h
        payload = self.codec.encode(h)
        self.sent.append(len(payload))
        self._encoder = open_encoder(self.codec, h)
        setup = self._encoder.setup
        self.setup_bytes = len(setup)
        self._decoder = open_decoder(self.codec, setup)
        decoded: torch.Tensor = self.codec.decode(payload)
        return decoded.to(h.dtype)

    def step(self, h: torch.Tensor) -> torch.Tensor:
        """One token's IF ``[1, d]`` (its id at split 0): one stream frame."""
        self.raw.append(4 * h.numel())
        if self._encoder is None:  # ids or float32 without a codec
            self.sent.append(4 * h.numel())
            return h
        frame = self._encoder.encode(h)
        self.sent.append(len(frame))
        decoded: torch.Tensor = self._decoder.decode(frame)
        return decoded.to(h.dtype)


def _check_new_tokens(new_tokens: int) -> None:
    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens < 1:
        raise ValueError(f"new_tokens must be an integer >= 1, got {new_tokens!r}")


def _check_reference(reference: list[int], new_tokens: int) -> None:
    if len(reference) != new_tokens:
        raise ValueError(
            f"reference holds {len(reference)} tokens but new_tokens is {new_tokens}; pass "
            "reference_tokens(model, prompt, new_tokens)"
        )
