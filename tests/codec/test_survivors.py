"""The survivor-walking decoder loops (``codec._survivors``) against the dense-mask kernels
they replace (``codec._kernels``): same block ids, group offsets and bit-identical values."""

from __future__ import annotations

import numpy as np
import pytest

from codec import _kernels, _survivors
from codec._slicer_plan import LEVELS_F32, Setting, cut_values, plan_rows, quantize
from tests.codec import reference_kernels


@pytest.mark.parametrize(("blocks", "seed"), [(1, 0), (2, 1), (4, 2), (3, 5)])
def test_survivor_loops_equal_the_dense_mask_kernels(blocks: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = (rng.laplace(size=(9, 257)) * rng.random((9, 1)) * 10).astype(np.float32)
    rows[0, :] = 0.0  # a row with no survivors
    rows[1, :100] = np.abs(rows[1, :100])  # rows of mixed sign balance
    plan = plan_rows(rows, 1e-2, Setting(0.3, 0.2, blocks, 0.5))
    kept = plan.kept
    codes, groups = quantize(rows, plan, kept)
    n_levels = len(LEVELS_F32)
    by_group, want_offsets = _kernels.split_by_group(codes, groups, 2 * blocks * n_levels)
    signs, ids_pos, ids_neg = _kernels.survivors_by_sign(kept, plan.neg, plan.block)
    neg = signs.astype(bool)
    want_block = reference_kernels.merge_by_sign(neg, ids_pos, ids_neg)
    dense_offsets, ok = reference_kernels.survivor_group_offsets(
        kept, neg, want_block, plan.bits, plan.present, n_levels
    )
    assert ok

    pos, row_start = _survivors.positions(kept)
    assert pos.tolist() == np.flatnonzero(kept).tolist()
    assert row_start.tolist() == [0, *np.cumsum(kept.sum(axis=1)).tolist()]
    block, offsets, ok = _survivors.group_offsets(
        row_start, neg, ids_pos, ids_neg, plan.bits, plan.present, n_levels
    )
    assert ok
    assert block.tolist() == want_block.tolist() == plan.block[kept].tolist()
    assert offsets.tolist() == dense_offsets.tolist() == want_offsets.tolist()

    cuts = cut_values(plan.q)
    want = reference_kernels.reconstruct_grouped(
        kept, neg, want_block, by_group, offsets, plan.bits, cuts, LEVELS_F32
    )
    got = _survivors.reconstruct(
        pos, row_start, neg, block, by_group, offsets, plan.bits, cuts, LEVELS_F32, kept.shape[1]
    )
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_group_offsets_reports_a_sign_without_cuts() -> None:
    kept = np.ones((1, 3), dtype=bool)
    _, row_start = _survivors.positions(kept)
    neg = np.array([False, True, False])
    present = np.array([[True, False]])
    bits = np.ones((1, 2, 1), dtype=np.int64)
    ids = np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int64)
    assert not _survivors.group_offsets(row_start, neg, *ids, bits, present, 4)[2]


def test_positions_of_an_empty_mask() -> None:
    pos, row_start = _survivors.positions(np.zeros((3, 0), dtype=bool))
    assert pos.size == 0
    assert row_start.tolist() == [0, 0, 0, 0]
