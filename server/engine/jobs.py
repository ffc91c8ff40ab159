"""The compute oracle: what the event loop asks for bytes and answers.

The simulator owns time; an oracle owns what real compute produces. When a head starts in
simulated time the loop submits a ``HeadJob``; when the head ends it calls ``result()`` on what
came back and learns the real payload size. Tails work the same way at batch start and end, so
an oracle that computes elsewhere (Ray) has all of simulated stage time to do the work;
``prefetch`` hands it the jobs of requests still ahead in simulated time.

Jobs share one shape: a ``Job`` names the request and what to compute (model, split, codec,
input, seq_len); ``HeadJob`` and ``TailJob`` are ``InferJob``s (one forward pass, with ``step``
and ``prompts``), a ``TailJob`` carrying its ``head``; a ``GenJob`` is a whole generated sequence.

``LocalOracle`` runs heads, the codec and tails in this process (``server.engine.local``);
``ReplayOracle`` samples rows recorded by an earlier real run (``fleet.compute.replay``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
#: The text causal-LM inputs are windows of when a job does not say (``ModelSpec.prompts``);
#: records written before the ``prompts`` column existed are read as this.
DEFAULT_PROMPTS = "lee-background"
T_co = TypeVar("T_co", covariant=True)


class OracleError(RuntimeError):
    """An oracle cannot produce a result; the message says what is missing and how to fix it."""


class ComputeFailed(RuntimeError):
    """Real compute for one job failed for good (e.g. its actor died more often than allowed).
    ``Pending.result()`` raises it; the simulator records the request as ``failed`` with this
    message as the reason and carries on."""


class Pending(Protocol[T_co]):
    """A result that may still be computing (``concurrent.futures.Future`` fits)."""

    def result(self) -> T_co: ...


class Done(Generic[T]):
    """A result that is already there."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        return self._value


def codec_key(config: dict[str, Any]) -> str:
    """The canonical text of a codec config: the key of memos and replay profiles."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def full_codec_key(config: dict[str, Any]) -> str:
    """The key of a codec's full config, defaults filled in, so equal codecs replay alike: what
    a simulation's jobs carry. Raises ``codec.CodecError`` for a config no codec accepts."""
    from codec import get_codec

    return codec_key(get_codec(config).get_config())


@dataclass(frozen=True, slots=True)
class Job:
    """What every job names, defined once: the request it is for and what to compute:
    ``model`` split at ``split`` with ``codec`` on the uplink, on input ``input_id`` cut to
    ``seq_len`` tokens."""

    request_id: int
    model: str
    split: int
    codec: str  # codec_key of the codec config
    input_id: int
    # tokens per input (language models; vision models ignore it); a generation's prompt
    seq_len: int


@dataclass(frozen=True, slots=True)
class InferJob(Job):
    """One forward pass through a split (``task: infer``): a head or the tail after it.
    ``step`` and ``prompts`` are keyword-only: a tail's ``head`` comes before them."""

    _: KW_ONLY
    step: int = 0
    prompts: str = DEFAULT_PROMPTS  # the text LM inputs are windows of (ModelSpec.prompts)


@dataclass(frozen=True, slots=True)
class HeadResult:
    raw_bytes: int  # the IF as float32 before the codec
    payload_bytes: int  # what goes on the wire: the codec's container
    payload: bytes | None = None  # the payload itself (None when replayed)
    row: int = -1  # replay: the profile row this came from


@dataclass(frozen=True, slots=True)
class HeadJob(InferJob):
    """Run ``model``'s head up to ``split`` on input ``input_id`` and encode the IF."""


@dataclass(frozen=True, slots=True)
class TailJob(InferJob):
    """Decode ``head``'s payload and run the tail from ``split``."""

    head: HeadResult

    @classmethod
    def after(cls, job: InferJob, head: HeadResult) -> TailJob:
        """The tail of ``job``'s request (same fields) on ``head``."""
        return cls(**{f.name: getattr(job, f.name) for f in fields(InferJob)}, head=head)


@dataclass(frozen=True, slots=True)
class TailResult:
    # How closely the split output matches the unsplit model's on this input, in [0, 1]:
    # classification: 1.0 when the top-1 class matches; language models: the share of
    # positions whose top-1 token matches; sentence embeddings: cosine similarity.
    agreement: float
    result_bytes: int  # what the server sends back over the downlink


@dataclass(frozen=True, slots=True)
class GenJob(Job):
    """Generate ``new_tokens`` greedy tokens after a ``seq_len``-token prompt (input
    ``input_id``) through ``split`` with ``codec`` on every uplink transfer (``task: generate``).

    One job is a whole sequence: what the pipeline produces depends on the prompt, never on
    simulated time, so the oracle computes every step at once and the simulator spends the
    bytes step by step. ``prompts`` is positional here (after ``new_tokens``), keyword-only
    on ``InferJob``: the one field the two kinds cannot share through the base class."""

    new_tokens: int
    prompts: str = DEFAULT_PROMPTS  # the corpus the prompt is a window of (ModelSpec.prompts)

    @property
    def prompt_tokens(self) -> int:
        """The prompt's length in tokens (``seq_len``)."""
        return self.seq_len


@dataclass(frozen=True, slots=True)
class GenResult:
    prompt_raw_bytes: int  # the prompt's IF as float32 (int32 ids at split 0)
    prompt_payload_bytes: int  # the prompt's IF as sent: a whole codec container
    setup_bytes: int  # the codec stream's set-up, sent once with the prompt
    step_raw_bytes: int  # one token's IF as float32 (4 at split 0)
    # what goes up before decode step k = 1 .. new_tokens - 1 (the IF of token k - 1):
    # new_tokens - 1 entries, stream frames (codes only)
    step_payload_bytes: tuple[int, ...]
    token_bytes: int  # what comes down per generated token (an int32 id: 4)
    tokens_matching: int  # leading generated tokens equal to the unsplit model's greedy ones
    # teacher-forced next-token top-1 agreement with the unsplit model over the new_tokens
    # steps, in [0, 1] (1.0 for a lossless codec up to float rounding)
    agreement: float
    row: int = -1  # replay: the profile row this came from


class Oracle(Protocol):
    def submit_heads(self, jobs: Sequence[HeadJob]) -> Sequence[Pending[HeadResult]]: ...

    def submit_tails(self, jobs: Sequence[TailJob]) -> Sequence[Pending[TailResult]]: ...

    def submit_generations(self, jobs: Sequence[GenJob]) -> Sequence[Pending[GenResult]]: ...

    @property
    def works_ahead(self) -> bool:
        """Whether ``prefetch`` does anything: the simulation builds jobs ahead of time only
        for an oracle with workers to keep busy."""
        ...

    def prefetch(self, jobs: Sequence[HeadJob | GenJob]) -> None:
        """The jobs of requests the simulation reaches later (heads, or whole generations),
        handed over ahead of simulated time: results depend on inputs, never on time, so an
        oracle with spare workers (``RayOracle``) may start them now; a later submission of
        the same job is then a memo hit. Not counted in ``stats()``. An oracle that answers
        at submission anyway (``LocalOracle``, ``ReplayOracle``) does nothing."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the summary: calls made, memo hits."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RecordingOracle(Oracle, Protocol):
    """A real oracle: it records what it computed as a replay profile."""

    def profile_rows(self) -> dict[str, list[Any]]:
        """PROFILE_SCHEMA columns: one row per input whose head and tail both ran."""
        ...

    def generation_rows(self) -> dict[str, list[Any]]:
        """GENERATIONS_SCHEMA columns: one row per generated sequence (``task: generate``)."""
        ...
