"""A compiled decoder for constriction's stack ``AnsCoder`` bytes: the same words decode to the
same symbols, without a call into constriction per stream or its per-symbol search.

What it reproduces (constriction 0.5, ``constriction.stream.stack.AnsCoder`` with
``constriction.stream.model.Categorical(probabilities, perfect=False)``; checked against
constriction in ``tests/codec/test_ans_decode.py``):

* **Model.** 24-bit fixed point. Symbol ``i`` of ``n`` gets the left cumulative
  ``floor(c_i * (2**24 - n) / total) + i``, where ``c_i`` is the running float64 sum of the
  probabilities before ``i`` and ``total`` their running sum (both summed in order, as
  constriction's ``fast_quantized_cdf`` does); the last symbol ends at ``2**24``.
* **Coder.** 32-bit words, 64-bit state. The compressed words are the bulk followed by the
  state (one word if it is below ``2**32``, else low word then high word); they never end in a
  zero word. One decode step: ``q = state mod 2**24``, find ``i`` with
  ``left_i <= q < left_i+1``, ``state = p_i * (state >> 24) + q - left_i``, then if the state is
  below ``2**32`` and bulk words remain, shift the last bulk word in. The coder is empty when the
  state is 0 and no bulk word remains.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numba import njit

from codec.errors import CodecError

PRECISION = 24
BUCKET_BITS = 12  # the symbol search starts from a table of 2**12 quantile buckets


@functools.lru_cache(maxsize=4096)
def lookup(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(left cumulatives [n+1] ending at 2**24, bucket -> first candidate symbol) of the model
    whose float64 probability table has these bytes (``_lookup``, compiled: it releases the GIL
    and takes no Python call per step, so threads decoding new models run side by side)."""
    return _lookup(np.frombuffer(key, dtype=np.float64))


@njit(cache=True, nogil=True)
def _lookup(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lookup`` on the table, into new arrays (``lookup_into``)."""
    left = np.empty(table.size + 1, dtype=np.uint64)
    buckets = np.empty(2**BUCKET_BITS, dtype=np.int64)
    lookup_into(table, left, buckets)
    return left, buckets


@njit(cache=True, nogil=True)
def lookup_into(table: np.ndarray, left: np.ndarray, buckets: np.ndarray) -> None:
    """Running float64 sums in order (as ``np.cumsum`` and constriction),
    ``left_i = floor(before_i * scale) + i`` into ``left[:n+1]``, then each bucket's last
    symbol whose left cumulative is at most the bucket's start (``searchsorted(..., "right") -
    1``) into ``buckets``."""
    n = table.size
    running = 0.0
    for p in table:
        running += p
    scale = float(2**PRECISION - n) / running
    before = 0.0
    for i in range(n):
        left[i] = np.uint64(before * scale) + np.uint64(i)
        before += table[i]
    left[n] = np.uint64(2**PRECISION)
    s = -1
    for b in range(buckets.size):
        start = np.uint64(b) << np.uint64(PRECISION - BUCKET_BITS)
        while s + 1 <= n and np.uint64(left[s + 1]) <= start:
            s += 1
        buckets[b] = s


def open_words(words: np.ndarray) -> tuple[int, int]:
    """(state, bulk length) of compressed words, as constriction reads them."""
    if words.size == 0:
        return 0, 0
    if words[-1] == 0:
        raise CodecError("rANS section is malformed (it ends in a zero word)")
    if words.size == 1:
        return int(words[0]), 0
    return (int(words[-1]) << 32) | int(words[-2]), words.size - 2


@njit(cache=True, nogil=True)
def _varint(data: np.ndarray, pos: int, limit: int) -> tuple[int, int]:
    """A varint of at most 8 bytes and at most ``limit`` at ``pos``: (value, end), end -1 where
    it is not one (truncated, longer, or over the limit)."""
    value = 0
    for shift in range(0, 56, 7):
        if pos >= data.size:
            return 0, -1
        byte = int(data[pos])
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value, pos) if value <= limit else (0, -1)
    return 0, -1


@njit(cache=True, nogil=True)
def parse_histogram(data: np.ndarray, pos: int, alphabet: int) -> tuple[np.ndarray, int]:
    """``entropy.write_histogram``'s bytes at ``pos`` read back: (float64 counts, end); end is
    -1 for anything but a well-formed histogram (the caller then reads it in Python, which
    raises the exact error)."""
    counts = np.zeros(alphabet, dtype=np.float64)
    n_used, pos = _varint(data, pos, alphabet)
    symbol = -1
    for _ in range(n_used):
        if pos < 0:
            break
        gap, pos = _varint(data, pos, alphabet)
        if pos < 0:
            break
        symbol += gap + 1
        if symbol >= alphabet:
            return counts, -1
        count, pos = _varint(data, pos, 2**40)
        if pos >= 0:
            counts[symbol] = count
    return counts, pos


# The rANS step with each super-symbol split into its digits in the same loop, written into the
# caller's array (int64, or uint8 for masks and signs). Explicit signatures: a Python int state
# below 2**63 would otherwise compile an int64 variant whose mixed arithmetic goes through
# float64 and decodes wrong symbols. They are compiled (or loaded from numba's cache) on first
# use, not at import, so importing ``codec`` stays light.
_INTO = "Tuple((int64, uint64))(uint32[::1], int64, uint64, uint64[::1], int64[::1], {}, {})"
_DIGIT_SIGNATURES = [
    _INTO.format(table, out)
    for table, out in (
        ("uint8[:, ::1]", "int64[::1]"),
        ("int32[:, ::1]", "int64[::1]"),
        ("uint8[:, ::1]", "uint8[::1]"),  # uint8 output only for uint8 digits
    )
]


def _decode_digits(
    words: np.ndarray,
    pos: int,
    state: np.uint64,
    left: np.ndarray,
    buckets: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> tuple[int, np.uint64]:
    """Fill ``out`` with the digits (``table`` [alphabet**k, k], least significant first) of
    ``ceil(out.size / k)`` super-symbols; returns the bulk length and the state."""
    k = table.shape[1]
    count = out.size
    mask = np.uint64((1 << 24) - 1)
    shift = np.uint64(24)
    bucket_shift = np.uint64(24 - 12)
    low = np.uint64(1) << np.uint64(32)
    word_bits = np.uint64(32)
    i = 0
    while i < count:
        q = state & mask
        s = buckets[q >> bucket_shift]
        while left[s + 1] <= q:
            s += 1
        lo = left[s]
        state = (left[s + 1] - lo) * (state >> shift) + (q - lo)
        if state < low and pos > 0:
            pos -= 1
            state = (state << word_bits) | np.uint64(words[pos])
        for d in range(min(k, count - i)):
            out[i + d] = table[s, d]
        i += k
    return pos, state


@functools.cache
def _digits_kernel() -> Any:
    return njit(_DIGIT_SIGNATURES, cache=True, nogil=True)(_decode_digits)


def decode_digits(
    words: np.ndarray,
    pos: int,
    state: np.uint64,
    left: np.ndarray,
    buckets: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> tuple[int, np.uint64]:
    """Fill ``out`` with the digits (``table`` [alphabet**k, k], least significant first) of
    ``ceil(out.size / k)`` super-symbols; returns the bulk length and the state. Raises
    ``TypeError`` for array types outside the compiled signatures."""
    result: tuple[int, np.uint64] = _digits_kernel()(words, pos, state, left, buckets, table, out)
    return result
