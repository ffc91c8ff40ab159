"""Compiled rANS steps on the fixed-point tables of ``codec._ans_decode``: an encoder that writes
the very words constriction's ``AnsCoder`` writes (tested against constriction), and the digit
decoder the compiled SLICER reader calls per stream.

Encoding (constriction 0.5's stack coder, 64-bit state, 32-bit words, 24-bit precision): the
state starts at 0; a symbol with left cumulative ``lo`` and probability ``p`` first pushes the
state's low word when ``state >> 40 >= p`` (then ``state >>= 32``), then becomes
``(state // p) << 24 | (state % p + lo)``. ``encode_reverse`` codes the last symbol first, so
the decoder reads symbols in order. The compressed words are the pushed words followed by the
state: its low word unless the state is 0, then its high word unless that is 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MASK24 = (1 << 24) - 1


@njit(cache=True, nogil=True, inline="always")
def _digits_to_super(symbols: np.ndarray, t: int, n: int, alphabet: int, k: int, pad: int) -> int:
    v = 0
    weight = 1
    for d in range(k):
        i = t * k + d
        v += (symbols[i] if i < n else pad) * weight
        weight *= alphabet
    return v


@njit(cache=True, nogil=True)
def encode_reverse(
    words: np.ndarray,
    n_words: int,
    state: np.uint64,
    symbols: np.ndarray,
    alphabet: int,
    k: int,
    pad: int,
    left: np.ndarray,
) -> tuple[int, np.uint64]:
    """Push ``symbols`` (packed ``k`` digits per super-symbol, least significant first, the
    last one filled with ``pad``) onto the stack, last first; returns (word count, state)."""
    n = symbols.size
    word_bits = np.uint64(32)
    low_mask = np.uint64(0xFFFFFFFF)
    for t in range(-(-n // k) - 1, -1, -1):
        s = _digits_to_super(symbols, t, n, alphabet, k, pad)
        lo = np.uint64(left[s])
        p = np.uint64(left[s + 1]) - lo
        if (state >> np.uint64(40)) >= p:
            words[n_words] = np.uint32(state & low_mask)
            n_words += 1
            state >>= word_bits
        state = ((state // p) << np.uint64(24)) | ((state % p) + lo)
    return n_words, state


@njit(cache=True, nogil=True)
def finish(words: np.ndarray, n_words: int, state: np.uint64) -> int:
    """Append the state's words (low word, then high word, each unless it is 0 and the last)."""
    if state != np.uint64(0):
        words[n_words] = np.uint32(state & np.uint64(0xFFFFFFFF))
        n_words += 1
        high = state >> np.uint64(32)
        if high != np.uint64(0):
            words[n_words] = np.uint32(high)
            n_words += 1
    return n_words


@njit(cache=True, nogil=True, inline="always")
def _digits(out: np.ndarray, at: int, v: int, n_digits: int, alphabet: int, inverse: int) -> None:
    """The ``n_digits`` base-``alphabet`` digits of super-symbol ``v`` (< 4096), least
    significant first: for a power of two (``inverse`` <= 0: minus its bit count) each digit
    is a shift and a mask of its own, else ``inverse`` is ``reciprocal(alphabet)``, so no
    digit costs a division."""
    if inverse <= 0:
        for d in range(n_digits):
            out[at + d] = (v >> (-inverse * d)) & (alphabet - 1)
    else:
        for d in range(n_digits):
            quotient = (v * inverse) >> 32
            out[at + d] = v - quotient * alphabet
            v = quotient


@njit(cache=True, nogil=True, inline="always")
def _inverse(alphabet: int) -> int:
    """``_digits``' ``inverse`` of an alphabet: ``reciprocal``, or minus the bit count of a
    power of two."""
    if alphabet & (alphabet - 1):
        return reciprocal(alphabet)
    inverse = 0
    while (1 << -inverse) < alphabet:
        inverse -= 1
    return inverse


@njit(cache=True, nogil=True)
def reciprocal(alphabet: int) -> int:
    """``ceil(2**32 / alphabet)``: ``(v * it) >> 32 == v // alphabet`` for every ``v < 2**19``
    and ``alphabet < 2**13`` (the error, below ``v / 2**32``, stays under ``1 / alphabet``)."""
    return ((1 << 32) + alphabet - 1) // alphabet


@njit(cache=True, nogil=True)
def take(
    words: np.ndarray,
    pos: int | np.int64,
    state: np.uint64,
    left: np.ndarray,
    buckets: np.ndarray,
    alphabet: int,
    k: int,
    out: np.ndarray,
    start: int,
    count: int,
) -> tuple[int | np.int64, np.uint64]:
    """Decode ``count`` symbols into ``out[start:start+count]`` (``ceil(count / k)``
    super-symbols split into base-``alphabet`` digits); returns (bulk length, state)."""
    mask = np.uint64(_MASK24)
    shift = np.uint64(24)
    bucket_shift = np.uint64(24 - 12)
    low = np.uint64(1) << np.uint64(32)
    word_bits = np.uint64(32)
    inverse = _inverse(alphabet)
    i = 0
    while i < count:
        q = state & mask
        s = buckets[q >> bucket_shift]
        s += np.uint64(left[s + 1]) <= q  # one branch-free step settles most searches
        while np.uint64(left[s + 1]) <= q:
            s += 1
        lo = np.uint64(left[s])
        state = (np.uint64(left[s + 1]) - lo) * (state >> shift) + (q - lo)
        if state < low and pos > 0:
            pos -= 1
            state = (state << word_bits) | np.uint64(words[pos])
        _digits(out, start + i, s, min(k, count - i), alphabet, inverse)
        i += k
    return pos, state


def encode_streams(streams: list[tuple[np.ndarray, np.ndarray, int, int, int]]) -> bytes:
    """Words (little-endian bytes) of these streams (symbols int64, left cumulatives, alphabet,
    pack factor, pad) coded on one stack so that they decode in the order given."""
    total = sum(-(-symbols.size // k) for symbols, _, _, k, _ in streams)
    words = np.empty(total + 2, dtype=np.uint32)
    n_words, state = 0, np.uint64(0)
    for symbols, left, alphabet, k, pad in reversed(streams):
        n_words, end = encode_reverse(words, n_words, state, symbols, alphabet, k, pad, left)
        state = np.uint64(end)  # numba hands a uint64 back as a Python int
    n_words = finish(words, n_words, state)
    return words[:n_words].astype("<u4").tobytes()
