"""The local oracle's generation path (``task: generate``): whole sequences in this process.

``GenerationMixin`` gives ``server.engine.local.LocalOracle`` its ``submit_generations``,
``run_generation``, ``generation_rows`` and ``write_generations``; it uses the oracle's
models, codecs and inputs (``_model``, ``_codec``, ``_eligible_inputs``, ``_input``).

A ``GenJob`` (causal LMs at ``s < L``) is one whole sequence through ``server.engine.generate``
on the same input as a ``task: infer`` job with ``seq_len = prompt_tokens`` and the same ``prompts``
text, memoised by (model, split, codec key, input, prompt_tokens, new_tokens, prompts); the
unsplit greedy tokens are memoised per (model, input, prompt_tokens, new_tokens, prompts) and
shared by every split and codec.
``agreement`` is ``server.engine.generate.teacher_forced_agreement``, or exactly 1.0 when every
free-running token already matched (the forced run then feeds the very same tokens). The wall
time of a key is measured when it is first computed and includes the unsplit reference run the
first time its input needs one. Every future returned is already ``Done``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from codec import Codec, CodecError
from models.split import CausalSplitModel, ModelError, SplitModel
from records.tables import GENERATIONS_SCHEMA, TableWriter
from server.engine.generate import generate, reference_tokens, teacher_forced_agreement
from server.engine.jobs import Done, GenJob, GenResult, OracleError

# model, split, codec, input, prompt tokens, new tokens, prompts
GenKey = tuple[str, int, str, int, int, int, str]


class _Host(Protocol):
    """What ``GenerationMixin`` needs of the oracle that mixes it in."""

    _gens: dict[GenKey, tuple[GenResult, float]]
    _gen_references: dict[tuple[str, int, int, int, str], list[int]]
    _gen_counts: dict[str, int]

    def _model(self, name: str) -> SplitModel: ...
    def _codec(self, text: str) -> Codec: ...
    def _prompts(self, model: SplitModel, prompts: str, where: str) -> str: ...
    def _eligible_inputs(
        self, model: SplitModel, seq_len: int, what: str = ..., prompts: str = ...
    ) -> list[int]: ...
    def _input(
        self, model: SplitModel, input_id: int, seq_len: int, prompts: str = ...
    ) -> torch.Tensor: ...
    def _generation(self, key: GenKey) -> GenResult: ...
    def _gen_key(self, job: GenJob) -> GenKey: ...
    def generation_rows(self) -> dict[str, list[Any]]: ...


class GenerationMixin:
    """Generation jobs for an in-process oracle; ``gen_calls`` and ``gen_memo_hits`` count
    jobs submitted and how many of them the memo answered."""

    def __init__(self) -> None:
        self._gens: dict[GenKey, tuple[GenResult, float]] = {}
        self._gen_references: dict[tuple[str, int, int, int, str], list[int]] = {}
        self._gen_counts = {"gen_calls": 0, "gen_memo_hits": 0}

    def submit_generations(self: _Host, jobs: Sequence[GenJob]) -> list[Done[GenResult]]:
        return [Done(self._generation(self._gen_key(job))) for job in jobs]

    def run_generation(self: _Host, job: GenJob) -> tuple[GenResult, float]:
        """The sequence's result and the wall seconds it took when first computed."""
        key = self._gen_key(job)
        self._generation(key)
        return self._gens[key]

    def generation_rows(self: _Host) -> dict[str, list[Any]]:
        """GENERATIONS_SCHEMA columns, one row per generated sequence, sorted by key."""
        return generation_rows(self._gens)

    def write_generations(self: _Host, path: str | Path) -> None:
        with TableWriter(path, GENERATIONS_SCHEMA) as writer:
            writer.append(self.generation_rows())

    def _generation(self: _Host, key: GenKey) -> GenResult:
        self._gen_counts["gen_calls"] += 1
        if key in self._gens:
            self._gen_counts["gen_memo_hits"] += 1
            return self._gens[key][0]
        name, split, codec_text, input_id, prompt_tokens, new_tokens, prompts = key
        model = self._model(name)  # loaded and checked by _gen_key already
        assert isinstance(model, CausalSplitModel)
        prompt = self._input(model, input_id, prompt_tokens, prompts)
        codec = self._codec(codec_text)  # unused at split 0 (ids), but the key must be valid
        start = time.perf_counter()  # the unsplit reference is part of the first key's work
        reference_key = (name, input_id, prompt_tokens, new_tokens, prompts)
        if reference_key not in self._gen_references:
            self._gen_references[reference_key] = reference_tokens(model, prompt, new_tokens)
        reference = self._gen_references[reference_key]
        try:
            trace = generate(model, split, codec, prompt, new_tokens, reference=reference)
            agreement = 1.0
            if trace.matching_prefix < new_tokens:
                agreement = teacher_forced_agreement(
                    model, split, codec, prompt, new_tokens, reference=reference
                )
        except CodecError as exc:
            raise OracleError(
                f"{name} split {split} input {input_id}: codec {codec_text} failed while "
                f"generating ({exc}); pick another codec for this split"
            ) from exc
        result = GenResult(
            prompt_raw_bytes=trace.raw_bytes[0],
            prompt_payload_bytes=trace.payload_bytes[0],
            setup_bytes=trace.setup_bytes,
            step_raw_bytes=trace.raw_bytes[0] // prompt_tokens,
            step_payload_bytes=tuple(trace.payload_bytes[1:]),
            token_bytes=4,
            tokens_matching=trace.matching_prefix,
            agreement=agreement,
        )
        self._gens[key] = (result, time.perf_counter() - start)
        return result

    def _gen_key(self: _Host, job: GenJob) -> GenKey:
        model = self._model(job.model)
        where = f"request {job.request_id}"
        if not isinstance(model, CausalSplitModel):
            raise OracleError(
                f"{where}: {job.model} is a {model.task} model; task: generate needs a causal "
                "LM with KV-cache sessions (e.g. smollm2-135m)"
            )
        try:
            model.check_split(job.split)
        except ModelError as exc:
            raise OracleError(f"{where}: {exc}") from exc
        if job.split == model.num_blocks:
            raise OracleError(
                f"{where}: split {job.split} runs all {model.num_blocks} blocks on the device, "
                f"but generate needs a server tail; use a split below {model.num_blocks}"
            )
        for field in ("prompt_tokens", "new_tokens"):
            value = getattr(job, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OracleError(f"{where}: {field} must be an integer >= 1, got {value!r}")
        prompts = self._prompts(model, job.prompts, where)
        what = "the prompt (prompt_tokens)"
        eligible = self._eligible_inputs(model, job.prompt_tokens, what, prompts)
        reduced = job.input_id % len(eligible)
        lengths = (job.prompt_tokens, job.new_tokens)
        return (job.model, job.split, job.codec, reduced, *lengths, prompts)


def generation_rows(gens: Mapping[GenKey, tuple[GenResult, float]]) -> dict[str, list[Any]]:
    """GENERATIONS_SCHEMA columns, one row per key, sorted by key."""
    rows: dict[str, list[Any]] = {name: [] for name in GENERATIONS_SCHEMA.names}
    for key in sorted(gens):
        model, split, codec, input_id, prompt_tokens, new_tokens, prompts = key
        gen, wall_s = gens[key]
        values = [model, split, codec, json.loads(codec)["id"], input_id, prompt_tokens]
        values += [new_tokens, gen.prompt_raw_bytes, gen.prompt_payload_bytes, gen.setup_bytes]
        values += [gen.step_raw_bytes, list(gen.step_payload_bytes), gen.token_bytes]
        values += [gen.tokens_matching, gen.agreement, wall_s, prompts]
        for name, value in zip(GENERATIONS_SCHEMA.names, values, strict=True):
            rows[name].append(value)
    return rows
