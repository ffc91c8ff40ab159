"""``codec._llm_ans``: the static-model rANS of slicer-llm round-trips any symbols under any
class, and its bucket-table search finds exactly the symbol whose frequency range holds each
slot, for peaked tables whose tails crowd many frequency-1 symbols into one bucket."""

from __future__ import annotations

import numpy as np
import pytest

from codec import _llm_ans
from codec.errors import CodecError

RADIUS = 47


def _tables(seed: int) -> _llm_ans.Tables:
    rng = np.random.default_rng(seed)
    alphabet = 2 * RADIUS + 2
    k = np.abs(np.arange(alphabet) - RADIUS)
    scales = np.array([0.05, 0.3, 1.0, 4.0, 30.0])  # from nearly all-zero to nearly uniform
    probs = np.exp(-k[None, :] / scales[:, None]) + 1e-12
    probs = np.vstack([probs, rng.random((3, alphabet))])
    return _llm_ans.build_tables(probs, RADIUS)


def test_bucket_table_names_the_symbol_of_each_bucket_start() -> None:
    tables = _tables(0)
    step = 1 << (_llm_ans.PROB_BITS - _llm_ans.BUCKET_BITS)
    for c in range(len(tables.freq)):
        owner = np.repeat(np.arange(tables.freq.shape[1]), tables.freq[c])  # every slot's symbol
        assert owner.size == 1 << _llm_ans.PROB_BITS
        assert np.array_equal(tables.bucket_symbol[c], owner[::step])


@pytest.mark.parametrize("seed", range(4))
def test_any_symbols_round_trip_under_any_class(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tables = _tables(seed)
    n = 3000
    q = rng.integers(-RADIUS, RADIUS + 1, n)
    escapes = q[::97].size  # every 97th value is past the radius: an escape and its varint
    q[::97] = rng.integers(RADIUS + 1, 10**9, escapes) * rng.choice([-1, 1], escapes)
    classes = rng.integers(0, len(tables.freq), n)
    words, extra = _llm_ans.encode(q, classes, tables)
    assert np.array_equal(_llm_ans.decode(words, extra, classes, tables, "test"), q)


def test_a_truncated_section_raises_codec_error() -> None:
    tables = _tables(1)
    q = np.arange(-20, 20)
    classes = np.zeros(q.size, np.int64)
    words, extra = _llm_ans.encode(q, classes, tables)
    with pytest.raises(CodecError, match="corrupt"):
        _llm_ans.decode(words[:-2], extra, classes, tables, "test")
