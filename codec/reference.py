"""The reference rate: an entropy-coded uniform scalar quantiser per row at a given NMSE.

For each row, a mid-tread uniform quantiser ``round(x / step) * step`` with the largest step
that keeps the row's NMSE within the target; the rate is the ideal (empirical) entropy of the
quantisation indices with no side information at all. By default each row's own empirical
entropy is summed (the benchmark's reference; it flatters short rows); ``pooled=True`` measures
the entropy over the indices of all rows together, as one coder with one model would see them.
"""

from __future__ import annotations

import numpy as np


def _row_steps(rows: np.ndarray, nmse: float, iterations: int = 40) -> np.ndarray:
    x = rows.astype(np.float64)
    energy = (x**2).sum(axis=1)
    lo = np.full(len(x), 1e-12)
    hi = np.maximum(np.abs(x).max(axis=1), 1e-12) * 4
    for _ in range(iterations):
        mid = np.sqrt(lo * hi)
        err = ((x - np.rint(x / mid[:, None]) * mid[:, None]) ** 2).sum(axis=1)
        ok = err <= nmse * energy
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo


def reference_bits_per_element(rows: np.ndarray, nmse: float, *, pooled: bool = False) -> float:
    """Ideal bits per element of a per-row uniform quantiser meeting ``nmse`` on every row."""
    rows = rows.reshape(rows.shape[0], -1) if rows.ndim >= 2 else rows.reshape(1, -1)
    if rows.size == 0:
        return 0.0
    steps = _row_steps(rows, nmse)
    idx = np.rint(rows.astype(np.float64) / steps[:, None]).astype(np.int64)
    if pooled:
        return _entropy(idx.ravel()) / rows.size
    return sum(_entropy(r) for r in idx) / rows.size


def _entropy(symbols: np.ndarray) -> float:
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / symbols.size
    return float(-(counts * np.log2(p)).sum())
