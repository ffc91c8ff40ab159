"""Compiled (numba) model-choice arithmetic of SLICER's writer: symbol counts, empirical
entropy, a histogram's stored size and a fixed model's code length, in one pass per stream.

``codec._slicer_side.put_side`` and ``codec._slicer_stream`` pick the cheaper model of each
stream with these; they compute what ``entropy.entropy_bits``, ``entropy.cost_bits`` and
``entropy.histogram_size_bytes`` compute, without the Python calls per stream.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _varint_bytes(value: int) -> int:
    size = 1
    while value >= 128:
        value >>= 7
        size += 1
    return size


@njit(cache=True, nogil=True)
def histogram_bytes(counts: np.ndarray) -> int:
    """Bytes ``entropy.write_histogram`` takes for these counts."""
    used = 0
    size = 0
    previous = -1
    for symbol in range(counts.size):
        if counts[symbol]:
            used += 1
            size += _varint_bytes(symbol - previous - 1) + _varint_bytes(counts[symbol])
            previous = symbol
    return size + _varint_bytes(used)


@njit(cache=True, nogil=True)
def entropy_bits(counts: np.ndarray) -> float:
    """Empirical entropy (total bits) of symbols with these counts."""
    total = counts.sum()
    bits = 0.0
    for c in counts:
        if c:
            bits -= c * np.log2(c / total)
    return bits


@njit(cache=True, nogil=True)
def side_choice(
    values: np.ndarray, alphabet: int, code_lengths: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """(counts, bits under the fixed model of these code lengths, bits with the histogram
    stored) of a side stream; the fixed model's bits are -1 where a value is outside
    ``[0, alphabet)``. Few values in a large alphabet are summed over their distinct symbols
    only, in symbol order: the same floats, since the skipped terms are all 0."""
    counts = np.zeros(alphabet, dtype=np.int64)
    for v in values:
        if not 0 <= v < alphabet:
            return counts, -1.0, 0.0
        counts[v] += 1
    if 8 * values.size < alphabet:
        used = np.unique(values)
        return counts, _sparse_bits(counts, used, code_lengths), _sparse_hist_bits(counts, used)
    fixed_bits = 0.0
    for symbol in range(alphabet):
        fixed_bits += counts[symbol] * code_lengths[symbol]
    return counts, fixed_bits, entropy_bits(counts) + 8 * histogram_bytes(counts)


@njit(cache=True, nogil=True)
def _sparse_bits(counts: np.ndarray, used: np.ndarray, code_lengths: np.ndarray) -> float:
    fixed_bits = 0.0
    for symbol in used:
        fixed_bits += counts[symbol] * code_lengths[symbol]
    return fixed_bits


@njit(cache=True, nogil=True)
def _sparse_hist_bits(counts: np.ndarray, used: np.ndarray) -> float:
    """``entropy_bits(counts) + 8 * histogram_bytes(counts)`` over the used symbols (sorted)."""
    total = 0
    for symbol in used:
        total += counts[symbol]
    bits = 0.0
    size = 0
    previous = -1
    for symbol in used:
        c = counts[symbol]
        bits -= c * np.log2(c / total)
        size += _varint_bytes(symbol - previous - 1) + _varint_bytes(c)
        previous = symbol
    return bits + 8 * (size + _varint_bytes(used.size))


@njit(cache=True, nogil=True)
def code_choice(
    codes: np.ndarray, code_lengths: np.ndarray
) -> tuple[np.ndarray, int, float, float]:
    """(counts, best model row, its bits, bits with the histogram stored) of one group's codes
    under the model rows of ``code_lengths`` [models, alphabet]."""
    n_models, alphabet = code_lengths.shape
    counts = np.zeros(alphabet, dtype=np.int64)
    for v in codes:
        counts[v] += 1
    used = np.flatnonzero(counts)
    best, best_bits = 0, np.inf
    for m in range(n_models):
        bits = 0.0
        for symbol in used:
            bits += code_lengths[m, symbol] * counts[symbol]
        if bits < best_bits:
            best, best_bits = m, bits
    return counts, best, best_bits, entropy_bits(counts) + 8 * histogram_bytes(counts)


@njit(cache=True, nogil=True)
def group_numbers(bits: np.ndarray, present: np.ndarray, n_levels: int) -> np.ndarray:
    """Sorted group numbers ((sign*B + block)*n_levels + bits) of every (sign, block, bits>0)
    that some row with survivors of that sign declares."""
    n_rows, _, nb = bits.shape
    seen = np.zeros(2 * nb * n_levels, dtype=np.bool_)
    for r in range(n_rows):
        for s in range(2):
            if present[r, s]:
                for j in range(nb):
                    b = bits[r, s, j]
                    if b > 0:
                        seen[(s * nb + j) * n_levels + b] = True
    return np.flatnonzero(seen)


@njit(cache=True, nogil=True)
def sparse_side_bits(
    values: np.ndarray, alphabet: int, code_lengths: np.ndarray
) -> tuple[float, float]:
    """``side_choice``'s two bit counts without its counts array (for few values in a large
    alphabet): the same sums over the distinct values in order; -1 where one is outside. The
    histogram's bits skip the entropy where storing it alone costs at least the fixed model."""
    srt = np.sort(values)
    if srt.size and (srt[0] < 0 or srt[-1] >= alphabet):
        return -1.0, 0.0
    fixed_bits, size, used, previous = 0.0, 0, 0, -1
    i = 0
    while i < srt.size:
        j = i
        while j < srt.size and srt[j] == srt[i]:
            j += 1
        fixed_bits += (j - i) * code_lengths[srt[i]]
        size += _varint_bytes(srt[i] - previous - 1) + _varint_bytes(j - i)
        previous, used, i = srt[i], used + 1, j
    stored = 8.0 * (size + _varint_bytes(used))
    if stored >= fixed_bits:  # the histogram loses whatever its entropy (as code_choice_t)
        return fixed_bits, stored
    bits = 0.0
    i = 0
    while i < srt.size:
        j = i
        while j < srt.size and srt[j] == srt[i]:
            j += 1
        bits -= (j - i) * np.log2((j - i) / srt.size)
        i = j
    return fixed_bits, bits + stored


@njit(cache=True, nogil=True)
def code_choice_t(codes: np.ndarray, lengths_t: np.ndarray) -> tuple[np.ndarray, int, float, float]:
    """``code_choice`` with the code lengths transposed ([alphabet, models]): every model's
    sum still runs over the used symbols in order, so the floats are the same, but the models
    accumulate side by side instead of one dependent chain each. Where the stored histogram
    alone costs at least the best model, its bits are returned without the entropy (a lower
    bound that loses the same comparison)."""
    alphabet, n_models = lengths_t.shape
    counts = np.zeros(alphabet, dtype=np.int64)
    for v in codes:
        counts[v] += 1
    bits = np.zeros(n_models, dtype=np.float64)
    for symbol in range(alphabet):
        c = counts[symbol]
        if c:
            for m in range(n_models):
                bits[m] += lengths_t[symbol, m] * c
    best, best_bits = 0, np.inf
    for m in range(n_models):
        if bits[m] < best_bits:
            best, best_bits = m, bits[m]
    stored = 8.0 * histogram_bytes(counts)
    if stored >= best_bits:  # the histogram loses whatever its entropy: skip the logarithms
        return counts, best, best_bits, stored
    return counts, best, best_bits, entropy_bits(counts) + stored
