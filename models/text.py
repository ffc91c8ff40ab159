"""Offline English text with stable ids, read from the data files that ship inside gensim.

gensim's ``test/test_data`` folder holds three small, well-known corpora:

* ``lee_background.cor``: the Lee background corpus, 300 Australian news documents (one per line,
  ASCII). Used for prompts, perplexity windows and the intermediate-feature captures.
* ``lee.cor`` + ``similarities0-1.txt``: the 50 held-out Lee documents (Lee, Pincombe & Welsh,
  2005) and a 50 x 50 upper-triangular matrix of mean human similarity ratings scaled to 0..1
  (diagonal 1, lower triangle 0); gensim's own ``test_lee.py`` reads the 1225 pairs above the
  diagonal. Text is cp1252 (one ``£``).
* ``pang_lee_polarity.cor``: 200 movie-review sentences from Pang & Lee's sentence polarity data,
  lower-cased and tokenised, in fastText format (``__label__neg ...`` / ``__label__pos ...``),
  100 negative then 100 positive. Labels here are 0 = negative, 1 = positive.

Every list is in file order, so index ``i`` is a stable id. Nothing is fetched from the network;
a missing gensim raises ``ModelError`` naming the pip command. The small helpers that find
packaged data and keep transformers offline and quiet live here too, for the model modules.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from models.packages import package_dir
from models.split import ModelError

Corpus = Literal["background", "test"]

_CORPUS_FILES: dict[str, str] = {"background": "lee_background.cor", "test": "lee.cor"}
_SIMILARITY_FILE = "similarities0-1.txt"
_POLARITY_FILE = "pang_lee_polarity.cor"
_POLARITY_LABELS = {"__label__neg": 0, "__label__pos": 1}
_ENCODING = "cp1252"  # a superset of the ASCII/latin-1 these files hold; it also maps 0x97 to "—"


class ScoredPair(NamedTuple):
    """Two Lee test documents and their mean human similarity rating (0..1)."""

    doc_a: str
    doc_b: str
    score: float


class LabelledSentence(NamedTuple):
    """A movie-review sentence and its polarity: 0 negative, 1 positive."""

    text: str
    label: int


def gensim_data_dir() -> Path:
    """gensim's bundled ``test/test_data`` folder."""
    folder = package_dir("gensim", "pip install gensim") / "test" / "test_data"
    if not folder.is_dir():
        raise ModelError(f"gensim is installed but {folder} is missing; reinstall gensim")
    return folder


@functools.cache
def _read_lines(filename: str) -> tuple[str, ...]:
    """Non-empty, stripped lines of a test_data file."""
    path = gensim_data_dir() / filename
    if not path.is_file():
        raise ModelError(f"{path} is missing from the gensim install; reinstall gensim")
    text = path.read_bytes().decode(_ENCODING, errors="replace")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def lee_documents(corpus: Corpus = "background") -> list[str]:
    """The Lee documents: 300 background ones or the 50 held-out test ones, in file order."""
    if corpus not in _CORPUS_FILES:
        raise ModelError(f"corpus must be one of {sorted(_CORPUS_FILES)}, got {corpus!r}")
    return list(_read_lines(_CORPUS_FILES[corpus]))


def lee_text(min_chars: int, corpus: Corpus = "background") -> str:
    """Leading documents joined by single spaces, at least ``min_chars`` long where the corpus
    allows (the whole corpus otherwise)."""
    docs: list[str] = []
    for doc in lee_documents(corpus):
        docs.append(doc)
        if sum(map(len, docs)) > min_chars:
            break
    return " ".join(docs)


def lee_sentences(n: int, corpus: Corpus = "background") -> list[str]:
    """The first ``n`` sentences (split after ``.``, ``!`` or ``?``) of a Lee corpus."""
    sentences: list[str] = []
    for doc in lee_documents(corpus):
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", doc) if s]
        if len(sentences) >= n:
            break
    return sentences[:n]


def lee_similarity_matrix() -> np.ndarray:
    """The 50 x 50 symmetric matrix of human similarity ratings of the Lee test documents."""
    rows = [[float(v) for v in line.split()] for line in _read_lines(_SIMILARITY_FILE)]
    upper = np.array(rows, dtype=np.float64)
    n = len(lee_documents("test"))
    if upper.shape != (n, n):
        raise ModelError(f"{_SIMILARITY_FILE}: expected a {n} x {n} matrix, got {upper.shape}")
    return np.triu(upper) + np.triu(upper, 1).T


def lee_similarity_pairs() -> list[ScoredPair]:
    """The 1225 document pairs ``i < j`` in row-major order (pair ``k`` is
    ``np.triu_indices(50, 1)[.][k]``), each with its mean human rating."""
    docs = lee_documents("test")
    matrix = lee_similarity_matrix()
    rows, cols = np.triu_indices(len(docs), 1)
    return [
        ScoredPair(docs[i], docs[j], float(matrix[i, j]))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
    ]


def movie_sentences() -> list[LabelledSentence]:
    """The 200 labelled movie-review sentences (100 negative, then 100 positive)."""
    out: list[LabelledSentence] = []
    for line in _read_lines(_POLARITY_FILE):
        tag, _, text = line.partition(" ")
        if tag not in _POLARITY_LABELS:
            raise ModelError(f"{_POLARITY_FILE}: unexpected label {tag!r} in line {line[:40]!r}")
        out.append(LabelledSentence(text.strip(), _POLARITY_LABELS[tag]))
    return out
