"""Task quality through a split with a codec between head and tail, beside the same split with
no codec (which equals the unsplit model to float tolerance).

Every sample goes alone through ``head``, the codec (what one device would send) and ``tail``.
Metrics by task:

* ``causal-lm``: perplexity on held-out Lee test windows, next-token top-1 agreement and mean KL
  divergence (unsplit || split) over every position, and zero-shot accuracy on the 200 labelled
  movie-review sentences (the logit of " positive" against " negative" after
  ``Movie review: <text>\nSentiment:``).
* ``sentence-embedding``: Pearson correlation of document-embedding cosines with the human
  similarity ratings of the 50 Lee documents, and the 5-fold accuracy of a logistic-regression
  probe on the 200 labelled sentences.
* ``image-classification``: top-1 agreement and KL divergence against the unsplit model over the
  bundled photos and their views. This is *fidelity*, not accuracy: no labelled ImageNet set is
  available offline.

Bytes are counted per sample (per token for LMs): the codec payload, and the float32 size of
the same IF for reference. Split 0 sends the input itself: token ids as int32, images through
the codec like any float IF.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from models.split import ModelError, SplitModel

T = TypeVar("T")

LM_WINDOWS = 16
#: 77.5% accuracy unsplit on the quality benchmark's 80 sentences; the question-style prompt
#: it replaced scored 50% (chance) there.
SENTIMENT_PROMPT = "Movie review: {text}\nSentiment:"


@dataclass(frozen=True)
class QualityReport:
    """Quality through one split and codec, with the uncompressed split beside it."""

    model: str
    split: int
    codec: dict[str, Any] | None
    samples: int
    raw_bytes: float  # float32 IF bytes per sample (per token for LMs)
    payload_bytes: float  # what the codec sent per sample (per token for LMs)
    metrics: dict[str, float]  # through the split with the codec
    uncompressed: dict[str, float]  # through the split without a codec


@dataclass
class Channel:
    """The uplink between head and tail: encodes and decodes float IFs, counting bytes."""

    codec: Any = None  # a codec.Codec, or None for an uncompressed float32 link
    payload_bytes: float = 0.0
    raw_bytes: float = 0.0
    units: int = 0  # samples, or tokens for LMs

    def send(self, h: torch.Tensor, units: int = 1) -> torch.Tensor:
        self.units += units
        if not torch.is_floating_point(h):  # token ids at split 0: sent as int32
            self.raw_bytes += 4 * h.numel()
            self.payload_bytes += 4 * h.numel()
            return h
        self.raw_bytes += 4 * h.numel()
        if self.codec is None:
            self.payload_bytes += 4 * h.numel()
            return h
        payload = self.codec.encode(h)
        self.payload_bytes += len(payload)
        return self.codec.decode(payload).to(h.dtype)

    def per_unit(self) -> tuple[float, float]:
        n = max(self.units, 1)
        return self.raw_bytes / n, self.payload_bytes / n


def evaluate(
    model: SplitModel,
    split: int,
    codec: Any = None,
    *,
    limit: int | None = None,
    uncompressed: dict[str, float] | None = None,
    memo: dict[Any, Any] | None = None,
) -> QualityReport:
    """Quality of ``model`` at ``split`` with ``codec`` (a ``codec.Codec`` or None).
    ``limit`` caps the samples (LM windows; 10x that many sentences); pass the
    ``uncompressed`` metrics of an earlier report at the same split to skip recomputing them,
    and one ``memo`` dict across calls on the same model to reuse unsplit outputs and head
    features (only the codec and the tail run again)."""
    if not model.pretrained:
        raise ModelError(
            f"{model.name} has random weights (timing only); quality needs a pretrained model"
        )
    split = model.check_split(split)
    metric_fn = _TASKS.get(model.task)
    if metric_fn is None:
        raise ModelError(f"no quality metrics for task {model.task!r}")
    with torch.inference_mode():
        memo = {} if memo is None else memo
        if uncompressed is None:
            uncompressed, _ = metric_fn(model, split, Channel(None), limit, memo)
        channel = Channel(codec)
        metrics, count = metric_fn(model, split, channel, limit, memo)
    raw, payload = channel.per_unit()
    config = codec.get_config() if codec is not None else None
    return QualityReport(model.name, split, config, count, raw, payload, metrics, uncompressed)


# -- causal LM ----------------------------------------------------------------------------------
def _lm(
    model: Any, split: int, channel: Channel, limit: int | None, memo: dict[Any, Any]
) -> tuple[dict[str, float], int]:
    windows = model.token_windows("test")[: limit or LM_WINDOWS]
    nll, count, agree, kl = 0.0, 0, 0.0, 0.0
    for sample in windows:
        ids = sample.x[None]
        reference = _cached(memo, ("lm-ref", sample.input_id), model, ids)[0]
        h = _cached(memo, ("lm-head", split, sample.input_id), model.head, ids, split)
        logits = model.tail(channel.send(h[0], units=ids.shape[1])[None], split)[0]
        targets = sample.x[1:]
        nll += float(F.cross_entropy(logits[:-1].float(), targets, reduction="sum"))
        count += targets.numel()
        agree += float((logits.argmax(-1) == reference.argmax(-1)).float().sum())
        kl += float(_kl(reference, logits).sum())
    positions = sum(s.x.numel() for s in windows)
    metrics = {
        "perplexity": math.exp(nll / count),
        "top1_agreement": agree / positions,
        "kl_divergence": kl / positions,
        # the prompts go through the same codec but do not count towards bytes per token
        "sentiment_accuracy": _sentiment_accuracy(
            model, split, Channel(channel.codec), limit, memo
        ),
    }
    return metrics, len(windows)


def _sentiment_accuracy(
    model: Any, split: int, channel: Channel, limit: int | None, memo: dict[Any, Any]
) -> float:
    from models.text import movie_sentences

    tokenizer = model.tokenizer
    positive = tokenizer(" positive").input_ids[0]
    negative = tokenizer(" negative").input_ids[0]
    sentences = _spread(movie_sentences(), limit * 10 if limit else None)
    correct = 0
    for sentence in sentences:
        prompt = SENTIMENT_PROMPT.format(text=sentence.text)
        ids = torch.tensor(tokenizer(prompt).input_ids, dtype=torch.int64)[None]
        h = _cached(memo, ("sentiment-head", split, prompt), model.head, ids, split)
        logits = model.tail(channel.send(h[0])[None], split)[0, -1]
        correct += int((logits[positive] > logits[negative]) == bool(sentence.label))
    return correct / len(sentences)


def _spread(items: Sequence[T], count: int | None) -> list[T]:
    """``count`` items evenly spaced over the sequence (all of them for None): a limited run
    still sees both classes of the labelled sentences, which come sorted by label."""
    if count is None or count >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def _kl(reference: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(reference || logits) per position, in nats."""
    p_log = F.log_softmax(reference.float(), dim=-1)
    q_log = F.log_softmax(logits.float(), dim=-1)
    return (p_log.exp() * (p_log - q_log)).sum(-1)


