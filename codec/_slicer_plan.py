"""SLICER's encoder stages on rows: ATKF thresholds, MS cuts, ABQ bit allocation and its exact
verification, plus the quantiser and reconstruction that encoder and decoder share.

See ``codec.slicer`` for the design; the stored format lives in ``codec._slicer_stream``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from codec import _kernels, _plan_kernels, _slicer_verify
from codec.base import TORCH_DTYPES

GRID = 8  # cut points per octave
#: Quantisation levels a block may use: bitwidths 0..8 in half-bit steps.
LEVELS = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256])
N_LEVELS = len(LEVELS)
LEVELS_F32 = LEVELS.astype(np.float32)
LEVELS_F64 = LEVELS.astype(np.float64)
MAX_BITS = N_LEVELS - 1  # the highest level index
#: Keep fractions a row may take, from all entries down to 0.3%, each 1/1.2 of the one before.
KEEP_LADDER = tuple(1.2**-i for i in range(33))
MODE_NORMAL, MODE_FP16, MODE_FP32 = 0, 1, 2  # how a row is stored


def cut_values(q: np.ndarray) -> np.ndarray:
    """Grid index -> magnitude (float32), identical in encoder and decoder."""
    return np.exp2(q.astype(np.float64) / GRID).astype(np.float32)


@dataclass
class Plan:
    """Everything the bitstream needs about each row. The encoder holds ``neg`` and ``block``
    per element ([R, N], meaningful where kept); the decoder holds them per survivor."""

    mode: np.ndarray  # [R] int
    kept: np.ndarray  # [R, N] bool
    neg: np.ndarray  # bool: the entry is negative
    block: np.ndarray  # int8 block id
    q: np.ndarray  # [R, 2, B+1] int grid cuts
    bits: np.ndarray  # [R, 2, B] int
    present: np.ndarray  # [R, 2] bool: sign has survivors

    def subset(self, idx: np.ndarray) -> Plan:
        """The plan of some rows (copies)."""
        return Plan(
            self.mode[idx],
            self.kept[idx],
            self.neg[idx],
            self.block[idx],
            self.q[idx],
            self.bits[idx],
            self.present[idx],
        )


@dataclass(frozen=True)
class Setting:
    """One concrete encoder setting: keep fractions per sign and the block count."""

    keep_pos: float  # the smallest fraction of each sign a row keeps
    keep_neg: float
    blocks: int
    drop_share: float  # a row keeps more until dropped energy <= drop_share * its budget


def plan_rows(rows: np.ndarray, nmse: float, setting: Setting) -> Plan:
    """Thresholds, cuts, block ids and bit allocation for every row."""
    n_rows, n = rows.shape
    srt = np.sort(rows, axis=1)
    pre, counts = _kernels.sorted_stats(srt)  # prefix energies [R, n+1]; signs [R, 2]
    energy = pre[:, n]
    budget = nmse * energy
    k = _plan_kernels.keep_counts(
        pre,
        counts,
        budget,
        setting.keep_pos,
        setting.keep_neg,
        _rungs(min(setting.keep_pos, setting.keep_neg)),
        setting.drop_share,
    )
    present = k > 0
    q = _plan_kernels.cuts(srt, k, setting.blocks, _cut_table())
    cuts = cut_values(q)  # [R, 2, B+1]
    kept, neg, block = _kernels.assign(rows, cuts, present)
    bits = allocate(rows, kept, neg, block, cuts, budget, energy)
    return Plan(np.zeros(n_rows, np.int64), kept, neg, block, q, bits, present)


@functools.lru_cache(maxsize=64)
def _rungs(floor: float) -> np.ndarray:
    """ATKF's rungs from the requested fraction up to 1.0 (read-only)."""
    rungs = np.array(sorted({floor, *(f for f in KEEP_LADDER if f > floor)}))
    rungs.setflags(write=False)
    return rungs


@functools.cache
def _cut_table() -> np.ndarray:
    """``cut_values`` of every grid index the encoder can reach, from ``-CUT_OFFSET``."""
    with np.errstate(over="ignore"):  # indices past float32's range are inf, never a cut
        return cut_values(np.arange(-_plan_kernels.CUT_OFFSET, 1100))


