"""Compiled static-model rANS for ``slicer-llm``: one symbol per coefficient, each coefficient
coded with the fixed table of its class, so a frame carries codes only.

Symbols are quantised coefficients ``q``: ``|q| <= radius`` is symbol ``q + radius``; larger
magnitudes are the escape symbol ``2 * radius + 1`` followed, in a separate byte section, by the
zig-zag varint of ``q``. The coder is Giesen's 32-bit rANS with 16-bit words: state in
``[2**16, 2**32)``, ``PROB_BITS``-bit frequencies, symbols pushed last first so the decoder reads
them in order. Coded words::

    words      n_words 16-bit little-endian words: the final state (two words, high then low)
               followed by the renormalisation words in reading order

Tables (``Tables``) come from per-class probability vectors: every symbol gets a frequency of at
least 1 out of ``2**PROB_BITS``, so any symbol can be coded under any class. The decoder finds a
slot's symbol from a bucket table (the symbol holding the first of each run of
``2**(PROB_BITS - BUCKET_BITS)`` slots) and a short forward walk: about 100 KB for every class
together, where a table of every slot took 3.2 MB and its lookups, one per symbol and each
depending on the last, missed the caches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from codec.errors import CodecError

PROB_BITS = 14
BUCKET_BITS = 10
_TOTAL = 1 << PROB_BITS
_LOW = 1 << 16


@dataclass(frozen=True)
class Tables:
    """Per-class coding tables: ``freq`` and ``start`` ``[classes, alphabet]`` (int64, rows sum to
    ``2**PROB_BITS``), and for decoding ``bucket_symbol`` ``[classes, 2**BUCKET_BITS]`` (int16):
    the symbol holding each bucket's first slot."""

    freq: np.ndarray
    start: np.ndarray
    bucket_symbol: np.ndarray
    radius: int


def build_tables(probs: np.ndarray, radius: int) -> Tables:
    """Fixed-point tables from ``probs`` ``[classes, 2 * radius + 2]`` (rows need not sum to 1)."""
    alphabet = 2 * radius + 2
    if probs.ndim != 2 or probs.shape[1] != alphabet:
        raise ValueError(f"probs must be [classes, {alphabet}], got {probs.shape}")
    if alphabet > np.iinfo(np.int16).max:
        raise ValueError(f"radius {radius} gives {alphabet} symbols; the tables hold 32767")
    p = np.maximum(np.asarray(probs, np.float64), 0.0)
    p /= p.sum(axis=1, keepdims=True)
    spare = _TOTAL - alphabet  # every symbol has frequency >= 1; the rest goes by probability
    freq = 1 + np.floor(p * spare).astype(np.int64)
    short = _TOTAL - freq.sum(axis=1)
    freq[np.arange(len(freq)), np.argmax(p, axis=1)] += short  # the rounding remainder
    start = np.zeros_like(freq)
    start[:, 1:] = np.cumsum(freq, axis=1)[:, :-1]
    first_slots = np.arange(1 << BUCKET_BITS) << (PROB_BITS - BUCKET_BITS)
    bucket_symbol = np.stack(
        [np.searchsorted(row, first_slots, side="right") - 1 for row in start]
    ).astype(np.int16)
    return Tables(freq, start, bucket_symbol, radius)


