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


@njit(cache=True, nogil=True, inline="always")
def _code(m: np.float32, lo: np.float32, step: np.float32, count: np.float32) -> int:
    """The quantisation code of magnitude ``m`` in a block from ``lo`` with this step."""
    code = 0
    if step > 0:
        code = int(np.floor((m - lo) / step))
        code = min(max(code, 0), int(count) - 1)
    return code


@njit(cache=True, nogil=True, inline="always")
def _value(code: int, lo: np.float32, step: np.float32) -> np.float32:
    """The cell centre a code decodes to (float32 arithmetic, shared by every kernel)."""
    return lo + (np.float32(code) + np.float32(0.5)) * step


@njit(cache=True, nogil=True)
def sorted_stats(srt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of rows sorted ascending: the running sum of squares (float64, sequential as
    ``np.cumsum``, with a leading 0) [R, N+1], and the count of positive and of negative
    entries [R, 2]."""
    n_rows, n = srt.shape
    pre = np.empty((n_rows, n + 1), dtype=np.float64)
    counts = np.zeros((n_rows, 2), dtype=np.int64)
    for r in range(n_rows):
        acc = 0.0
        pre[r, 0] = acc
        n_pos, n_neg = 0, 0
        for c in range(n):
            x = np.float64(srt[r, c])
            acc += x * x
            pre[r, c + 1] = acc
            n_pos += int(x > 0)
            n_neg += int(x < 0)
        counts[r, 0], counts[r, 1] = n_pos, n_neg
    return pre, counts


@njit(cache=True, nogil=True)
def assign(
    rows: np.ndarray, cuts: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept mask, sign and block id of every element from its row's cuts (branch-free: the
    block id counts the cuts at or below the magnitude, as cuts never decrease)."""
    n_rows, n = rows.shape
    nb = cuts.shape[2] - 1
    kept = np.zeros((n_rows, n), dtype=np.bool_)
    neg = np.zeros((n_rows, n), dtype=np.bool_)
    block = np.zeros((n_rows, n), dtype=np.int8)
    for r in range(n_rows):
        for c in range(n):
            x = rows[r, c]
            s = 1 if x < 0 else 0
            m = -x if s else x
            ok = (x != 0) & present[r, s] & (m >= cuts[r, s, 0])
            j = 0
            for jj in range(1, nb):
                j += m >= cuts[r, s, jj]
            kept[r, c] = ok
            neg[r, c] = s == 1
            block[r, c] = j if ok else 0
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
            codes[i] = _code(m, lo, step, count)
            groups[i] = (s * nb + j) * n_levels + b
            i += 1
    return codes, groups


@njit(cache=True, nogil=True)
def block_grid(
    cuts: np.ndarray, bits: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row and (sign, block) ``s * B + j``: the block's low cut, quantisation step and
    level count (float32 [R, 2B] each), with the very expressions of ``quantize``, so a loop
    over elements looks them up instead of computing them per element."""
    n_rows, _, nb = bits.shape
    lo = np.empty((n_rows, 2 * nb), dtype=np.float32)
    step = np.empty((n_rows, 2 * nb), dtype=np.float32)
    count = np.empty((n_rows, 2 * nb), dtype=np.float32)
    for r in range(n_rows):
        for s in range(2):
            for j in range(nb):
                lo[r, s * nb + j] = cuts[r, s, j]
                count[r, s * nb + j] = levels[bits[r, s, j]]
                step[r, s * nb + j] = (cuts[r, s, j + 1] - cuts[r, s, j]) / levels[bits[r, s, j]]
    return lo, step, count


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
    i = 0
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[i] else 0
                j = block[i]
                lo = cuts[r, s, j]
                step = (cuts[r, s, j + 1] - lo) / levels[bits[r, s, j]]
                v = _value(codes[i], lo, step)
                out[r, c] = -v if s else v
                i += 1
    return out


@njit(cache=True, nogil=True)
def pack_digits(symbols: np.ndarray, alphabet: int, k: int, pad: int) -> np.ndarray:
    """Super-symbols of ``k`` base-``alphabet`` digits each, least significant first; the last
    one is filled up with ``pad``."""
    n = symbols.size
    supers = np.empty(-(-n // k), dtype=np.int32)
    for t in range(supers.size):
        v = 0
        weight = 1
        for d in range(k):
            i = t * k + d
            v += (symbols[i] if i < n else pad) * weight
            weight *= alphabet
        supers[t] = v
    return supers


@njit(cache=True, nogil=True)
def survivors_by_sign(
    kept: np.ndarray, neg: np.ndarray, block: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-element encoder plan -> survivor order: each survivor's sign (1 = negative), and the
    block ids of the positive and of the negative survivors (int64)."""
    n_rows, n = kept.shape
    n_neg = 0
    total = 0
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                total += 1
                n_neg += neg[r, c]
    signs = np.empty(total, dtype=np.int64)
    ids = (np.empty(total - n_neg, dtype=np.int64), np.empty(n_neg, dtype=np.int64))
    i = 0
    at = np.zeros(2, dtype=np.int64)
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[r, c] else 0
                signs[i] = s
                ids[s][at[s]] = block[r, c]
                at[s] += 1
                i += 1
    return signs, ids[0], ids[1]


@njit(cache=True, nogil=True)
def group_offsets(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offset of each group number in a stable sort of ``groups`` (length n_groups+1)."""
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    for g in groups:
        offsets[g + 1] += 1
    for g in range(n_groups):
        offsets[g + 1] += offsets[g]
    return offsets


@njit(cache=True, nogil=True)
def roundtrip_errors(
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``errors`` of the float32 decode of an encoder plan, without building codes or the
    decoded rows: the same per-element arithmetic as ``quantize`` then ``reconstruct``, every
    element through it and the kept ones selected (no branch; adding 0.0 changes no sum)."""
    n_rows, n = rows.shape
    nb = bits.shape[2]
    row_err = np.zeros(n_rows, dtype=np.float64)
    energy = np.zeros(n_rows, dtype=np.float64)
    blk_err = np.zeros((n_rows, 2 * nb), dtype=np.float64)
    lo_at, step_at, count_at = block_grid(cuts, bits, levels)
    for r in range(n_rows):
        for c in range(n):
            x = np.float64(rows[r, c])
            k = kept[r, c]
            energy[r] += x * x
            s = 1 if neg[r, c] else 0
            j = block[r, c]
            lo, step = lo_at[r, s * nb + j], step_at[r, s * nb + j]
            m = -rows[r, c] if s else rows[r, c]
            v = _value(_code(m, lo, step, count_at[r, s * nb + j]), lo, step)
            d = x - np.float64(-v if s else v)
            row_err[r] += d * d if k else x * x
            blk_err[r, s * nb + j] += d * d if k else 0.0
    return row_err, energy, blk_err


@njit(cache=True, nogil=True)
def block_stats(
    rows: np.ndarray, kept: np.ndarray, neg: np.ndarray, block: np.ndarray, nb: int
) -> tuple[np.ndarray, np.ndarray]:
    """Survivors per (row, sign, block) and the energy each row keeps (float64)."""
    n_rows, n = rows.shape
    counts = np.zeros((n_rows, 2 * nb), dtype=np.int64)
    kept_energy = np.zeros(n_rows, dtype=np.float64)
    for r in range(n_rows):
        acc = 0.0  # in a register, summed in element order
        for c in range(n):
            k = kept[r, c]
            s = 1 if neg[r, c] else 0
            counts[r, s * nb + block[r, c]] += k
            x = np.float64(rows[r, c])
            acc += x * x if k else 0.0  # branch-free; adding 0.0 changes no sum
        kept_energy[r] = acc
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
    offsets = group_offsets(groups, n_groups)
    cursor = offsets[:-1].copy()
    out = np.empty_like(values)
    for i in range(values.size):
        g = groups[i]
        out[cursor[g]] = values[i]
        cursor[g] += 1
    return out, offsets
