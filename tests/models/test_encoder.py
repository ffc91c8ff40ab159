"""MiniLM-L6 as a split sentence encoder: exact at every split, equal to sentence-transformers
and to transformers' hidden states, profiles against real outputs."""

from __future__ import annotations

import pytest
import torch

import models
from models.encoder import EncoderBatch, MiniLMSplit, load_minilm, minilm_dir
from models.split import ModelError
from models.text import lee_sentences

SENTENCES = [*lee_sentences(3), "Short one."]  # different lengths, so the batch is padded


@pytest.fixture(scope="session")
def minilm() -> MiniLMSplit:
    return load_minilm()


@pytest.fixture(scope="session")
def batch(minilm: MiniLMSplit) -> EncoderBatch:
    return minilm.tokenize(SENTENCES)


def test_blocks_and_registry(minilm: MiniLMSplit) -> None:
    assert minilm.blocks == ("embeddings", *(f"layer.{i}" for i in range(6)), "pool")
    assert (minilm.name, minilm.task, minilm.pretrained) == (
        "minilm-l6",
        "sentence-embedding",
        True,
    )
    assert isinstance(models.load("minilm-l6"), MiniLMSplit)


def test_every_split_equals_unsplit(minilm: MiniLMSplit, batch: EncoderBatch) -> None:
    assert int(batch.mask.sum(1).min()) < batch.x.shape[1]  # some padding
    reference = minilm(batch)
    assert reference.shape == (4, 384)
    torch.testing.assert_close(reference.norm(dim=1), torch.ones(4))
    for split in minilm.split_points():
        h = minilm.head(batch, split)
        assert torch.equal(h.mask, batch.mask)
        torch.testing.assert_close(minilm.tail(h, split), reference, rtol=0, atol=1e-6)


def test_layers_match_transformers(minilm: MiniLMSplit, batch: EncoderBatch) -> None:
    with torch.no_grad():
        out = minilm.module(input_ids=batch.x, attention_mask=batch.mask, output_hidden_states=True)
    profiles = minilm.block_profiles(seq_len=batch.x.shape[1], batch=4)
    h = batch
    for split in range(1, minilm.num_blocks):  # hidden_states[0] is the embeddings' output
        h = minilm.run_blocks(h, split - 1, split)
        torch.testing.assert_close(h.x, out.hidden_states[split - 1], rtol=0, atol=1e-6)
        assert h.x.nbytes == profiles[split - 1].out_bytes
    assert minilm.run_blocks(h, 7, 8).x.nbytes == profiles[-1].out_bytes


def test_matches_sentence_transformers(minilm: MiniLMSplit, batch: EncoderBatch) -> None:
    st = pytest.importorskip("sentence_transformers")
    encoder = st.SentenceTransformer(str(minilm_dir()), device="cpu")
    expected = encoder.encode(SENTENCES, convert_to_tensor=True)
    torch.testing.assert_close(minilm(batch), expected, rtol=0, atol=1e-5)


def test_bare_ids_and_samples(minilm: MiniLMSplit) -> None:
    samples = minilm.samples()
    assert len(samples) == 200 and [s.label for s in samples] == [0] * 100 + [1] * 100
    first = samples[0]
    assert first.x.dtype == torch.int64 and first.x.dim() == 1 and first.x[0] == 101  # [CLS]
    one = minilm(first.x)
    torch.testing.assert_close(one, minilm(minilm.tokenize([first.text or ""])))
    docs = minilm.document_samples()
    assert len(docs) == 50 and max(d.x.shape[0] for d in docs) <= minilm.max_tokens == 256


def test_profiles(minilm: MiniLMSplit) -> None:
    profiles = minilm.block_profiles(seq_len=1)
    params = sum(p.numel() for p in minilm.module.encoder.layer[0].parameters())
    assert profiles[1].weight_bytes == 4 * params
    assert profiles[1].flops == pytest.approx(2 * params, rel=0.01)  # one token: 2 per weight
    assert all(p.kv_read_bytes == 0 and p.kv_bytes_per_token == 0 for p in profiles)
    assert profiles[0].weight_bytes == 4 * 384 * (3 + 2)  # word, position, type rows; LayerNorm
    long = minilm.block_profiles(seq_len=128, batch=2)
    assert long[1].flops > 256 * profiles[1].flops  # attention grows with the length


def test_bad_inputs(minilm: MiniLMSplit, batch: EncoderBatch) -> None:
    with pytest.raises(ModelError, match="tokenize"):
        minilm.head(torch.zeros(2, 3), 1)
    with pytest.raises(ModelError, match=r"\[B, T, d\]"):
        minilm.tail(batch, 3)
    with pytest.raises(ModelError, match="start <= stop"):
        minilm.run_blocks(batch, 2, 1)
