"""An lm-evaluation-harness model backed by a split causal LM: every log-likelihood the harness
asks for is computed by the head, the codec and the tail, so each multiple-choice and
log-likelihood task of the harness runs through any split and codec.

``SplitLM(model, split, codec)`` follows the harness's own Hugging Face model (``HFLM``) in
everything that decides a score: the pair encoding of :class:`lm_eval.api.model.TemplateLM`
(trailing context spaces move to the continuation), the tokenizer's default special tokens
(Gemma prepends BOS, SmolLM2 does not), BOS (else EOS) as the context of an empty one, and the
input ``(context + continuation)[:-1]`` cut to ``max_length`` from the left. Per request the
device runs the head over that whole input and sends its IF, one payload of every context and
continuation token the tail needs, through the codec, as a device prefilling the text would;
the server decodes it, runs the tail and scores the continuation. ``split=None`` is the unsplit
model (nothing crosses a link). The final norm and LM head run only at continuation positions
(the same arithmetic per position; Gemma's 262k-word head dominates otherwise).

``memo`` (one dict shared by several ``SplitLM`` of the same model) keeps head IFs per split
and input, so another codec at the same split reruns only the codec and the tail; ``drop_memo``
frees one split's. ``channel`` counts payload and float32 bytes and tokens sent.
``generate_until`` decodes greedily through device and server sessions with every step's IF
through the codec; ``loglikelihood_rolling`` (perplexity tasks) scores a whole text in
``HFLM``'s disjoint windows, each sent as one payload.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM

from models.llm import LlamaSplit
from models.quality import Channel
from models.split import ModelError, SplitModel

DEFAULT_MAX_LENGTH = 2048  # HFLM's default when the config is silent; both models allow more
DEFAULT_MAX_GEN_TOKS = 256  # the harness's default for generate_until


class SplitLM(TemplateLM):  # type: ignore[misc]  # lm_eval is untyped
    """The harness's ``LM`` for ``model`` cut at ``split`` with ``codec`` on the uplink."""

    backend = "causal"

    def __init__(
        self,
        model: SplitModel,
        split: int | None = None,
        codec: Any = None,
        *,
        memo: dict[Any, Any] | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        super().__init__()
        if not isinstance(model, LlamaSplit):
            raise ModelError(
                f"{model.name} is not a causal LM with a tokenizer (task {model.task})"
            )
        if not model.pretrained:
            raise ModelError(f"{model.name} has random weights; the harness needs a pretrained LM")
        if split is None and codec is not None:
            raise ModelError("a codec needs a split: pass split=S with codec, or neither")
        self.model = model
        self.split = None if split is None else model.check_split(split)
        self.channel = Channel(codec)
        self.memo: dict[Any, Any] = {} if memo is None else memo
        self.tokenizer = model.tokenizer
        self.max_length = int(max_length)

    @property
    def eot_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return int(bos) if bos is not None else self.eot_token_id

    @property
    def tokenizer_name(self) -> str:
        return self.model.name

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **kwargs: Any
    ) -> list[int]:
        """The tokenizer's ids of ``string``; its default special tokens unless told, and none
        when ``string`` already starts with BOS (as ``HFLM.tok_encode``)."""
        bos = self.tokenizer.bos_token
        if add_special_tokens is None and bos and string.startswith(bos):
            add_special_tokens = False
        extra = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        return list(self.tokenizer.encode(string, **extra))

    def _loglikelihood_tokens(
        self, requests: Sequence[tuple[Any, list[int], list[int]]], **kwargs: Any
    ) -> list[tuple[float, bool]]:
        out = []
        for _, context_enc, continuation_enc in requests:
            ids = (context_enc + continuation_enc)[-(self.max_length + 1) :][:-1]
            target = torch.tensor(continuation_enc, dtype=torch.int64)
            logits = self.continuation_logits(torch.tensor(ids, dtype=torch.int64), len(target))
            logprobs = F.log_softmax(logits.float(), dim=-1)
            total = float(logprobs.gather(1, target[:, None]).sum())
            out.append((total, bool((logprobs.argmax(-1) == target).all())))
        return out

    @torch.inference_mode()
    def continuation_logits(self, ids: torch.Tensor, n: int) -> torch.Tensor:
        """Logits ``[n, vocab]`` at the last ``n`` positions of ``ids`` (``[T]``), through the
        split and codec (or unsplit)."""
        model, last = self.model, self.model.num_blocks
        if self.split is None:
            hidden = model.run_blocks(ids, 0, last - 1)
        else:
            key = ("head", self.split, ids.numpy().tobytes())
            if key not in self.memo:
                self.memo[key] = model.head(ids, self.split)
            sent = self.channel.send(self.memo[key], units=len(ids))
            if self.split == last:  # the device ran everything and sent logits
                return sent[-n:]
            hidden = model.run_blocks(sent, self.split, last - 1)
        return model.run_blocks(hidden[-n:], last - 1, last)

    def drop_memo(self, split: int) -> None:
        """Forget the head IFs kept for ``split``."""
        for key in [k for k in self.memo if k[:2] == ("head", split)]:
            del self.memo[key]

    def loglikelihood_rolling(self, requests: Any, disable_tqdm: bool = False) -> list[float]:
        """Per string, the log-likelihood of all its tokens (perplexity tasks), as ``HFLM``
        computes it: disjoint windows of at most ``max_length`` predicted tokens, the first led
        by the prefix token, each window one request through head, codec and tail."""
        from lm_eval import utils

        out = []
        for (string,) in (request.args for request in requests):
            windows = utils.get_rolling_token_windows(
                token_list=self.tok_encode(string),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            disjoint = [(None, *utils.make_disjoint_window(w)) for w in windows]
            out.append(sum(total for total, _ in self._loglikelihood_tokens(disjoint)))
        return out

    def generate_until(self, requests: Any, disable_tqdm: bool = False) -> list[str]:
        """Greedy generation through the split, stopping at any ``until`` string."""
        return [self._generate(*request.args) for request in requests]

    @torch.inference_mode()
    def _generate(self, context: str, gen_kwargs: dict[str, Any]) -> str:
        until = gen_kwargs.get("until") or [self.tokenizer.decode([self.eot_token_id])]
        until = [until] if isinstance(until, str) else list(until)
        budget = int(gen_kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
        split = self.model.num_blocks if self.split is None else self.split
        device, server = self.model.device_session(split), self.model.server_session(split)
        prompt = self.tok_encode(context)[-(self.max_length - budget) :]
        ids = torch.tensor(prompt, dtype=torch.int64)
        logits = server.prefill(self.channel.send(device.prefill(ids), units=len(prompt)))
        tokens: list[int] = []
        while len(tokens) < budget:
            tokens.append(int(logits.argmax()))
            text = self.tokenizer.decode(tokens)
            if tokens[-1] == self.eot_token_id or any(stop in text for stop in until):
                break
            logits = server.step(self.channel.send(device.step(tokens[-1])))
        text = self.tokenizer.decode([t for t in tokens if t != self.eot_token_id])
        for stop in until:
            text = text.split(stop)[0]
        return text


@dataclass(frozen=True)
class TaskScores:
    """One benchmark's per-example scores (harness metric -> value per doc, docs in
    ``doc_ids`` order) and the harness's aggregate of each metric."""

    benchmark: str
    doc_ids: list[int]
    scores: dict[str, list[float]]
    metrics: dict[str, float]


def run_tasks(lm: SplitLM, doc_ids: Mapping[str, Sequence[int]]) -> dict[str, TaskScores]:
    """Evaluate ``lm`` with the harness on the given docs of each benchmark (names of
    :data:`models.benchmark_data.TASKS`), through our ``slicer_*`` task files."""
    from lm_eval import simple_evaluate

    from models.lm_tasks import task_name

    samples = {task_name(b): [int(i) for i in ids] for b, ids in doc_ids.items()}
    out = simple_evaluate(
        model=lm,
        tasks=list(samples),
        task_manager=_task_manager(),
        samples=samples,
        log_samples=True,
        bootstrap_iters=0,
    )
    result = {}
    for benchmark in doc_ids:
        name = task_name(benchmark)
        rows = sorted(out["samples"][name], key=lambda r: int(r["doc_id"]))
        metrics = [m for m in ("acc", "acc_norm") if m in rows[0]]
        aggregate = {
            key.split(",")[0]: float(v)
            for key, v in out["results"][name].items()
            if key.endswith(",none") and "stderr" not in key
        }
        result[benchmark] = TaskScores(
            benchmark,
            [int(r["doc_id"]) for r in rows],
            {m: [float(r[m]) for r in rows] for m in metrics},
            aggregate,
        )
    return result


@functools.cache
def _task_manager() -> Any:
    from lm_eval.tasks import TaskManager

    from models.lm_tasks import TASKS_DIR

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
