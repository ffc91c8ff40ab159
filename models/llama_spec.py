"""Llama-architecture configs and their analytic costs: the published shapes of the synthetic
architectures and per-block FLOPs and bytes for any ``LlamaSpec`` (no weights needed). Gemma 3
fits the same spec with four norms per layer, q/k norms and sliding-window layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.split import BlockProfile

_ID_BYTES = 8  # int64 token ids
PROFILE_BYTES = 4  # BlockProfile byte counts are float32, whatever the module's dtype


@dataclass(frozen=True)
class LlamaSpec:
    """The config numbers that fix a Llama-family model's shapes and costs."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool
    qkv_bias: bool = False  # Qwen2: biases on q/k/v (none on o)
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position: int = 8192
    head_dim: int = 0  # 0: hidden_size // num_heads
    layer_norms: int = 2  # RMSNorm weight vectors per layer (Gemma 3: 4, around both sublayers)
    qk_norm: bool = False  # Gemma 3: an RMSNorm over each head's q and k
    sliding_window: int = 0  # tokens a "sliding_attention" layer attends to (0: none)
    layer_types: tuple[str, ...] = ()  # per layer "full_attention" | "sliding_attention"

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        """Width of one of K or V per token and layer (GQA: kv heads x head dim)."""
        return self.num_kv_heads * self.d_head

    def layer_params(self) -> int:
        d, q_dim = self.hidden_size, self.num_heads * self.d_head
        bias = q_dim + 2 * self.kv_dim if self.qkv_bias else 0
        norms = self.layer_norms * d + (2 * self.d_head if self.qk_norm else 0)
        return 2 * d * q_dim + 2 * d * self.kv_dim + bias + 3 * d * self.intermediate_size + norms

    def attended(self, layer: int, context_len: int) -> int:
        """Tokens layer ``layer`` attends to (and keeps K and V of) over ``context_len``."""
        sliding = self.layer_types and self.layer_types[layer] == "sliding_attention"
        return (
            min(context_len, self.sliding_window)
            if sliding and self.sliding_window
            else context_len
        )

    def param_count(self) -> int:
        """Parameters as published: a tied lm_head shares the embedding table."""
        table = self.vocab_size * self.hidden_size
        lm_head = 0 if self.tie_embeddings else table
        return table + self.num_layers * self.layer_params() + self.hidden_size + lm_head

    @classmethod
    def from_config(cls, config: Any) -> LlamaSpec:
        """The spec of a transformers ``LlamaConfig``."""
        rope = getattr(config, "rope_parameters", None) or {}
        return cls(
            hidden_size=int(config.hidden_size),
            num_layers=int(config.num_hidden_layers),
            num_heads=int(config.num_attention_heads),
            num_kv_heads=int(config.num_key_value_heads),
            intermediate_size=int(config.intermediate_size),
            vocab_size=int(config.vocab_size),
            tie_embeddings=bool(config.tie_word_embeddings),
            qkv_bias=bool(config.attention_bias),
            rope_theta=float(rope.get("rope_theta", 10000.0)),
            rms_norm_eps=float(config.rms_norm_eps),
            max_position=int(config.max_position_embeddings),
            head_dim=int(getattr(config, "head_dim", 0) or 0),
        )

    def to_config(self) -> Any:
        """A transformers ``LlamaConfig`` (RoPE scaling variants are not modelled)."""
        from transformers import LlamaConfig

        return LlamaConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size,
            tie_word_embeddings=self.tie_embeddings,
            attention_bias=self.qkv_bias,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            rms_norm_eps=self.rms_norm_eps,
            max_position_embeddings=self.max_position,
            head_dim=self.d_head,
        )


