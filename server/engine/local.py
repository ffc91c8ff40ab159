"""The local oracle: runs real heads, the real codec and real tails in this process.

Every job runs alone (a batch of one), so its bytes and answer never depend on which jobs were
submitted together. Results are memoised by (model, split, codec key, input, seq_len, step,
prompts) for the oracle's life (payloads included: about one IF per distinct key); every future
returned is already ``Done``. ``stats()`` counts jobs submitted (``head_calls``,
``tail_calls``) and how many of them the memo answered (``*_memo_hits``).

Inputs: input id i is ``eligible[i % len(eligible)]`` of the model's samples; for causal LMs
the samples are the windows of the job's ``prompts`` text (``lee-background``:
``model.samples()``, the Lee background windows; ``lee-test``: ``model.token_windows("test")``,
the 50 held-out documents) and the eligible ones are those with at least ``seq_len`` tokens,
cut to exactly ``seq_len``. Vision models and sentence encoders ignore ``seq_len`` and
``prompts`` (an encoder input is one whole sentence of ``model.samples()``); their memo keys and
profile rows carry ``seq_len`` 0 and ``prompts`` ``lee-background``, and ``ReplayOracle``
matches a ``seq_len`` 0 group to jobs of any ``seq_len`` and ``prompts``.

What crosses the uplink at each split ``s`` of a model with ``L`` blocks:

* ``0 < s < L`` (and images at ``s = 0``): the float32 IF of the one input through the codec;
  ``raw_bytes`` is 4 per element, ``payload_bytes`` the codec's container. An encoder sends only
  its hidden states: the mask of one unpadded sentence is implied by the length.
* ``s = 0`` for LMs and encoders: the token ids as int32, uncompressed (4 bytes per token for
  both sizes); the codec is for float features and is not applied.
* ``s = L``: the device already holds the answer and reports it: the class id (int32), the next
  token after the last position (int32) or the embedding (float32 per dimension), uncompressed.
  The server's tail is empty and nothing comes back: ``result_bytes`` is 0.

Wall times (profile columns ``head_wall_s``, ``tail_wall_s``) are measured when a key is first
computed; a tail's includes the unsplit reference run the first time its input needs one.

Agreement (``TailResult``) compares with the unsplit model on the same input: top-1 class,
share of positions with the same top-1 token (at ``s = L``: the one reported token), or the
cosine of the embeddings clipped to [0, 1]. ``result_bytes`` below ``L``: 4 for a class id, 4
for the next-token id, 4 per dimension for an embedding.

Generation (``GenJob``, ``task: generate``) comes from ``server.engine.local_gen.GenerationMixin``;
``stats()`` adds ``gen_calls`` and ``gen_memo_hits`` once a generation job has been submitted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import models
from codec import Codec, CodecError, decode_torch, get_codec
from models.llm import LlamaSplit
from models.split import ModelError, Sample, SplitModel
from models.text import Corpus
from records.tables import PROFILE_SCHEMA, TableWriter
from server.engine.jobs import (
    DEFAULT_PROMPTS,
    Done,
    GenJob,
    HeadJob,
    HeadResult,
    InferJob,
    OracleError,
    TailJob,
    TailResult,
)
from server.engine.local_gen import GenerationMixin, GenKey, generation_rows
from server.engine.local_rules import (
    ENCODER,
    LM,
    VISION,
    Key,
    agreement_of,
    batch_of,
    first_item,
    move_model,
    profile_rows,
    report_of,
    resolve_device,
    summary_of,
    synchronize,
)

#: ``prompts`` value (``ModelSpec.prompts``) -> the Lee corpus its windows come from.
PROMPT_CORPORA: dict[str, Corpus] = {"lee-background": "background", "lee-test": "test"}
__all__ = [
    "ENCODER",
    "LM",
    "PROMPT_CORPORA",
    "VISION",
    "GenKey",
    "Key",
    "LocalOracle",
    "generation_rows",
    "profile_rows",
]


class LocalOracle(GenerationMixin):
    """Real compute in process; ``preloaded`` maps names to already built models (optional)."""

    works_ahead = False  # jobs run when submitted

    def __init__(
        self, preloaded: Mapping[str, SplitModel] | None = None, *, device: str = "cpu"
    ) -> None:
        super().__init__()
        self.device = resolve_device(device)  # heads, tails and references (not generation)
        self._models: dict[str, SplitModel] = {
            name: move_model(m, self.device) for name, m in (preloaded or {}).items()
        }
        self._codecs: dict[str, Codec] = {}
        self._windows: dict[tuple[str, str], Sequence[Sample]] = {}
        self._eligible: dict[tuple[str, str, int], list[int]] = {}
        self._references: dict[tuple[str, int, int, str], np.ndarray] = {}
        self._heads: dict[Key, tuple[HeadResult, float]] = {}
        self._tails: dict[Key, tuple[TailResult, float]] = {}
        self._counts = {"head_calls": 0, "head_memo_hits": 0, "tail_calls": 0, "tail_memo_hits": 0}

    # -- the Oracle protocol ------------------------------------------------------------------
    def submit_heads(self, jobs: Sequence[HeadJob]) -> list[Done[HeadResult]]:
        return [Done(self._head(self._key(job))) for job in jobs]

    def submit_tails(self, jobs: Sequence[TailJob]) -> list[Done[TailResult]]:
        return [Done(self._tail(self._key(job), job.head.payload)) for job in jobs]

    def prefetch(self, jobs: Sequence[HeadJob | GenJob]) -> None:
        """Nothing: jobs run when submitted, one at a time in this process, so there are no
        workers to keep busy ahead of simulated time."""

    def stats(self) -> dict[str, int]:
        """Jobs submitted (``*_calls``) and how many of them the memo answered; ``gen_*``
        only once a generation job was submitted."""
        gens = self._gen_counts if self._gen_counts["gen_calls"] else {}
        return {**self._counts, **gens}

    def close(self) -> None:
        """Drop the models, codecs and references; the memo stays, so ``profile_rows`` and
        ``write_profile`` still work after ``close``."""
        self._models.clear()
        self._codecs.clear()
        self._windows.clear()
        self._references.clear()
        self._gen_references.clear()

    # -- the replay profile -------------------------------------------------------------------
    def profile_rows(self) -> dict[str, list[Any]]:
        """PROFILE_SCHEMA columns, one row per input whose head and tail both ran, sorted by
        (model, split, codec, input_id, seq_len, prompts)."""
        return profile_rows(self._heads, self._tails)

    def write_profile(self, path: str | Path) -> None:
        with TableWriter(path, PROFILE_SCHEMA) as writer:
            writer.append(self.profile_rows())

    # -- for actors that host this oracle (fleet.compute.shards, server.engine.workers) ----------
    def key(self, job: InferJob) -> Key:
        """The memo key of a job: input id reduced, seq_len 0 and prompts ``lee-background``
        where the model ignores them."""
        return self._key(job)

    def input_count(self, model: str, seq_len: int, prompts: str = DEFAULT_PROMPTS) -> int:
        """How many distinct inputs ``model`` has at ``seq_len`` in the ``prompts`` text (input
        ids wrap around)."""
        split_model = self._model(model)
        return len(self._eligible_inputs(split_model, seq_len, prompts=prompts))

    def run_head(self, job: InferJob) -> tuple[HeadResult, float]:
        """The result (with payload) of the head ``job`` names (a tail job names its head) and
        the wall seconds it took when first computed."""
        key = self._key(job)
        self._head(key)
        return self._heads[key]

    def run_tail(self, job: TailJob, payload: bytes) -> tuple[TailResult, float]:
        """The tail's result on ``payload`` and the wall seconds it took when first computed."""
        key = self._key(job)
        self._tail(key, payload)
        return self._tails[key]

    # -- heads and tails ----------------------------------------------------------------------
    def _head(self, key: Key) -> HeadResult:
        self._counts["head_calls"] += 1
        if key in self._heads:
            self._counts["head_memo_hits"] += 1
            return self._heads[key][0]
        name, split, _, input_id, seq_len, _, prompts = key
        model = self._model(name)
        x = self._input(model, input_id, seq_len, prompts).to(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            h = first_item(model.head(batch_of(model, x), split)).cpu()
            if split == model.num_blocks:
                payload = report_of(model.task, summary_of(model.task, h)).tobytes()
                raw_bytes = len(payload)
            elif split == 0 and model.task in (LM, ENCODER):
                payload = h.to(torch.int32).numpy().tobytes()
                raw_bytes = len(payload)
            else:
                payload = self._encode(key, h)
                raw_bytes = 4 * h.numel()
        result = HeadResult(raw_bytes, len(payload), payload)
        self._heads[key] = (result, time.perf_counter() - start)
        return result

    def _tail(self, key: Key, payload: bytes | None) -> TailResult:
        self._counts["tail_calls"] += 1
        if key in self._tails:
            self._counts["tail_memo_hits"] += 1
            return self._tails[key][0]
        if payload is None:  # the job carries no payload: use (or compute) this oracle's head
            payload = self._head_payload(key)
        name, split, codec_text, input_id, seq_len, _, prompts = key
        model = self._model(name)
        start = time.perf_counter()  # the unsplit reference is part of the tail's work
        reference = self._reference(model, input_id, seq_len, prompts)
        if split == model.num_blocks:  # the device reported its answer; nothing comes back
            got = np.frombuffer(payload, dtype=np.float32 if model.task == ENCODER else np.int32)
            reference, result_bytes = report_of(model.task, reference), 0
        else:
            if split == 0 and model.task in (LM, ENCODER):
                h = torch.from_numpy(np.frombuffer(payload, dtype=np.int32).astype(np.int64))
            elif self.device == "cpu":
                h = self._codec(codec_text).decode(payload)
            else:  # dequantisation and scatter on the device (codec.decode_torch)
                h = decode_torch(payload, device=self.device)
            with torch.inference_mode():
                output = model.tail(batch_of(model, h.to(self.device)), split)[0]
                synchronize(self.device)
                got = summary_of(model.task, output)
            result_bytes = 4 * got.size if model.task == ENCODER else 4
        result = TailResult(agreement_of(model.task, got, reference), result_bytes)
        self._tails[key] = (result, time.perf_counter() - start)
        return result

    def _head_payload(self, key: Key) -> bytes:
        """The payload of ``key``'s head, computed here without counting it as a job."""
        before = dict(self._counts)
        payload = self._head(key).payload
        self._counts.update(before)
        assert payload is not None  # this oracle's heads always carry their payload
        return payload

    # -- what the jobs name -------------------------------------------------------------------
    def _key(self, job: InferJob) -> Key:
        if job.step != 0:
            raise OracleError(
                f"request {job.request_id}: LocalOracle runs one forward pass per request "
                f"(model.task: infer), so step must be 0, got {job.step}"
            )
        model = self._model(job.model)
        try:
            model.check_split(job.split)
        except ModelError as exc:
            raise OracleError(f"request {job.request_id}: {exc}") from exc
        seq_len = job.seq_len if model.task == LM else 0
        prompts = self._prompts(model, job.prompts, f"request {job.request_id}")
        eligible = self._eligible_inputs(model, seq_len, prompts=prompts)
        reduced = job.input_id % len(eligible)
        return (job.model, job.split, job.codec, reduced, seq_len, job.step, prompts)

    def _model(self, name: str) -> SplitModel:
        if name not in self._models:
            try:
                self._models[name] = move_model(models.load(name), self.device)
            except ModelError as exc:
                raise OracleError(f"LocalOracle cannot load model {name!r}: {exc}") from exc
            task = self._models[name].task
            if task not in (LM, ENCODER, VISION):
                raise OracleError(f"{name}: LocalOracle has no rules for task {task!r}")
        return self._models[name]

    def _codec(self, text: str) -> Codec:
        if text not in self._codecs:
            try:
                self._codecs[text] = get_codec(json.loads(text))
            except (ValueError, CodecError) as exc:
                raise OracleError(
                    f"job codec {text!r} is not a valid codec config ({exc}); jobs carry "
                    "server.engine.jobs.codec_key(config)"
                ) from exc
        return self._codecs[text]

    def _encode(self, key: Key, h: torch.Tensor) -> bytes:
        try:
            return self._codec(key[2]).encode(h)
        except CodecError as exc:
            raise OracleError(
                f"{key[0]} split {key[1]} input {key[3]}: codec {key[2]} cannot encode the "
                f"{list(h.shape)} IF ({exc}); pick another codec for this split"
            ) from exc

    def _prompts(self, model: SplitModel, prompts: str, where: str) -> str:
        """A job's ``prompts`` as keys carry it: checked for LMs, the default for the others."""
        if model.task != LM:
            return DEFAULT_PROMPTS
        if prompts not in PROMPT_CORPORA:
            raise OracleError(
                f"{where}: prompts must be one of {sorted(PROMPT_CORPORA)}, got {prompts!r}; "
                "jobs carry scenario.model.prompts"
            )
        return prompts

    def _samples(self, model: SplitModel, prompts: str) -> Sequence[Sample]:
        """The samples inputs are drawn from: ``model.samples()`` unless an LM's ``prompts``
        names another corpus (those windows are cached per model and prompts)."""
        if model.task != LM or prompts == DEFAULT_PROMPTS:
            return model.samples()
        key = (model.name, prompts)
        if key not in self._windows:
            try:
                if not isinstance(model, LlamaSplit):
                    raise ModelError(f"{type(model).__name__} has no Lee token windows")
                self._windows[key] = model.token_windows(PROMPT_CORPORA[prompts])
            except ModelError as exc:
                raise OracleError(
                    f"{model.name}: prompts {prompts!r} needs the model's tokenizer ({exc}); "
                    f"use prompts {DEFAULT_PROMPTS!r} for this model"
                ) from exc
        return self._windows[key]

    def _eligible_inputs(
        self,
        model: SplitModel,
        seq_len: int,
        what: str = "model.seq_len",
        prompts: str = DEFAULT_PROMPTS,
    ) -> list[int]:
        """Indices into the ``prompts`` samples of the inputs long enough for ``seq_len``."""
        key = (model.name, prompts, seq_len)
        if key not in self._eligible:
            samples = self._samples(model, prompts)
            if model.task != LM:
                self._eligible[key] = list(range(len(samples)))
            else:
                lengths = [int(s.x.numel()) for s in samples]
                self._eligible[key] = [i for i, n in enumerate(lengths) if n >= seq_len]
                if not self._eligible[key]:
                    raise OracleError(
                        f"{model.name}: no {prompts} input has seq_len={seq_len} tokens (the "
                        f"longest has {max(lengths, default=0)}); lower {what} in the scenario"
                    )
        return self._eligible[key]

    def _input(
        self, model: SplitModel, input_id: int, seq_len: int, prompts: str = DEFAULT_PROMPTS
    ) -> torch.Tensor:
        """The unbatched input of a reduced input id: ids ``[seq_len]`` for LMs."""
        index = self._eligible_inputs(model, seq_len, prompts=prompts)[input_id]
        x: torch.Tensor = self._samples(model, prompts)[index].x
        return x[:seq_len] if model.task == LM else x

    def _reference(
        self, model: SplitModel, input_id: int, seq_len: int, prompts: str
    ) -> np.ndarray:
        """The unsplit model's output summary on the input (see ``_summary``)."""
        key = (model.name, input_id, seq_len, prompts)
        if key not in self._references:
            x = self._input(model, input_id, seq_len, prompts).to(self.device)
            with torch.inference_mode():
                self._references[key] = summary_of(model.task, model(batch_of(model, x))[0])
        return self._references[key]