# -- sentence embeddings ------------------------------------------------------------------------
def _encoder(
    model: Any, split: int, channel: Channel, limit: int | None, memo: dict[Any, Any]
) -> tuple[dict[str, float], int]:
    from models.text import lee_similarity_matrix

    docs = model.document_samples()
    doc_emb = _embed(model, split, channel, [s.x for s in docs], memo, "doc")
    human = lee_similarity_matrix()
    upper = np.triu_indices(len(docs), k=1)
    cosine = (doc_emb @ doc_emb.T)[upper]
    pearson = float(np.corrcoef(cosine, human[upper])[0, 1])
    sentences = _spread(list(model.samples()), limit * 10 if limit else None)
    emb = _embed(model, split, channel, [s.x for s in sentences], memo, "sentence")
    labels = np.array([s.label for s in sentences])
    metrics = {"lee_pearson": pearson, "probe_accuracy": _probe_accuracy(emb, labels)}
    return metrics, len(docs) + len(sentences)


def _embed(
    model: Any,
    split: int,
    channel: Channel,
    ids: Sequence[torch.Tensor],
    memo: dict[Any, Any],
    kind: str,
) -> np.ndarray:
    from models.encoder import EncoderBatch

    out = []
    for i, x in enumerate(ids):
        batch = EncoderBatch(x[None], torch.ones_like(x)[None])
        h = _cached(memo, (kind, split, i), model.head, batch, split)
        sent = EncoderBatch(channel.send(h.x[0])[None], h.mask)
        out.append(model.tail(sent, split)[0].numpy())
    return np.stack(out)


def _probe_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean accuracy of a logistic-regression probe over 5 stratified folds (fixed seed)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    probe = LogisticRegression(max_iter=2000)
    return float(cross_val_score(probe, features, labels, cv=folds).mean())


# -- image classification -----------------------------------------------------------------------
def _vision(
    model: Any, split: int, channel: Channel, limit: int | None, memo: dict[Any, Any]
) -> tuple[dict[str, float], int]:
    samples = list(model.samples())[: limit or None]
    agree, kl = 0.0, 0.0
    for sample in samples:
        x = sample.x[None]
        reference = _cached(memo, ("image-ref", sample.input_id), model, x)[0]
        h = _cached(memo, ("image-head", split, sample.input_id), model.head, x, split)
        logits = model.tail(channel.send(h[0])[None], split)[0]
        agree += float(logits.argmax() == reference.argmax())
        kl += float(_kl(reference[None], logits[None])[0])
    n = len(samples)
    return {"top1_agreement": agree / n, "kl_divergence": kl / n}, n


def _cached(memo: dict[Any, Any], key: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, computed once per ``key`` for as long as ``memo`` lives."""
    if key not in memo:
        memo[key] = fn(*args)
    return memo[key]


Metric = Callable[[Any, int, Channel, "int | None", dict[Any, Any]], tuple[dict[str, float], int]]
_TASKS: dict[str, Metric] = {
    "causal-lm": _lm,
    "sentence-embedding": _encoder,
    "image-classification": _vision,
}
