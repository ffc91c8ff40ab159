"""Where each symbol of SLICER's body goes, for the compiled writer (``codec._slicer_write``):
the side values of the present (row, sign) pairs, each row's kept level, and the regions of the
one int16 symbol buffer after the side streams (masks, signs, block ids of each sign, codes by
group), filled in one branch-free pass over every element."""

from __future__ import annotations

import numpy as np
from numba import njit

from codec import _kernels
from codec._slicer_plan import LEVELS_F32, N_LEVELS


@njit(cache=True, nogil=True)
def zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


@njit(cache=True, nogil=True)
def side_values(
    q: np.ndarray, bits: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Of the present (row, sign) pairs in order: zigzagged first-cut deltas, cut deltas and
    bitwidths (flat), and the first cut's zigzag (0 if none)."""
    n_rows, _, nb = bits.shape
    n_present = int(present.sum())
    dq0 = np.empty(max(n_present - 1, 0), dtype=np.int64)
    dq = np.empty(n_present * nb, dtype=np.int64)
    b = np.empty(n_present * nb, dtype=np.int64)
    i, first, previous = 0, 0, 0
    for r in range(n_rows):
        for s in range(2):
            if present[r, s]:
                if i:
                    dq0[i - 1] = zigzag(q[r, s, 0] - previous)
                else:
                    first = zigzag(q[r, s, 0])
                previous = q[r, s, 0]
                for j in range(nb):
                    dq[i * nb + j] = q[r, s, j + 1] - q[r, s, j]
                    b[i * nb + j] = bits[r, s, j]
                i += 1
    return dq0, dq, b, first


@njit(cache=True, nogil=True)
def row_levels(kept: np.ndarray) -> np.ndarray:
    """Each row's kept level: 0 for none, 64 for all, else its kept share in 64ths within
    1..63."""
    n_rows, n = kept.shape
    kept_n = kept.sum(axis=1)
    level = np.empty(n_rows, dtype=np.int64)
    for r in range(n_rows):
        level[r] = min(max(int(np.rint(kept_n[r] * 64 / max(n, 1))), 1), 63)
        level[r] = 0 if kept_n[r] == 0 else (64 if kept_n[r] == n else level[r])
    return level


@njit(cache=True, nogil=True)
def mask_starts(level: np.ndarray, normal: np.ndarray, n: int, base: int) -> np.ndarray:
    """Where each row's kept mask goes in ``sym``: the rows of each level strictly between none
    and all, level by level, from ``base`` (-1: the row codes no mask)."""
    mask_at = np.full(level.size, -1, dtype=np.int64)
    at = base
    for lv in range(1, 64):
        for r in range(level.size):
            if normal[r] and level[r] == lv:
                mask_at[r] = at
                at += n
    return mask_at


@njit(cache=True, nogil=True)
def regions(
    level: np.ndarray, normal: np.ndarray, n: int, base: int, total: int
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """The regions of ``sym`` from ``base`` (past the side streams) for ``total`` survivors:
    each row's mask start (``mask_starts``), the signs' start, each sign's block-id start and
    the codes' start. Each survivor region has a spare entry: the branch-free writes past its
    last survivor land there."""
    mask_at = mask_starts(level, normal, n, base)
    signs_at = base + n * (mask_at >= 0).sum()
    ids_at = np.empty(2, dtype=np.int64)
    ids_at[0] = signs_at + total + 1
    ids_at[1] = ids_at[0] + total + 1
    return mask_at, signs_at, ids_at, ids_at[1] + total + 1


@njit(cache=True, nogil=True)
def survivor_streams(
    sym: np.ndarray,
    mask_at: np.ndarray,
    signs_at: int,
    ids_at: np.ndarray,
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One branch-free pass over every element: its mask bit (rows with ``mask_at`` >= 0), and
    for a survivor its sign, its block id (positive and negative survivors apart, from
    ``ids_at``), its code and group number (returned; ``_kernels.quantize``'s), all in survivor
    order. ``sym`` needs one spare entry past the sign region and each id region; returns
    (codes, groups, ids per sign)."""
    n_rows, n = rows.shape
    nb = bits.shape[2]
    total = 0
    for r in range(n_rows):
        for c in range(n):
            total += kept[r, c]
    codes = np.empty(total + 1, dtype=np.int16)
    groups = np.empty(total + 1, dtype=np.int16)
    i, a0, a1 = 0, ids_at[0], ids_at[1]
    lo_at, step_at, count_at = _kernels.block_grid(cuts, bits, LEVELS_F32)
    for r in range(n_rows):
        row_mask = mask_at[r]
        for c in range(n):
            k = kept[r, c]
            if row_mask >= 0:
                sym[row_mask + c] = k
            s = 1 if neg[r, c] else 0
            j = block[r, c]
            t = s * nb + j
            m = -rows[r, c] if s else rows[r, c]
            sym[signs_at + i] = s
            sym[a0] = j
            sym[a1] = j
            codes[i] = _kernels._code(m, lo_at[r, t], step_at[r, t], count_at[r, t])
            groups[i] = t * N_LEVELS + bits[r, s, j]
            i += k
            a0 += k & (s == 0)
            a1 += k & (s == 1)
    n_ids = np.empty(2, dtype=np.int64)
    n_ids[0], n_ids[1] = a0 - ids_at[0], a1 - ids_at[1]
    return codes[:total], groups[:total], n_ids
