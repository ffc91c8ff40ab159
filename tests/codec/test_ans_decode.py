"""``codec._ans_decode`` decodes constriction's words exactly as constriction (the reference)."""

from __future__ import annotations

import constriction
import numpy as np
import pytest

from codec import _ans_decode, entropy
from codec.errors import CodecError
from tests.codec import reference_kernels


def _reference(words: np.ndarray, streams: list[tuple[np.ndarray, int]]) -> list[np.ndarray]:
    coder = constriction.stream.stack.AnsCoder(words.copy())
    out = []
    for probs, count in streams:
        model, k = reference_kernels.constriction_model(probs)
        out.append(np.asarray(coder.decode(model, -(-count // k))))
    assert coder.is_empty()
    return out


def _models(rng: np.random.Generator) -> list[np.ndarray]:
    """Skewed, flat, tiny-tailed and two-symbol models over alphabets 2 to 4096."""
    models = [entropy.bernoulli(0.01), entropy.bernoulli(0.5), entropy.uniform(3)]
    for alphabet in (5, 16, 64, 300, 4096):
        models.append(rng.random(alphabet) ** 6)
        models.append(entropy.geometric(-12.0, alphabet))
    tail = np.zeros(4096)
    tail[:40] = rng.random(40)  # zeros become MIN_PROBABILITY: many 1-in-2**24 symbols
    models.append(tail)
    return models


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_symbols_and_end_state_as_constriction(seed: int) -> None:
    rng = np.random.default_rng(seed)
    encoder = entropy.StreamEncoder()
    streams = []
    for probs in _models(rng):
        p = entropy._normalise(probs)
        count = int(rng.integers(1, 3000))
        encoder.add(rng.choice(len(p), size=count, p=p), probs)
        streams.append((probs, count))
    words = np.frombuffer(encoder.finish(), dtype="<u4").astype(np.uint32)
    want = _reference(words, streams)
    first_state, pos = _ans_decode.open_words(words)
    state = np.uint64(first_state)
    for (probs, count), ref in zip(streams, want, strict=True):
        left, buckets, k = entropy._decoder_model(entropy._key(probs))
        got, pos, state = reference_kernels.decode(words, pos, state, left, buckets, -(-count // k))
        assert got.tolist() == ref.tolist()
    assert (pos, int(state)) == (0, 0)


def test_quantised_model_equals_constrictions_left_cumulatives() -> None:
    """Encoding one symbol on an empty coder leaves exactly its left cumulative as the state."""
    probs = np.random.default_rng(5).random(64) ** 3
    model, _ = reference_kernels.constriction_model(probs)
    left, _, _ = entropy._decoder_model(entropy._key(probs))
    for symbol in range(1, 64):
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(np.array([symbol], dtype=np.int32), model)
        assert coder.get_compressed().tolist() == [int(left[symbol])]


def test_garbage_words_decode_without_crashing_and_a_zero_last_word_is_refused() -> None:
    words = np.random.default_rng(6).integers(1, 2**32, 50, dtype=np.uint64).astype(np.uint32)
    decoder = entropy.StreamDecoder(words.tobytes())
    symbols = decoder.take(entropy.geometric(-3.0, 4096), 500)
    assert symbols.min() >= 0 and symbols.max() < 4096
    with pytest.raises(CodecError, match="zero word"):
        entropy.StreamDecoder(np.array([5, 0], dtype=np.uint32).tobytes())


@pytest.mark.parametrize("seed", [0, 1])
def test_decode_digits_equals_decode_then_unpack_table(seed: int) -> None:
    """The fused kernel gives the digits, bulk length and state of ``decode`` followed by
    ``reference_kernels.unpack_table``, for every model and for counts not multiples of k."""

    rng = np.random.default_rng(seed)
    encoder = entropy.StreamEncoder()
    streams = []
    for probs in _models(rng):
        p = entropy._normalise(probs)
        count = int(rng.integers(1, 3000))
        encoder.add(rng.choice(len(p), size=count, p=p), probs)
        streams.append((probs, count))
    words = np.frombuffer(encoder.finish(), dtype="<u4").astype(np.uint32)
    first_state, pos = _ans_decode.open_words(words)
    old = (pos, np.uint64(first_state))
    new = old
    for probs, count in streams:
        left, buckets, k = entropy._decoder_model(entropy._key(probs))
        supers, *old = reference_kernels.decode(
            words, old[0], old[1], left, buckets, -(-count // k)
        )
        table = entropy._digit_table(len(probs), k)
        want, ok = reference_kernels.unpack_table(supers, table, count)
        assert ok
        small = [np.uint8] if table.dtype == np.uint8 else []
        for dtype in [np.int64, *small]:
            got = np.empty(count, dtype=dtype)
            after = _ans_decode.decode_digits(words, new[0], new[1], left, buckets, table, got)
            assert got.tolist() == want.tolist()
            assert (after[0], int(after[1])) == (old[0], int(old[1]))
        new = after
    assert (new[0], int(new[1])) == (0, 0)


def test_take_gives_uint8_only_for_small_alphabets() -> None:
    encoder = entropy.StreamEncoder()
    encoder.add(np.array([0, 1, 1, 0, 1]), entropy.bernoulli(0.5))
    encoder.add(np.array([299, 3]), entropy.uniform(300))
    decoder = entropy.StreamDecoder(encoder.finish())
    bits = decoder.take(entropy.bernoulli(0.5), 5, np.uint8)
    assert bits.dtype == np.uint8 and bits.tolist() == [0, 1, 1, 0, 1]
    with pytest.raises(TypeError):
        decoder.take(entropy.uniform(300), 2, np.uint8)


def _numpy_lookup(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numpy ``lookup`` the compiled one replaced (cumsum, floor, searchsorted)."""
    n = table.size
    running = np.cumsum(table)
    scale = float(2**24 - n) / float(running[-1])
    left = np.empty(n + 1, dtype=np.uint64)
    before = np.concatenate([[0.0], running[:-1]])
    left[:n] = (before * scale).astype(np.uint64) + np.arange(n, dtype=np.uint64)
    left[n] = 2**24
    starts = np.arange(2**12, dtype=np.uint64) << np.uint64(12)
    return left, (np.searchsorted(left, starts, side="right") - 1).astype(np.int64)


def test_compiled_lookup_equals_the_numpy_lookup() -> None:
    rng = np.random.default_rng(11)
    for i in range(300):
        n = int(rng.integers(1, 4097))
        p = np.maximum(rng.random(n) ** int(rng.integers(1, 30)), 1e-9)
        if i % 5 == 0:
            p = np.exp(-np.arange(n) * rng.random())
        p /= p.sum()
        left, buckets = _ans_decode.lookup(p.tobytes())
        ref_left, ref_buckets = _numpy_lookup(p)
        assert np.array_equal(left, ref_left) and np.array_equal(buckets, ref_buckets)
