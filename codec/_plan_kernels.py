"""Compiled (numba) per-row loops of SLICER's encoder plan: the ATKF rung search, the MS cuts
on the log grid and the greedy ABQ bit allocation (``codec._slicer_plan`` calls them).

They compute what the vectorised numpy code they replaced computed, row by row, without a
Python round trip per rung, cut or allocation step. Cut magnitudes come from ``cut_table``
(``cut_values`` of every grid index from ``-CUT_OFFSET``), so the encoder's corrections use the
very float32 values the decoder will compute.
"""

from __future__ import annotations

import numpy as np
from numba import njit

GRID = 8
CUT_OFFSET = 1400  # grid index -1400 is 2**-175, below float32's smallest subnormal


@njit(cache=True, nogil=True)
def _mag(srt: np.ndarray, r: int, s: int, i: int) -> np.float32:
    """Magnitude of the i-th largest entry of sign s (0 positive) in sorted row r."""
    n = srt.shape[1]
    i = min(max(i, 0), n - 1)
    return srt[r, n - 1 - i] if s == 0 else -srt[r, i]


@njit(cache=True, nogil=True)
def keep_counts(
    pre: np.ndarray,
    counts: np.ndarray,
    budget: np.ndarray,
    keep_pos: float,
    keep_neg: float,
    rungs: np.ndarray,
    drop_share: float,
) -> np.ndarray:
    """ATKF: per row the survivors kept of each sign [R, 2]: the first rung whose dropped
    energy is at most ``drop_share`` of the budget (the last rung, 1.0, always passes)."""
    n_rows = pre.shape[0]
    n = pre.shape[1] - 1
    k = np.zeros((n_rows, 2), dtype=np.int64)
    for r in range(n_rows):
        cp, cn = counts[r, 0], counts[r, 1]
        for f in rungs:
            kp = min(int(np.ceil(max(keep_pos, f) * cp)), cp)
            kn = min(int(np.ceil(max(keep_neg, f) * cn)), cn)
            dropped = pre[r, n] - (pre[r, n] - pre[r, n - kp]) - pre[r, kn]
            k[r, 0], k[r, 1] = kp, kn
            if dropped <= drop_share * budget[r] or f >= 1.0:
                break
    return k


@njit(cache=True, nogil=True)
def _grid_floor(m: np.float32) -> int:
    return int(np.floor(np.log2(max(np.float64(m), 1e-45)) * GRID))


@njit(cache=True, nogil=True)
def _grid_ceil(m: np.float32) -> int:
    return int(np.ceil(np.log2(max(np.float64(m), 1e-45)) * GRID))


@njit(cache=True, nogil=True)
def cuts(srt: np.ndarray, k: np.ndarray, nb: int, cut_table: np.ndarray) -> np.ndarray:
    """MS: equal-cardinality cuts rounded down onto the log grid [R, 2, nb+1] (0 for a sign
    without survivors); a cut never exceeds its block's lowest member, nor the top cut the
    maximum."""
    n_rows = srt.shape[0]
    q = np.zeros((n_rows, 2, nb + 1), dtype=np.int64)
    for r in range(n_rows):
        for s in range(2):
            if k[r, s] == 0:
                continue
            run = -(2**62)  # running maximum of the raw floors
            prev = -(2**62)  # running maximum of the corrected cuts
            for j in range(nb):
                edge = int(np.rint(k[r, s] * (nb - j) / nb))
                low = _mag(srt, r, s, max(edge - 1, 0))
                run = max(_grid_floor(low), run)
                ql = run - (1 if cut_table[run + CUT_OFFSET] > low else 0)
                prev = max(ql, prev)
                q[r, s, j] = prev
            top = _mag(srt, r, s, 0)
            qt = _grid_ceil(top)
            qt += 1 if cut_table[qt + CUT_OFFSET] < top else 0
            q[r, s, nb] = max(qt, prev)
    return q


@njit(cache=True, nogil=True)
def greedy_bits(
    n_blk: np.ndarray, width: np.ndarray, target: np.ndarray, levels: np.ndarray
) -> np.ndarray:
    """ABQ: per row, level indices [R, 2*nb] from the water-filling warm start, then one level
    at a time to the block with the largest modelled distortion drop per bit until the
    modelled error is within ``target``."""
    n_rows, m = n_blk.shape
    top = levels.size - 1
    bits = np.zeros((n_rows, m), dtype=np.int64)
    d = np.empty(m, dtype=np.float64)
    for r in range(n_rows):
        kept_n = max(n_blk[r].sum(), 1)
        step0 = np.sqrt(12 * max(target[r], 1e-300) / kept_n)
        for g in range(m):
            if n_blk[r, g] > 0:
                want = max(width[r, g], 1e-300) / step0
                bits[r, g] = min(max(np.searchsorted(levels, want, side="right") - 2, 0), top)
        for _ in range(m * top):
            total = 0.0
            for g in range(m):
                d[g] = n_blk[r, g] * (width[r, g] / levels[bits[r, g]]) ** 2 / 12
                total += d[g]
            if not total > target[r]:
                break
            best, pick = -1.0, 0
            for g in range(m):
                b = bits[r, g]
                if b < top and n_blk[r, g] > 0:
                    up = n_blk[r, g] * (width[r, g] / levels[b + 1]) ** 2 / 12
                    cost = n_blk[r, g] * np.log2(levels[b + 1] / levels[b]) + 1e-12
                    gain = (d[g] - up) / cost
                    if gain > best:
                        best, pick = gain, g
            if best <= 0:
                break
            bits[r, pick] += 1
    return bits
