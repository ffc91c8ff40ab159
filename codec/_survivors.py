"""Compiled decoder loops of SLICER that walk the survivors instead of the dense kept mask.

``positions`` turns the kept mask [R, N] into each survivor's flat position and each row's
first survivor in one branch-free pass; ``group_offsets`` (with the block-id merge by sign) and
``reconstruct`` then loop over survivors row by row, so no later pass tests ``kept`` per
element. The arithmetic is that of the dense-mask loops they replaced (kept as test references
in ``tests/codec/reference_kernels.py``): the same float32 cut, step and cell-centre
expressions, so decoded values are bit-identical to them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codec._kernels import _value


@njit(cache=True, nogil=True)
def positions(kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat position (row-major) of every survivor, and the index of each row's first survivor
    ([R+1], the last entry the survivor count)."""
    n_rows, n = kept.shape
    pos = np.empty(n_rows * n + 1, dtype=np.int64)
    row_start = np.empty(n_rows + 1, dtype=np.int64)
    i = 0
    for r in range(n_rows):
        row_start[r] = i
        base = r * n
        for c in range(n):
            pos[i] = base + c  # written always, kept only where the mask says so
            i += 1 if kept[r, c] else 0
    row_start[n_rows] = i
    return pos[:i], row_start


@njit(cache=True, nogil=True)
def group_offsets(
    row_start: np.ndarray,
    neg: np.ndarray,
    ids_pos: np.ndarray,
    ids_neg: np.ndarray,
    bits: np.ndarray,
    present: np.ndarray,
    n_levels: int,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Each survivor's block id (the positive and negative survivors' ids merged back into
    survivor order, as the dense-mask decoder merged them), the start offset of each group number
    ((sign*B + block)*n_levels + bits) in the survivors sorted by group (stable, as
    the dense-mask decoder's), and whether every survivor's sign has cuts in its
    row."""
    n_rows = row_start.size - 1
    nb = bits.shape[2]
    n_groups = 2 * nb * n_levels
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    block = np.empty(neg.size, dtype=np.int64)
    both = np.concatenate((ids_pos, ids_neg))
    n_pos = ids_pos.size
    a = 0
    b = 0
    for r in range(n_rows):
        for i in range(row_start[r], row_start[r + 1]):
            s = 1 if neg[i] else 0
            if not present[r, s]:
                return block, offsets, False
            j = both[a + s * (n_pos + b - a)]
            a += 1 - s
            b += s
            block[i] = j
            offsets[(s * nb + j) * n_levels + bits[r, s, j] + 1] += 1
    for g in range(n_groups):
        offsets[g + 1] += offsets[g]
    return block, offsets, True


@njit(cache=True, nogil=True)
def reconstruct(
    pos: np.ndarray,
    row_start: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    by_group: np.ndarray,
    offsets: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
    n: int,
) -> np.ndarray:
    """Decoded float32 rows [R, n]: each survivor takes the next code of its group; the cut
    and step of every (sign, block) are computed once per row, with the same float32
    expressions as the dense-mask decoder it replaced."""
    n_rows = row_start.size - 1
    nb = bits.shape[2]
    n_levels = levels.size
    cursor = offsets[:-1].copy()
    out = np.zeros(n_rows * n, dtype=np.float32)
    lo = np.empty(2 * nb, dtype=np.float32)
    step = np.empty(2 * nb, dtype=np.float32)
    group = np.empty(2 * nb, dtype=np.int64)
    for r in range(n_rows):
        if row_start[r] == row_start[r + 1]:
            continue
        for s in range(2):
            for j in range(nb):
                b = bits[r, s, j]
                lo[s * nb + j] = cuts[r, s, j]
                step[s * nb + j] = (cuts[r, s, j + 1] - cuts[r, s, j]) / levels[b]
                group[s * nb + j] = (s * nb + j) * n_levels + b
        for i in range(row_start[r], row_start[r + 1]):
            s = 1 if neg[i] else 0
            k = s * nb + block[i]
            g = group[k]
            v = _value(by_group[cursor[g]], lo[k], step[k])
            cursor[g] += 1
            out[pos[i]] = -v if s else v
    return out.reshape(n_rows, n)


@njit(cache=True, nogil=True)
def group_counts(
    row_start: np.ndarray,
    neg: np.ndarray,
    ids_pos: np.ndarray,
    ids_neg: np.ndarray,
    bits: np.ndarray,
    present: np.ndarray,
    n_levels: int,
) -> tuple[np.ndarray, bool]:
    """The ``offsets`` of ``group_offsets`` without the per-survivor block ids: per row, the
    survivors of each sign are a run of that sign's ids, counted per block in whole-run passes
    (``reconstruct_merged`` merges the ids itself)."""
    nb = bits.shape[2]
    offsets = np.zeros(2 * nb * n_levels + 1, dtype=np.int64)
    per_block = np.zeros(nb, dtype=np.int64)
    taken = np.zeros(2, dtype=np.int64)  # ids of each sign used so far
    for r in range(row_start.size - 1):
        n_neg = 0
        for i in range(row_start[r], row_start[r + 1]):
            n_neg += neg[i]
        for s in range(2):
            count = n_neg if s else row_start[r + 1] - row_start[r] - n_neg
            if count == 0:
                continue
            if not present[r, s]:
                return offsets, False
            ids = ids_neg if s else ids_pos
            start = taken[s]
            per_block[:] = 0
            if nb <= 4:  # a few counting passes vectorise; a histogram would chain
                for j in range(1, nb):
                    c = 0
                    for t in range(start, start + count):
                        c += ids[t] == j
                    per_block[j] = c
                per_block[0] = count - per_block[1:].sum()
            else:
                for t in range(start, start + count):
                    per_block[ids[t]] += 1
            for j in range(nb):
                offsets[(s * nb + j) * n_levels + bits[r, s, j] + 1] += per_block[j]
            taken[s] += count
    for g in range(2 * nb * n_levels):
        offsets[g + 1] += offsets[g]
    return offsets, True


@njit(cache=True, nogil=True)
def reconstruct_merged(
    pos: np.ndarray,
    row_start: np.ndarray,
    neg: np.ndarray,
    ids_pos: np.ndarray,
    ids_neg: np.ndarray,
    by_group: np.ndarray,
    offsets: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
    n: int,
) -> np.ndarray:
    """``reconstruct`` with each survivor's block id merged from the per-sign ids on the fly
    (as ``group_offsets`` merges them: both signs' next ids are read and one is selected, no
    branch on the sign); the same float32 values."""
    n_rows = row_start.size - 1
    nb = bits.shape[2]
    n_levels = levels.size
    cursor = offsets[:-1].copy()
    last_pos, last_neg = max(ids_pos.size - 1, 0), max(ids_neg.size - 1, 0)
    if ids_pos.size == 0:  # the clamped, branch-free reads below need an entry
        ids_pos = np.zeros(1, dtype=ids_pos.dtype)
    if ids_neg.size == 0:
        ids_neg = np.zeros(1, dtype=ids_neg.dtype)
    out = np.zeros(n_rows * n, dtype=np.float32)
    lo = np.empty(2 * nb, dtype=np.float32)
    step = np.empty(2 * nb, dtype=np.float32)
    group = np.empty(2 * nb, dtype=np.int64)
    a = 0
    b = 0
    for r in range(n_rows):
        if row_start[r] == row_start[r + 1]:
            continue
        for s in range(2):
            for j in range(nb):
                k = s * nb + j
                lo[k] = cuts[r, s, j]
                step[k] = (cuts[r, s, j + 1] - cuts[r, s, j]) / levels[bits[r, s, j]]
                group[k] = k * n_levels + bits[r, s, j]
        for i in range(row_start[r], row_start[r + 1]):
            s = 1 if neg[i] else 0
            j_pos, j_neg = ids_pos[min(a, last_pos)], ids_neg[min(b, last_neg)]
            k = s * nb + (j_neg if s else j_pos)
            a += 1 - s
            b += s
            g = group[k]
            v = _value(by_group[cursor[g]], lo[k], step[k])
            cursor[g] += 1
            out[pos[i]] = -v if s else v
    return out.reshape(n_rows, n)
