"""Entropy coding of i.i.d. symbol streams with rANS (the words of constriction's ``AnsCoder``).

A *model* is a value: a probability vector over a small alphabet (``bernoulli``, ``geometric``,
``uniform`` or an empirical ``histogram``). The coder only codes. Because rANS decoding costs
per symbol, not per bit, ``k`` consecutive symbols of an alphabet of size ``A`` are packed into
one super-symbol with ``A**k <= 4096`` and coded with the k-fold product model: this changes
nothing about the coded size (the product of i.i.d. marginals has the same entropy) and divides
the number of decoded symbols by ``k`` (8 mask bits, 4 three-bit codes per symbol).

Several streams share one rANS stack: ``StreamEncoder.add`` queues them in decoding order and
``finish`` codes them in reverse, so ``StreamDecoder.take`` reads them front to back. Both ends
are compiled and write and read exactly constriction's words (``codec._ans_code`` encodes,
``codec._ans_decode`` decodes; both tested against constriction, the reference), with each
model's fixed-point table built once.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from codec import _ans_code, _ans_decode
from codec.errors import CodecError

SUPER_ALPHABET = 4096
MIN_PROBABILITY = 1e-9


def pack_factor(alphabet: int) -> int:
    """How many symbols of this alphabet share one super-symbol."""
    if alphabet <= 1:
        return 1
    return max(1, math.floor(math.log(SUPER_ALPHABET) / math.log(alphabet) + 1e-9))


def _normalise(probs: np.ndarray) -> np.ndarray:
    p = np.maximum(np.asarray(probs, dtype=np.float64), MIN_PROBABILITY)
    return p / p.sum()


@functools.lru_cache(maxsize=4096)
def _product_table(key: bytes) -> tuple[np.ndarray, int]:
    """The k-fold product table (float64, read-only) of the model with these rounded bytes."""
    p = _normalise(np.frombuffer(key, dtype=np.float64))
    k = pack_factor(len(p))
    table = p
    for _ in range(k - 1):
        table = np.outer(p, table).ravel()
    table.setflags(write=False)
    return table, k


@functools.lru_cache(maxsize=4096)
def _decoder_model(key: bytes) -> tuple[np.ndarray, np.ndarray, int]:
    """The rANS decoder's view of the same model: left cumulatives, buckets, k."""
    table, k = _product_table(key)
    left, buckets = _ans_decode.lookup(table.tobytes())
    return left, buckets, k


@functools.lru_cache(maxsize=4096)
def _digit_model(key: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What ``_ans_decode.decode_digits`` needs: left cumulatives, buckets, digit table (one
    row per super-symbol, so every decoded super-symbol has its digits)."""
    left, buckets, k = _decoder_model(key)
    table = _digit_table(len(np.frombuffer(key, dtype=np.float64)), k)
    if table.shape[0] != left.size - 1:
        raise CodecError("rANS model and digit table disagree")
    return left, buckets, table


def _key(probs: np.ndarray) -> bytes:
    """A model's identity: its probabilities rounded to 12 decimals, as float64 bytes (hashed
    once per call, no Python conversion of the vector)."""
    scaled = np.asarray(probs, dtype=np.float64) * 1e12  # np.round(probs, 12), without dispatch
    return (np.rint(scaled, out=scaled) / 1e12).tobytes()


@functools.lru_cache(maxsize=64)
def _digit_table(alphabet: int, k: int) -> np.ndarray:
    """[alphabet**k, k]: the base-``alphabet`` digits of every super-symbol, least significant
    first (built once per alphabet; decoding looks digits up instead of dividing)."""
    supers = np.arange(alphabet**k, dtype=np.int64)
    digits = (supers[:, None] // alphabet ** np.arange(k, dtype=np.int64)) % alphabet
    return digits.astype(np.uint8 if alphabet <= 256 else np.int32)


# -- models ---------------------------------------------------------------------------------
def bernoulli(p_one: float) -> np.ndarray:
    """P(0) = 1 - p, P(1) = p."""
    p = min(max(p_one, 1e-6), 1 - 1e-6)
    return np.array([1.0 - p, p])


def geometric(log_ratio: float, alphabet: int) -> np.ndarray:
    """P(k) proportional to exp(log_ratio * k / alphabet) on 0..alphabet-1: ``log_ratio`` is the
    log of the density ratio from the last symbol to the first (0 = uniform, < 0 = decaying)."""
    k = np.arange(alphabet, dtype=np.float64)
    w = np.exp(log_ratio * (k - (alphabet - 1) * (log_ratio > 0)) / alphabet)
    return w / w.sum()


def uniform(alphabet: int) -> np.ndarray:
    return np.full(alphabet, 1.0 / alphabet)


def cost_bits(counts: np.ndarray, probs: np.ndarray) -> float:
    """Ideal code length of symbols with these counts under this model."""
    p = _normalise(probs)
    return float(-(np.asarray(counts, dtype=np.float64) * np.log2(p)).sum())


def entropy_bits(symbols: np.ndarray, alphabet: int) -> float:
    """Empirical entropy (total bits) of a symbol array: the limit for an i.i.d. coder."""
    if symbols.size == 0:
        return 0.0
    counts = np.bincount(symbols.ravel(), minlength=alphabet).astype(np.float64)
    nz = counts[counts > 0]
    return float(-(nz * np.log2(nz / symbols.size)).sum())


# -- coder ----------------------------------------------------------------------------------
class StreamEncoder:
    """Collects symbol streams in decoding order; ``finish`` returns one rANS payload."""

    def __init__(self) -> None:
        self._streams: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        if symbols.size:
            self._streams.append((np.asarray(symbols).ravel(), np.asarray(probs)))

    def empirical_bits(self) -> float:
        """Sum over streams of each stream's empirical entropy: the i.i.d. coding limit."""
        return sum(entropy_bits(sym, len(probs)) for sym, probs in self._streams)

    def finish(self) -> bytes:
        """The words constriction's ``AnsCoder`` would give (``_ans_code.encode_streams``)."""
        streams = []
        for symbols, probs in self._streams:
            left, _, k = _decoder_model(_key(probs))
            symbols = np.ascontiguousarray(symbols, dtype=np.int64)  # no copy when int64
            streams.append((symbols, left, len(probs), k, int(np.argmax(probs))))
        return _ans_code.encode_streams(streams)