# Published configs, copied from each model's config.json on its Hugging Face model card
# (hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size,
# vocab_size, tie_word_embeddings, rope_theta, rms_norm_eps, max_position_embeddings).
SYNTHETIC_SPECS: dict[str, LlamaSpec] = {
    # meta-llama/Meta-Llama-3-8B
    "llama-3-8b": LlamaSpec(4096, 32, 32, 8, 14336, 128256, False, False, 500000.0, 1e-5, 8192),
    # meta-llama/Llama-3.1-70B (its "llama3" rope_scaling changes no shape or cost)
    "llama-3.1-70b": LlamaSpec(
        8192, 80, 64, 8, 28672, 128256, False, False, 500000.0, 1e-5, 131072
    ),
    # meta-llama/Llama-3.2-1B
    "llama-3.2-1b": LlamaSpec(2048, 16, 32, 8, 8192, 128256, True, False, 500000.0, 1e-5, 131072),
    # mistralai/Mistral-7B-v0.3 (no sliding window, unlike v0.1)
    "mistral-7b": LlamaSpec(4096, 32, 32, 8, 14336, 32768, False, False, 1e6, 1e-5, 32768),
    # Qwen/Qwen2.5-0.5B (Qwen2 = Llama with q/k/v biases)
    "qwen2.5-0.5b": LlamaSpec(896, 24, 14, 2, 4864, 151936, True, True, 1e6, 1e-6, 32768),
    # HuggingFaceTB/SmolLM2-1.7B
    "smollm2-1.7b": LlamaSpec(2048, 24, 32, 32, 8192, 49152, True, False, 130000.0, 1e-5, 8192),
    # HuggingFaceTB/SmolLM2-135M
    "smollm2-135m": LlamaSpec(576, 30, 9, 3, 1536, 49152, True, False, 100000.0, 1e-5, 8192),
}


def llama_block_profiles(
    spec: LlamaSpec, seq_len: int, batch: int, context_len: int
) -> list[BlockProfile]:
    """Analytic per-block costs, in float32 bytes as ``models.cost`` expects (it scales them
    for other dtypes). FLOPs count matrix products only (2 per multiply-add): q/k/v/o
    projections with GQA, the 3 SwiGLU (GeGLU) matrices, QK^T and AV over the full
    ``context_len`` (no causal discount; a sliding-window layer over at most its window), and
    the lm_head; norms, RoPE, softmax and residual adds are left out (under 1%).
    ``weight_bytes`` is what a call reads: for "embed" the looked-up rows, not the
    whole table a side must hold (``spec.param_count()`` gives the footprint)."""
    d, b, tokens = spec.hidden_size, PROFILE_BYTES, batch * seq_len
    hidden_bytes = float(tokens * d * b)
    logits_bytes = float(tokens * spec.vocab_size * b)
    q_dim = spec.num_heads * spec.d_head
    projections = 2 * tokens * (2 * d * q_dim + 2 * d * spec.kv_dim)
    mlp = 2 * tokens * 3 * d * spec.intermediate_size
    embed = BlockProfile(
        name="embed",
        flops=0.0,
        weight_bytes=float(min(tokens, spec.vocab_size) * d * b),
        activation_bytes=tokens * _ID_BYTES + hidden_bytes,
        kv_read_bytes=0.0,
        out_bytes=hidden_bytes,
        kv_bytes_per_token=0.0,
    )
    layers = [
        BlockProfile(
            name=f"layer.{i}",
            flops=float(projections + _attention_flops(spec, batch, seq_len, context_len, i) + mlp),
            weight_bytes=float(spec.layer_params() * b),
            activation_bytes=2 * hidden_bytes,
            kv_read_bytes=float(2 * spec.kv_dim * spec.attended(i, context_len) * batch * b),
            out_bytes=hidden_bytes,
            kv_bytes_per_token=float(2 * spec.kv_dim * b),
        )
        for i in range(spec.num_layers)
    ]
    final = BlockProfile(
        name="norm+lm_head",
        flops=float(2 * tokens * d * spec.vocab_size),
        weight_bytes=float((spec.vocab_size * d + d) * b),
        activation_bytes=hidden_bytes + logits_bytes,
        kv_read_bytes=0.0,
        out_bytes=logits_bytes,
        kv_bytes_per_token=0.0,
    )
    return [embed, *layers, final]


def _attention_flops(
    spec: LlamaSpec, batch: int, seq_len: int, context_len: int, layer: int
) -> int:
    """QK^T and AV of one layer: 2 products, 2 FLOPs per multiply-add."""
    return (
        2 * 2 * batch * spec.num_heads * seq_len * spec.attended(layer, context_len) * spec.d_head
    )
