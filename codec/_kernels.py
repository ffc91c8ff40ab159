"""Compiled (numba) loops of SLICER's per-element work: block assignment, quantisation,
group numbers and reconstruction. Encoder and decoder call the same ``reconstruct`` so their
arithmetic is identical; every loop walks survivors in row-major order.

Arrays: ``rows`` [R, N] float32; ``kept`` [R, N] bool; ``neg``/``block`` per element [R, N]
(encoder) or per survivor (decoder); ``bits`` [R, 2, B] level indices; ``cuts`` [R, 2, B+1]
float32 magnitudes; ``levels`` float32 level counts per level index.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def assign(
    rows: np.ndarray, cuts: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept mask, sign and block id of every element from its row's cuts."""
    n_rows, n = rows.shape
    nb = cuts.shape[2] - 1
    kept = np.zeros((n_rows, n), dtype=np.bool_)
    neg = np.zeros((n_rows, n), dtype=np.bool_)
    block = np.zeros((n_rows, n), dtype=np.int8)
    for r in range(n_rows):
        for c in range(n):
            x = rows[r, c]
            if x == 0:
                continue
            s = 1 if x < 0 else 0
            neg[r, c] = s == 1
            if not present[r, s]:
                continue
            m = -x if s else x
            if m < cuts[r, s, 0]:
                continue
            kept[r, c] = True
            j = 0
            while j + 1 < nb and m >= cuts[r, s, j + 1]:
                j += 1
            block[r, c] = j
    return kept, neg, block


@njit(cache=True, nogil=True)
def quantize(
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
    n_levels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Code and group number ((sign*B + block)*n_levels + bits) of every survivor."""
    n_rows, n = rows.shape
    nb = bits.shape[2]
    total = 0
    for r in range(n_rows):
        for c in range(n):
            total += kept[r, c]
    codes = np.empty(total, dtype=np.int64)
    groups = np.empty(total, dtype=np.int64)
    i = 0
    for r in range(n_rows):
        for c in range(n):
            if not kept[r, c]:
                continue
            s = 1 if neg[r, c] else 0
            j = block[r, c]
            b = bits[r, s, j]
            lo = cuts[r, s, j]
            count = levels[b]
            step = (cuts[r, s, j + 1] - lo) / count
            m = -rows[r, c] if s else rows[r, c]
            code = 0
            if step > 0:
                code = int(np.floor((m - lo) / step))
                code = min(max(code, 0), int(count) - 1)
            codes[i] = code
            groups[i] = (s * nb + j) * n_levels + b
            i += 1
    return codes, groups


@njit(cache=True, nogil=True)
def survivor_groups(
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    present: np.ndarray,
    n_levels: int,
) -> tuple[np.ndarray, bool]:
    """Group numbers of survivors whose sign and block come in survivor order (decoder), and
    whether every survivor's sign has cuts in its row."""
    n_rows, n = kept.shape
    nb = bits.shape[2]
    groups = np.empty(neg.size, dtype=np.int64)
    i = 0
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[i] else 0
                if not present[r, s]:
                    return groups, False
                j = block[i]
                groups[i] = (s * nb + j) * n_levels + bits[r, s, j]
                i += 1
    return groups, True


@njit(cache=True, nogil=True)
def reconstruct(
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    codes: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
) -> np.ndarray:
    """Decoded float32 rows; sign, block and code come in survivor order."""
    n_rows, n = kept.shape
    out = np.zeros((n_rows, n), dtype=np.float32)
    half = np.float32(0.5)
    i = 0
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[i] else 0
                j = block[i]
                lo = cuts[r, s, j]
                step = (cuts[r, s, j + 1] - lo) / levels[bits[r, s, j]]
                v = lo + (np.float32(codes[i]) + half) * step
                out[r, c] = -v if s else v
                i += 1
    return out


@njit(cache=True, nogil=True)
def unpack_digits(supers: np.ndarray, alphabet: int, k: int, count: int) -> np.ndarray:
    """Split super-symbols into ``k`` base-``alphabet`` digits, least significant first."""
    out = np.empty(count, dtype=np.int64)
    i = 0
    for v in supers:
        for _ in range(k):
            if i == count:
                return out
            out[i] = v % alphabet
            v //= alphabet
            i += 1
    return out


@njit(cache=True, nogil=True)
def block_stats(
    rows: np.ndarray, kept: np.ndarray, neg: np.ndarray, block: np.ndarray, nb: int
) -> tuple[np.ndarray, np.ndarray]:
    """Survivors per (row, sign, block) and the energy each row keeps (float64)."""
    n_rows, n = rows.shape
    counts = np.zeros((n_rows, 2 * nb), dtype=np.int64)
    kept_energy = np.zeros(n_rows, dtype=np.float64)
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[r, c] else 0
                counts[r, s * nb + block[r, c]] += 1
                x = np.float64(rows[r, c])
                kept_energy[r] += x * x
    return counts, kept_energy


@njit(cache=True, nogil=True)
def errors(
    rows: np.ndarray,
    recon: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    nb: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: squared error and energy; per (row, sign, block): squared error of survivors."""
    n_rows, n = rows.shape
    row_err = np.zeros(n_rows, dtype=np.float64)
    energy = np.zeros(n_rows, dtype=np.float64)
    blk_err = np.zeros((n_rows, 2 * nb), dtype=np.float64)
    for r in range(n_rows):
        for c in range(n):
            x = np.float64(rows[r, c])
            d = x - np.float64(recon[r, c])
            row_err[r] += d * d
            energy[r] += x * x
            if kept[r, c]:
                s = 1 if neg[r, c] else 0
                blk_err[r, s * nb + block[r, c]] += d * d
    return row_err, energy, blk_err


@njit(cache=True, nogil=True)
def split_by_group(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort: values reordered by group (stable) and the start offset of each group."""
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    for g in groups:
        offsets[g + 1] += 1
    for g in range(n_groups):
        offsets[g + 1] += offsets[g]
    cursor = offsets[:-1].copy()
    out = np.empty_like(values)
    for i in range(values.size):
        g = groups[i]
        out[cursor[g]] = values[i]
        cursor[g] += 1
    return out, offsets
