"""Greedy generation through the split SmolLM2: lossless equals unsplit, SLICER is real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import codec
import models
from fleet.generate import generate, reference_tokens, teacher_forced_agreement

NEW_TOKENS = 12


@pytest.fixture(scope="module")
def lm() -> Iterator[models.CausalSplitModel]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    model = models.load("smollm2-135m")
    assert isinstance(model, models.CausalSplitModel)
    yield model
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def prompt(lm: models.CausalSplitModel) -> torch.Tensor:
    return lm.token_windows("test")[0].x[:32]


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
    lm: models.CausalSplitModel, prompt: torch.Tensor, chosen: dict[str, str] | None
) -> None:
    c = codec.get_codec(chosen) if chosen is not None else None
    trace = generate(lm, 8, c, prompt, NEW_TOKENS)
    assert trace.tokens == trace.reference_tokens
    assert trace.matching_prefix == NEW_TOKENS
    assert len(trace.payload_bytes) == NEW_TOKENS  # the prompt, then every token but the last
    assert trace.raw_bytes == [4 * 576 * 32] + [4 * 576] * (NEW_TOKENS - 1)


def test_slicer_generation_sends_compressed_steps(
    lm: models.CausalSplitModel, prompt: torch.Tensor
) -> None:
    c = codec.get_codec({"id": "slicer", "max_nmse": 0.01})
    trace = generate(lm, 8, c, prompt, NEW_TOKENS)
    assert all(p < r / 4 for p, r in zip(trace.payload_bytes, trace.raw_bytes, strict=True))
    agreement = teacher_forced_agreement(lm, 8, c, prompt, NEW_TOKENS)
    assert 0.5 < agreement <= 1.0
    assert 0 <= trace.matching_prefix <= NEW_TOKENS


def test_split_zero_sends_token_ids(lm: models.CausalSplitModel, prompt: torch.Tensor) -> None:
    trace = generate(lm, 0, None, prompt, 3)
    assert trace.tokens == trace.reference_tokens
    assert trace.payload_bytes == trace.raw_bytes == [4 * 32, 4, 4]
    with pytest.raises(ValueError, match="new_tokens"):
        generate(lm, 0, None, prompt, 0)