def allocate(
    rows: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    cuts: np.ndarray,
    budget: np.ndarray,
    energy: np.ndarray,
) -> np.ndarray:
    """Greedy marginal-return bit allocation per row (``_plan_kernels.greedy_bits``)."""
    n_rows, _ = rows.shape
    nb = cuts.shape[2] - 1
    n_blk, kept_energy = _kernels.block_stats(rows, kept, neg, block, nb)
    width = (cuts[:, :, 1:] - cuts[:, :, :-1]).astype(np.float64).reshape(n_rows, 2 * nb)
    target = budget - (energy - kept_energy)
    bits = _plan_kernels.greedy_bits(n_blk, width, target, LEVELS_F64)
    return bits.reshape(n_rows, 2, nb)


def verify(rows: np.ndarray, plan: Plan, nmse: float, dtype: str) -> None:
    """Add bits until every row meets its budget on the exactly decoded values; after the first
    pass only the rows still over budget are decoded again. Float32 output goes row by row in
    one compiled call (``_slicer_verify.verify_rows``: the same steps and sums per row)."""
    if dtype == "float32":
        cuts = cut_values(plan.q)
        stuck, energy = _slicer_verify.verify_rows(
            rows, plan.kept, plan.neg, plan.block, plan.bits, cuts, LEVELS_F32, nmse, MAX_BITS
        )
        if stuck.any():
            x = rows[stuck]
            f16 = cast(x.astype(np.float16).astype(np.float32), dtype)
            f16_ok = ((x.astype(np.float64) - f16) ** 2).sum(axis=1) <= nmse * energy[stuck]
            plan.mode[stuck] = np.where(f16_ok, MODE_FP16, MODE_FP32)
        return
    nb = plan.bits.shape[2]
    active = np.arange(rows.shape[0])
    for _ in range(2 * nb * MAX_BITS + 1):
        sub = plan.subset(active) if len(active) < rows.shape[0] else plan
        x = rows[active] if sub is not plan else rows
        row_err, energy, blk_err = roundtrip_errors(x, sub, dtype)
        budget = nmse * energy
        over = (row_err > budget) & (sub.mode == MODE_NORMAL)
        if not over.any():
            return
        n_sub = len(active)
        bits = sub.bits.reshape(n_sub, 2 * nb).copy()
        blk_err[bits >= MAX_BITS] = -1.0
        pick = np.argmax(blk_err, axis=1)
        can = over & (blk_err[np.arange(n_sub), pick] > 0)
        bits[np.flatnonzero(can), pick[can]] += 1
        plan.bits[active] = bits.reshape(n_sub, 2, nb)
        stuck = over & ~can
        if stuck.any():
            f16 = cast(x[stuck].astype(np.float16).astype(np.float32), dtype)
            f16_ok = ((x[stuck].astype(np.float64) - f16) ** 2).sum(axis=1) <= budget[stuck]
            plan.mode[active[stuck]] = np.where(f16_ok, MODE_FP16, MODE_FP32)
        active = active[can]
        if active.size == 0:
            return
    raise AssertionError("slicer: bit allocation did not converge")  # unreachable by design


def roundtrip_errors(
    rows: np.ndarray, plan: Plan, dtype: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_kernels.errors`` of the values the decoder's caller will see: fused into one kernel
    for float32, through codes, reconstruction and the cast for the 16-bit dtypes."""
    if dtype == "float32":
        cuts = cut_values(plan.q)
        return _kernels.roundtrip_errors(
            rows, plan.kept, plan.neg, plan.block, plan.bits, cuts, LEVELS_F32
        )
    codes, _ = quantize(rows, plan, plan.kept)
    recon = cast(reconstruct(plan, plan.kept, codes), dtype)
    nb = plan.bits.shape[2]
    return _kernels.errors(rows, recon, plan.kept, plan.neg, plan.block, nb)


def quantize(rows: np.ndarray, plan: Plan, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantisation codes and group numbers of every survivor (encoder: per-element plan)."""
    cuts = cut_values(plan.q)
    return _kernels.quantize(
        rows, kept, plan.neg, plan.block, plan.bits, cuts, LEVELS_F32, N_LEVELS
    )


def reconstruct(plan: Plan, kept: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Decoded float32 rows from an encoder plan (the decoder calls the same kernel)."""
    cuts = cut_values(plan.q)
    return _kernels.reconstruct(
        kept, plan.neg[kept], plan.block[kept], codes, plan.bits, cuts, LEVELS_F32
    )


def cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """What the caller will see after the decoder's cast to its dtype, as float64."""
    if dtype == "float32":
        return values.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(values)).to(TORCH_DTYPES[dtype]).double().numpy()