class StreamDecoder:
    """Reads the streams of a ``StreamEncoder`` payload in the order they were added."""

    def __init__(self, data: bytes | memoryview) -> None:
        if len(data) % 4:
            raise CodecError(f"rANS section length {len(data)} is not a multiple of 4 bytes")
        self._words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        state, self._pos = _ans_decode.open_words(self._words)
        self._state = np.uint64(state)

    def take(self, probs: np.ndarray, count: int, dtype: type = np.int64) -> np.ndarray:
        """Decode ``count`` symbols coded with ``probs`` (int64, or ``np.uint8`` for alphabets
        of at most 256 symbols, such as masks and signs)."""
        out: np.ndarray = np.empty(count, dtype=dtype)
        if count == 0:
            return out
        left, buckets, table = _digit_model(_key(probs))
        self._pos, state = _ans_decode.decode_digits(
            self._words, self._pos, self._state, left, buckets, table, out
        )
        self._state = np.uint64(state)
        return out

    def finish(self) -> None:
        """Check that the stack was consumed exactly (a cheap integrity check)."""
        if self._pos or self._state:
            raise CodecError("rANS section holds more data than its streams declare")


# -- empirical models as side information ----------------------------------------------------
def write_histogram(out: bytearray, counts: np.ndarray) -> None:
    """Sparse histogram: number of used symbols, then (gap, count) varint pairs."""
    from codec.bitstream import write_varint

    used = np.flatnonzero(counts)
    write_varint(out, used.size)
    previous = -1
    for symbol in used.tolist():
        write_varint(out, symbol - previous - 1)
        write_varint(out, int(counts[symbol]))
        previous = symbol


def read_histogram(reader: object, alphabet: int) -> np.ndarray:
    """Inverse of ``write_histogram``; symbols beyond ``alphabet`` raise ``CodecError``.

    A compiled parse (``_ans_decode.parse_histogram``) reads well-formed histograms; anything it
    does not accept is read again by ``_read_histogram_slow``, which raises the exact error."""
    from codec.bitstream import Reader

    assert isinstance(reader, Reader)
    data = np.frombuffer(reader._data, dtype=np.uint8)
    counts, end = _ans_decode.parse_histogram(data, reader.pos, alphabet)
    if end >= 0:
        reader.pos = end
        return counts
    return _read_histogram_slow(reader, alphabet)


def _read_histogram_slow(reader: object, alphabet: int) -> np.ndarray:
    """``read_histogram`` in Python, one ``Reader.varint`` at a time."""
    from codec.bitstream import Reader

    assert isinstance(reader, Reader)
    counts = np.zeros(alphabet, dtype=np.float64)
    n_used = reader.varint(limit=alphabet)
    symbol = -1
    for _ in range(n_used):
        symbol += reader.varint(limit=alphabet) + 1
        if symbol >= alphabet:
            raise CodecError(f"histogram symbol {symbol} outside alphabet of {alphabet}")
        counts[symbol] = reader.varint(limit=2**40)
    return counts


def histogram_size_bytes(counts: np.ndarray) -> int:
    """Bytes ``write_histogram`` would take."""
    out = bytearray()
    write_histogram(out, counts)
    return len(out)
