"""SLICER's whole encoder in one compiled call: ``_slicer_plan.plan_rows`` (ATKF, MS, ABQ),
``_slicer_plan.verify`` on float32 output and ``_slicer_write._write``, so a per-token frame
costs one call instead of some twenty.

The stages are the same kernels in the same order, so the bytes are exactly those of the
staged path (tested). ``encode`` returns None where that path must take over: an input whose
caller dtype is not float32 (verify then goes through the 16-bit cast), more than
``MAX_FUSED`` values, a row that needs verbatim storage, or a side value outside its alphabet.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from codec import (
    _kernels,
    _model_bank,
    _plan_kernels,
    _slicer_plan,
    _slicer_verify,
    _slicer_write,
)
from codec._slicer_plan import LEVELS_F32, LEVELS_F64, MAX_BITS, Setting

#: Above this many values the staged path is faster (numpy's large allocations fault in fewer
#: pages than the kernels' own: 1.77 MB encodes in 21 ms staged against 26 ms fused).
MAX_FUSED = 2**16


def encode(rows: np.ndarray, nmse: float, setting: Setting, granularity: str) -> bytes | None:
    """The body of float32 ``rows`` [R, N] at this setting, or None (see the module)."""
    if rows.size > MAX_FUSED:
        return None
    fixed, bank = _model_bank.fixed_models(), _model_bank.bank()
    tables = (bank.left, bank.buckets, bank.slot_of, fixed.probs, fixed.meta)
    lengths, starts = _slicer_write.code_lengths()
    nb = setting.blocks
    keep = (setting.keep_pos, setting.keep_neg, setting.drop_share, nmse)
    layout = (nb, 0 if granularity == "row" else 1, math.log2(nb))
    rungs = _slicer_plan._rungs(min(setting.keep_pos, setting.keep_neg))
    srt = np.sort(rows, axis=1)  # numpy's SIMD sort; numba's is several times slower
    out, ok = _encode(
        rows, srt, keep, layout, rungs, _slicer_plan._cut_table(), tables, lengths, starts
    )
    return out.tobytes() if ok else None


@njit(cache=True, nogil=True)
def _plan(
    rows: np.ndarray,
    srt: np.ndarray,
    keep: tuple[float, float, float, float],
    nb: int,
    rungs: np.ndarray,
    cut_table: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``plan_rows`` on the rows and the rows sorted: (kept, neg, block, q, bits, present,
    cuts)."""
    keep_pos, keep_neg, drop_share, nmse = keep
    n_rows, n = rows.shape
    pre, counts = _kernels.sorted_stats(srt)
    energy = pre[:, n].copy()
    budget = nmse * energy
    k = _plan_kernels.keep_counts(pre, counts, budget, keep_pos, keep_neg, rungs, drop_share)
    present = k > 0
    q = _plan_kernels.cuts(srt, k, nb, cut_table)
    cuts = np.empty(q.shape, dtype=np.float32)
    for r in range(n_rows):
        for s in range(2):
            for j in range(nb + 1):
                cuts[r, s, j] = cut_table[q[r, s, j] + _plan_kernels.CUT_OFFSET]
    kept, neg, block = _kernels.assign(rows, cuts, present)
    n_blk, kept_energy = _kernels.block_stats(rows, kept, neg, block, nb)
    width = np.empty((n_rows, 2 * nb), dtype=np.float64)
    for r in range(n_rows):
        for s in range(2):
            for j in range(nb):
                width[r, s * nb + j] = np.float64(cuts[r, s, j + 1] - cuts[r, s, j])
    target = budget - (energy - kept_energy)
    bits = _plan_kernels.greedy_bits(n_blk, width, target, LEVELS_F64).reshape(n_rows, 2, nb)
    return kept, neg, block, q, bits, present, cuts


@njit(cache=True, nogil=True)
def _verify(
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    nmse: float,
) -> bool:
    """``verify`` for float32 output (``_slicer_verify.verify_rows``); False where a row would
    need
    verbatim storage."""
    stuck, _ = _slicer_verify.verify_rows(
        rows, kept, neg, block, bits, cuts, LEVELS_F32, nmse, MAX_BITS
    )
    return not stuck.any()


@njit(cache=True, nogil=True)
def _encode(
    rows: np.ndarray,
    srt: np.ndarray,
    keep: tuple[float, float, float, float],
    layout: tuple[int, int, float],
    rungs: np.ndarray,
    cut_table: np.ndarray,
    tables: _model_bank.Tables,
    lengths: np.ndarray,
    starts: np.ndarray,
) -> tuple[np.ndarray, bool]:
    nb = layout[0]
    kept, neg, block, q, bits, present, cuts = _plan(rows, srt, keep, nb, rungs, cut_table)
    if not _verify(rows, kept, neg, block, bits, cuts, keep[3]):
        return np.zeros(0, dtype=np.uint8), False
    mode = np.zeros(rows.shape[0], dtype=np.int64)
    return _slicer_write._write(
        rows, mode, kept, neg, block, q, bits, present, layout, tables, lengths, starts, cuts
    )
