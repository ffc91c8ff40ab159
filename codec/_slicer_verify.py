"""SLICER's float32 verification compiled row by row: ``verify_rows`` raises a row's block
levels until its exactly decoded error is within budget, with the arithmetic of
``codec._kernels`` (the same ``_code``/``_value`` steps, so the decoder reproduces it)."""

from __future__ import annotations

import numpy as np
from numba import njit

from codec import _kernels


@njit(cache=True, nogil=True, inline="always")
def _row_grid(
    cuts: np.ndarray, bits: np.ndarray, levels: np.ndarray, r: int, grid: np.ndarray
) -> None:
    """``block_grid`` of row ``r`` into ``grid`` [3, 2B] (low cut, step, level count)."""
    nb = bits.shape[2]
    for s in range(2):
        for j in range(nb):
            grid[0, s * nb + j] = cuts[r, s, j]
            grid[2, s * nb + j] = levels[bits[r, s, j]]
            grid[1, s * nb + j] = (cuts[r, s, j + 1] - cuts[r, s, j]) / levels[bits[r, s, j]]


@njit(cache=True, nogil=True)
def _row_error(
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    grid: np.ndarray,
    r: int,
    blk_err: np.ndarray,
    with_blocks: bool,
) -> tuple[float, float]:
    """Row ``r``'s ``roundtrip_errors``: (squared error, energy), summed in registers in
    element order (the same sums); ``with_blocks`` also fills ``blk_err`` [2B]."""
    nb = blk_err.size // 2
    err, energy = 0.0, 0.0
    blk_err[:] = 0.0
    for c in range(rows.shape[1]):
        x = np.float64(rows[r, c])
        k = kept[r, c]
        s = 1 if neg[r, c] else 0
        t = s * nb + block[r, c]
        lo, step = grid[0, t], grid[1, t]
        m = -rows[r, c] if s else rows[r, c]
        v = _kernels._value(_kernels._code(m, lo, step, grid[2, t]), lo, step)
        d = x - np.float64(-v if s else v)
        energy += x * x
        err += d * d if k else x * x
        if with_blocks:
            blk_err[t] += d * d if k else 0.0
    return err, energy


@njit(cache=True, nogil=True)
def verify_rows(
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
    nmse: float,
    max_bits: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``_slicer_plan.verify`` on float32 output, row by row (each row's steps are those of
    the batched loop): while a row's exactly decoded error is over ``nmse`` of its energy, the
    block with the largest error below ``max_bits`` gets one more level (``bits`` is updated in
    place). Returns each row's energy and whether it got stuck (no block can take a level: the
    row needs verbatim storage). Per-block errors are summed only for rows over budget."""
    n_rows = rows.shape[0]
    nb = bits.shape[2]
    stuck = np.zeros(n_rows, dtype=np.bool_)
    energy = np.zeros(n_rows, dtype=np.float64)
    grid = np.empty((3, 2 * nb), dtype=np.float32)
    errs = np.empty(2 * nb, dtype=np.float64)
    for r in range(n_rows):
        for _ in range(2 * nb * max_bits + 1):
            _row_grid(cuts, bits, levels, r, grid)
            err, energy[r] = _row_error(rows, kept, neg, block, grid, r, errs, False)
            if not err > nmse * energy[r]:
                break
            _row_error(rows, kept, neg, block, grid, r, errs, True)
            for g in range(2 * nb):
                if bits[r, g // nb, g % nb] >= max_bits:
                    errs[g] = -1.0
            pick = np.argmax(errs)
            if not errs[pick] > 0:
                stuck[r] = True
                break
            bits[r, pick // nb, pick % nb] += 1
    return stuck, energy