@njit(cache=True, nogil=True)
def _encode(
    q: np.ndarray, classes: np.ndarray, freq: np.ndarray, start: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    n = q.size
    escape = 2 * radius + 1
    words = np.empty(2 * n + 2, np.uint16)
    n_words = 0
    extra = np.empty(10 * n + 1, np.uint8)
    n_extra = 0
    for i in range(n):  # escapes in reading order
        v = q[i]
        if v > radius or v < -radius:
            z = np.uint64((v << 1) ^ (v >> 63))
            while z >= 0x80:
                extra[n_extra] = np.uint8((z & np.uint64(0x7F)) | np.uint64(0x80))
                n_extra += 1
                z >>= np.uint64(7)
            extra[n_extra] = np.uint8(z)
            n_extra += 1
    x = np.uint64(_LOW)
    for i in range(n - 1, -1, -1):
        v = q[i]
        s = escape if (v > radius or v < -radius) else v + radius
        c = classes[i]
        f = np.uint64(freq[c, s])
        if x >= ((np.uint64(_LOW) >> np.uint64(PROB_BITS)) << np.uint64(16)) * f:
            words[n_words] = np.uint16(x & np.uint64(0xFFFF))
            n_words += 1
            x >>= np.uint64(16)
        x = (x // f << np.uint64(PROB_BITS)) + x % f + np.uint64(start[c, s])
    words[n_words] = np.uint16(x & np.uint64(0xFFFF))
    words[n_words + 1] = np.uint16(x >> np.uint64(16))
    n_words += 2
    return words[:n_words][::-1].copy(), extra[:n_extra].copy()


@njit(cache=True, nogil=True)
def _decode(
    words: np.ndarray,
    extra: np.ndarray,
    classes: np.ndarray,
    freq: np.ndarray,
    start: np.ndarray,
    bucket_symbol: np.ndarray,
    radius: int,
    out: np.ndarray,
) -> int:
    """Decode ``out.size`` symbols into ``out``; returns 0, or a negative code on a defect:
    -1 words run out, -2 words left over or a bad final state, -3 escape bytes malformed."""
    n_words = words.size
    if n_words < 2:
        return -1
    x = (np.uint64(words[0]) << np.uint64(16)) | np.uint64(words[1])
    pos = 2
    pos_extra = 0
    escape = 2 * radius + 1
    mask = np.uint64(_TOTAL - 1)
    bucket_shift = np.uint64(PROB_BITS - BUCKET_BITS)
    for i in range(out.size):
        if x < np.uint64(_LOW):
            return -2
        c = classes[i]
        slot = x & mask
        s = np.int64(bucket_symbol[c, slot >> bucket_shift])
        while np.uint64(start[c, s] + freq[c, s]) <= slot:  # a few steps past the bucket's first
            s += 1
        x = np.uint64(freq[c, s]) * (x >> np.uint64(PROB_BITS)) + slot - np.uint64(start[c, s])
        if x < np.uint64(_LOW):
            if pos >= n_words:
                return -1
            x = (x << np.uint64(16)) | np.uint64(words[pos])
            pos += 1
        if s == escape:
            z = np.uint64(0)
            shift = np.uint64(0)
            while True:
                if pos_extra >= extra.size or shift > np.uint64(56):
                    return -3
                b = np.uint64(extra[pos_extra])
                pos_extra += 1
                z |= (b & np.uint64(0x7F)) << shift
                shift += np.uint64(7)
                if b < np.uint64(0x80):
                    break
            v = np.int64(z >> np.uint64(1)) ^ -np.int64(z & np.uint64(1))
            if -radius <= v <= radius:
                return -3
            out[i] = v
        else:
            out[i] = s - radius
    if pos != n_words or x != np.uint64(_LOW) or pos_extra != extra.size:
        return -2
    return 0


def encode(q: np.ndarray, classes: np.ndarray, tables: Tables) -> tuple[bytes, bytes]:
    """Codes ``q`` (int64) with per-symbol ``classes`` (int64) -> (word bytes, escape bytes)."""
    words, extra = _encode(q, classes, tables.freq, tables.start, tables.radius)
    return words.astype("<u2").tobytes(), extra.tobytes()


def decode(
    words: bytes | memoryview,
    extra: bytes | memoryview,
    classes: np.ndarray,
    tables: Tables,
    what: str,
) -> np.ndarray:
    """The inverse of :func:`encode`; a defect raises ``CodecError`` naming ``what``."""
    if len(words) % 2:
        raise CodecError(f"{what}: rANS words section has an odd byte count {len(words)}")
    out = np.empty(classes.size, np.int64)
    status = _decode(
        np.frombuffer(words, dtype="<u2").astype(np.uint16),
        np.frombuffer(extra, dtype=np.uint8),
        classes,
        tables.freq,
        tables.start,
        tables.bucket_symbol,
        tables.radius,
        out,
    )
    if status != 0:
        reason = {
            -1: "runs out of words",
            -2: "does not end where it should",
            -3: "has malformed escape values",
        }[status]
        raise CodecError(f"{what}: the entropy-coded section {reason}; the payload is corrupt")
    return out
