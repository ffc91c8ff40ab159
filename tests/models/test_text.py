"""Offline text from gensim's test data: counts, stable ids, the human-similarity pairs and the
labelled movie-review sentences."""

from __future__ import annotations

import numpy as np
import pytest

from models import text
from models.split import ModelError


def test_lee_corpora() -> None:
    background, held_out = text.lee_documents(), text.lee_documents("test")
    assert (len(background), len(held_out)) == (300, 50)
    assert background[0].startswith("Hundreds of people have been forced to vacate their homes")
    assert held_out[0].startswith("The national executive of the strife-torn Democrats")
    assert any("£3,000" in doc for doc in held_out)  # cp1252 decoded, not replaced
    with pytest.raises(ModelError, match="corpus must be one of"):
        text.lee_documents("train")  # type: ignore[arg-type]


def test_text_windows_and_sentences() -> None:
    assert len(text.lee_text(2048)) > 2048
    assert text.lee_text(10) == text.lee_documents()[0]
    sentences = text.lee_sentences(16)
    assert len(sentences) == 16 and sentences[1].startswith("A new blaze near Goulburn")
    assert all(s[-1] in ".!?\"'" for s in sentences)


def test_similarity_pairs() -> None:
    matrix = text.lee_similarity_matrix()
    assert matrix.shape == (50, 50) and np.array_equal(matrix, matrix.T)
    assert np.all(np.diag(matrix) == 1.0)
    pairs = text.lee_similarity_pairs()
    assert len(pairs) == 1225
    docs = text.lee_documents("test")
    rows, cols = np.triu_indices(50, 1)
    assert pairs[0] == (docs[0], docs[1], matrix[0, 1]) == (docs[0], docs[1], 0.3)
    assert pairs[-1].doc_b == docs[49] and pairs[-1].score == matrix[48, 49]
    scores = np.array([p.score for p in pairs])
    assert np.array_equal(scores, matrix[rows, cols])
    assert scores.min() > 0.0 and scores.max() <= 1.0


def test_movie_sentences() -> None:
    sentences = text.movie_sentences()
    assert len(sentences) == 200
    assert [s.label for s in sentences] == [0] * 100 + [1] * 100
    assert sentences[0] == ("simplistic , silly and tedious .", 0)
    assert not any(s.text.startswith("__label__") for s in sentences)
    assert any("—" in s.text for s in sentences)  # cp1252 em dash


def test_missing_gensim_names_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(ModelError, match="pip install gensim"):
        text.gensim_data_dir()
