"""SLICER's rANS models as numbered values, and their fixed-point tables built once per thread,
for the compiled body writer and reader (``codec._slicer_write``, ``codec._slicer_read``).

Every fixed model SLICER can name has a number: the universal model of each side alphabet, the
Bernoulli models of the 63 mask levels and the 255 sign levels, the uniform block-id models and
the geometric code models (decay level x bitwidth). ``fixed_models()`` holds, per number, the
probabilities exactly as ``codec.entropy`` builds them (rounded by ``entropy._key``, then
``entropy._normalise``d), its pack factor and the symbol the writer pads with. Empirical
histograms are built in compiled code with the same arithmetic, numpy's pairwise sum included,
so every table is bit-identical to ``entropy._decoder_model`` (tested).

A ``Bank`` (one per thread, ``bank()``) caches built tables in ``SLOTS`` slots: left cumulatives
(uint32, ending at 2**24) and the bucket table of ``_ans_decode``. The last slot is scratch for
histogram models; when the others are full, the cache starts again.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
from numba import njit

from codec import _ans_decode, _slicer_side, _slicer_stream, entropy

SIDE_ALPHABETS = (3, 4, 16, 65, 4096)  # universal models, numbers 0..4
MASK_BASE = len(SIDE_ALPHABETS)  # + level (1..63): bernoulli(level / 64)
SIGN_BASE = MASK_BASE + 65  # + level (1..255): bernoulli(level / 256)
UNIFORM_BASE = SIGN_BASE + 257  # + block count (2..16)
GEOM_BASE = UNIFORM_BASE + 17  # + decay level * 16 + bitwidth level (1..15)
N_MODELS = GEOM_BASE + 64 * 16
SLOTS = 128
TABLE = 4096  # the most super-symbols of a model (entropy.SUPER_ALPHABET)
#: The code alphabet of each bitwidth level (``_slicer_plan.LEVELS``).
LEVELS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


#: What the compiled coders get: a bank's left, buckets and slot_of, then the fixed models'
#: probs and meta.
Tables = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class FixedModels:
    """``probs`` (float64, every model's normalised probabilities back to back) and ``meta``
    [N_MODELS, 4]: start in ``probs``, alphabet (0: no such model), pack factor, pad symbol."""

    probs: np.ndarray
    meta: np.ndarray


def _given(number: int) -> np.ndarray | None:
    """The probabilities SLICER's Python writer passes for this model number (None: unused)."""
    if number < MASK_BASE:
        return _slicer_side.universal(SIDE_ALPHABETS[number])
    if number < SIGN_BASE:
        level = number - MASK_BASE
        return entropy.bernoulli(level / 64) if 0 < level < 64 else None
    if number < UNIFORM_BASE:
        level = number - SIGN_BASE
        return entropy.bernoulli(level / 256) if 0 < level < 256 else None
    if number < GEOM_BASE:
        nb = number - UNIFORM_BASE
        return entropy.uniform(nb) if nb > 1 else None
    level, bits = divmod(number - GEOM_BASE, 16)
    return _slicer_stream.geometric_model(level, bits) if bits > 0 else None


@functools.cache
def fixed_models() -> FixedModels:
    """Every fixed model, built once per process (a few ms)."""
    pieces: list[np.ndarray] = []
    meta = np.zeros((N_MODELS, 4), dtype=np.int64)
    start = 0
    for number in range(N_MODELS):
        given = _given(number)
        if given is None:
            continue
        p = entropy._normalise(np.frombuffer(entropy._key(given), dtype=np.float64))
        meta[number] = (start, p.size, entropy.pack_factor(p.size), int(np.argmax(given)))
        pieces.append(p)
        start += p.size
    return FixedModels(np.concatenate(pieces), meta)


class Bank:
    """One thread's table cache (about 4 MB)."""

    def __init__(self) -> None:
        self.left = np.zeros((SLOTS, TABLE + 1), dtype=np.uint32)
        self.buckets = np.zeros((SLOTS, 2**_ans_decode.BUCKET_BITS), dtype=np.int32)
        self.slot_of = np.full(N_MODELS + 1, -1, dtype=np.int64)  # last entry: next free slot
        self.slot_of[N_MODELS] = 0


_local = threading.local()


def warm() -> None:
    """Build what every SLICER coder needs before the first frame: the fixed models and this
    thread's bank (a stream's set-up calls it)."""
    fixed_models()
    bank()


def bank() -> Bank:
    """This thread's ``Bank`` (made on first use)."""
    found: Bank | None = getattr(_local, "bank", None)
    if found is None:
        found = _local.bank = Bank()
    return found


# -- compiled ---------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of at most 128 values: 8 accumulators, then the rest in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r = a[lo : lo + 8].copy()
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += a[lo + i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """``np.sum`` of the float64 values ``a[lo:lo+n]``, in numpy's pairwise order: halves (cut
    at a multiple of 8) summed separately down to blocks of 128 (a stack, not recursion)."""
    spans = np.empty((64, 3), dtype=np.int64)  # (start, length, halves summed so far)
    values = np.empty(64, dtype=np.float64)
    top, n_values = 0, 0
    spans[0, 0], spans[0, 1], spans[0, 2] = lo, n, 0
    while top >= 0:
        start, length, stage = spans[top, 0], spans[top, 1], spans[top, 2]
        if length <= 128 or stage == 2:
            if length <= 128:
                values[n_values] = _block_sum(a, start, length)
            else:
                values[n_values - 2] = values[n_values - 2] + values[n_values - 1]
                n_values -= 1
            n_values += 1 if length <= 128 else 0
            top -= 1
            continue
        half = length // 2
        half -= half % 8
        spans[top, 2] = stage + 1
        top += 1
        spans[top, 0] = start if stage == 0 else start + half
        spans[top, 1] = half if stage == 0 else length - half
        spans[top, 2] = 0
    return values[0]


@njit(cache=True, nogil=True)
def pack_factor(alphabet: int) -> int:
    """``entropy.pack_factor``: the most symbols with ``alphabet**k <= 4096`` (k >= 1)."""
    k = 1
    size = alphabet
    while alphabet > 1 and size * alphabet <= TABLE:
        size *= alphabet
        k += 1
    return k


@njit(cache=True, nogil=True)
def _build(p: np.ndarray, k: int, left: np.ndarray, buckets: np.ndarray) -> None:
    """The k-fold product table of ``p`` (as ``np.outer`` builds it) into ``left``/``buckets``."""
    a = p.size
    table = np.empty(TABLE, dtype=np.float64)
    spare = np.empty(TABLE, dtype=np.float64)
    table[:a] = p
    size = a
    for _ in range(k - 1):
        for i in range(a):
            for j in range(size):
                spare[i * size + j] = p[i] * table[j]
        size *= a
        table, spare = spare, table
    _ans_decode.lookup_into(table[:size], left, buckets)


@njit(cache=True, nogil=True)
def fixed_slot(
    left: np.ndarray,
    buckets: np.ndarray,
    slot_of: np.ndarray,
    probs: np.ndarray,
    meta: np.ndarray,
    number: int,
) -> int:
    """The slot holding fixed model ``number``'s tables, built there on first use."""
    slot = slot_of[number]
    if slot >= 0:
        return slot
    n_models = slot_of.size - 1
    if slot_of[n_models] >= left.shape[0] - 1:  # full: start again
        slot_of[:] = -1
        slot_of[n_models] = 0
    slot = slot_of[n_models]
    slot_of[n_models] += 1
    start, alphabet, k = meta[number, 0], meta[number, 1], meta[number, 2]
    _build(probs[start : start + alphabet], k, left[slot], buckets[slot])
    slot_of[number] = slot
    return slot


@njit(cache=True, nogil=True)
def histogram_slot(left: np.ndarray, buckets: np.ndarray, counts: np.ndarray, total: float) -> int:
    """Build the model ``counts / total`` into the scratch slot, exactly as ``entropy`` would
    (``_key``'s rounding to 12 decimals, then ``_normalise``); returns the slot."""
    a = counts.size
    p = np.empty(a, dtype=np.float64)
    for i in range(a):
        p[i] = max(np.rint((counts[i] / total) * 1e12) / 1e12, entropy.MIN_PROBABILITY)
    s = pairwise_sum(p, 0, a)
    for i in range(a):
        p[i] = p[i] / s
    slot = left.shape[0] - 1
    _build(p, pack_factor(a), left[slot], buckets[slot])
    return slot
