"""Greedy generation through the split SmolLM2: lossless equals unsplit, SLICER is real, steps
go as codec-stream frames, and batched teacher forcing equals stepping both KV caches."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
import torch

import codec
import models
from codec.stream import open_encoder
from server.engine.generate import (
    _forced_batched,
    _forced_stepwise,
    generate,
    reference_tokens,
    teacher_forced_agreement,
)

NEW_TOKENS = 12


@functools.cache
def smollm2() -> models.CausalSplitModel:
    """SmolLM2-135M, loaded once per test session (other test modules share it)."""
    model = models.load("smollm2-135m")
    assert isinstance(model, models.CausalSplitModel)
    return model


@pytest.fixture(scope="module")
def lm() -> Iterator[models.CausalSplitModel]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield smollm2()
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def prompt(lm: models.CausalSplitModel) -> torch.Tensor:
    return lm.token_windows("test")[0].x[:32]


@pytest.fixture(scope="module")
def reference(lm: models.CausalSplitModel, prompt: torch.Tensor) -> list[int]:
    """The unsplit greedy tokens, computed once; a shorter run's are a prefix of them."""
    return reference_tokens(lm, prompt, NEW_TOKENS)


def test_reference_is_the_unsplit_models_greedy_continuation(
    lm: models.CausalSplitModel, prompt: torch.Tensor
) -> None:
    ids = prompt.clone()
    expected = []
    with torch.inference_mode():
        for _ in range(4):  # recompute the whole sequence each step: no cache involved
            expected.append(int(lm(ids[None])[0, -1].argmax()))
            ids = torch.cat([ids, torch.tensor([expected[-1]])])
    assert reference_tokens(lm, prompt, 4) == expected


@pytest.mark.parametrize("chosen", [None, {"id": "fp32"}])
def test_lossless_split_generation_equals_unsplit(
    lm: models.CausalSplitModel,
    prompt: torch.Tensor,
    reference: list[int],
    chosen: dict[str, str] | None,
) -> None:
    c = codec.get_codec(chosen) if chosen is not None else None
    trace = generate(lm, 8, c, prompt, NEW_TOKENS, reference=reference)
    assert trace.tokens == trace.reference_tokens == reference
    assert trace.matching_prefix == NEW_TOKENS
    assert len(trace.payload_bytes) == NEW_TOKENS  # the prompt, then every token but the last
    assert trace.raw_bytes == [4 * 576 * 32] + [4 * 576] * (NEW_TOKENS - 1)
    assert (trace.setup_bytes == 0) == (chosen is None)


def test_fp32_stream_sends_one_container_a_setup_and_one_frame_per_step(
    lm: models.CausalSplitModel, prompt: torch.Tensor, reference: list[int]
) -> None:
    c = codec.get_codec({"id": "fp32"})
    with torch.inference_mode():
        prefill = lm.head(prompt, 8)
        row = lm.head(prompt[:1], 8)  # any one-token IF: fp32 frames do not depend on values
    stream = open_encoder(c, prefill)
    trace = generate(lm, 8, c, prompt, 4)
    assert trace.tokens == trace.reference_tokens == reference[:4]
    assert trace.setup_bytes == len(stream.setup) > 0
    assert trace.payload_bytes == [len(c.encode(prefill))] + [len(stream.encode(row))] * 3
    assert trace.payload_bytes[1] < trace.payload_bytes[0] - 4 * 576 * 31  # no container header
    given = generate(lm, 8, c, prompt, 4, reference=trace.reference_tokens)
    assert given == trace
    with pytest.raises(ValueError, match="reference holds 3 tokens"):
        generate(lm, 8, c, prompt, 4, reference=trace.reference_tokens[:3])


def test_slicer_generation_sends_compressed_steps(
    lm: models.CausalSplitModel, prompt: torch.Tensor, reference: list[int]
) -> None:
    c = codec.get_codec({"id": "slicer", "max_nmse": 0.01})
    trace = generate(lm, 8, c, prompt, NEW_TOKENS, reference=reference)
    assert all(p < r / 4 for p, r in zip(trace.payload_bytes, trace.raw_bytes, strict=True))
    agreement = teacher_forced_agreement(lm, 8, c, prompt, NEW_TOKENS, reference=reference)
    assert 0.5 < agreement <= 1.0
    assert 0 <= trace.matching_prefix <= NEW_TOKENS


def test_split_zero_sends_token_ids(
    lm: models.CausalSplitModel, prompt: torch.Tensor, reference: list[int]
) -> None:
    fp16 = codec.get_codec({"id": "fp16"})  # ids skip the codec
    trace = generate(lm, 0, fp16, prompt, 3, reference=reference[:3])
    assert trace.tokens == trace.reference_tokens
    assert trace.payload_bytes == trace.raw_bytes == [4 * 32, 4, 4]
    assert trace.setup_bytes == 0
    with pytest.raises(ValueError, match="new_tokens"):
        generate(lm, 0, None, prompt, 0)


@pytest.mark.parametrize(("split", "chosen"), [(0, None), (8, {"id": "fp32"})])
def test_batched_teacher_forcing_equals_stepping_on_lossless_links(
    lm: models.CausalSplitModel,
    prompt: torch.Tensor,
    reference: list[int],
    split: int,
    chosen: dict[str, str] | None,
) -> None:
    c = codec.get_codec(chosen) if chosen is not None else None
    first = reference[:5]
    assert _forced_stepwise(lm, split, c, prompt, first) == first
    assert _forced_batched(lm, split, c, prompt, first) == first
    assert teacher_forced_agreement(lm, split, c, prompt, 5, reference=first) == 1.0


def test_batched_teacher_forcing_matches_stepping_on_slicer(
    lm: models.CausalSplitModel, prompt: torch.Tensor, reference: list[int]
) -> None:
    c = codec.get_codec({"id": "slicer", "max_nmse": 0.05})
    stepped = _forced_stepwise(lm, 8, c, prompt, reference)
    assert _forced_batched(lm, 8, c, prompt, reference) == stepped  # same top-1 at every step
    assert stepped != reference  # this budget does change some step: the test can fail
    agreement = teacher_forced_agreement(lm, 8, c, prompt, NEW_TOKENS, reference=reference)
    assert agreement == sum(a == b for a, b in zip(stepped, reference, strict=True)) / NEW_TOKENS
