"""``codec._kernels``: the compiled helpers agree with the plain numpy they replaced, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from codec import _kernels, entropy
from codec._slicer_plan import (
    LEVELS_F32,
    Setting,
    cast,
    cut_values,
    plan_rows,
    quantize,
    reconstruct,
)
from tests.codec import reference_kernels


@pytest.mark.parametrize(("alphabet", "count"), [(2, 1), (2, 13), (3, 100), (9, 7), (64, 33)])
def test_pack_and_table_unpack_are_the_base_alphabet_digits(alphabet: int, count: int) -> None:
    rng = np.random.default_rng(alphabet * 1000 + count)
    symbols = rng.integers(0, alphabet, count)
    k = entropy.pack_factor(alphabet)
    supers = _kernels.pack_digits(symbols, alphabet, k, 0)
    padded = np.zeros(-(-count // k) * k, dtype=np.int64)
    padded[:count] = symbols
    expected = (padded.reshape(-1, k) * alphabet ** np.arange(k)).sum(axis=1)
    assert supers.dtype == np.int32
    assert supers.tolist() == expected.tolist()
    table = entropy._digit_table(alphabet, k)
    out, ok = reference_kernels.unpack_table(supers, table, count)
    assert ok
    assert out.tolist() == symbols.tolist()


def test_unpack_table_refuses_a_symbol_outside_the_table() -> None:
    table = entropy._digit_table(2, 12)
    _, ok = reference_kernels.unpack_table(np.array([5, 4096], dtype=np.int32), table, 24)
    assert not ok


def test_sign_split_and_merge_are_inverse() -> None:
    rng = np.random.default_rng(3)
    kept = rng.random((5, 40)) < 0.4
    neg = rng.random((5, 40)) < 0.5
    block = rng.integers(0, 4, (5, 40)).astype(np.int8)
    signs, ids_pos, ids_neg = _kernels.survivors_by_sign(kept, neg, block)
    assert signs.tolist() == neg[kept].astype(np.int64).tolist()
    assert ids_pos.tolist() == block[kept & ~neg].tolist()
    assert ids_neg.tolist() == block[kept & neg].tolist()
    merged = reference_kernels.merge_by_sign(signs.astype(bool), ids_pos, ids_neg)
    assert merged.tolist() == block[kept].tolist()


def test_grouped_reconstruction_equals_survivor_order_reconstruction() -> None:
    rng = np.random.default_rng(4)
    rows = rng.laplace(size=(6, 200)).astype(np.float32)
    plan = plan_rows(rows, 1e-2, Setting(0.3, 0.3, 2, 0.5))
    codes, groups = quantize(rows, plan, plan.kept)
    n_groups = 2 * 2 * len(LEVELS_F32)
    by_group, offsets = _kernels.split_by_group(codes, groups, n_groups)
    neg, block = plan.neg[plan.kept], plan.block[plan.kept]
    found, ok = reference_kernels.survivor_group_offsets(
        plan.kept, neg, block, plan.bits, plan.present, len(LEVELS_F32)
    )
    assert ok
    assert found.tolist() == offsets.tolist() == _kernels.group_offsets(groups, n_groups).tolist()
    cuts = cut_values(plan.q)
    want = _kernels.reconstruct(plan.kept, neg, block, codes, plan.bits, cuts, LEVELS_F32)
    got = reference_kernels.reconstruct_grouped(
        plan.kept, neg, block, by_group, offsets, plan.bits, cuts, LEVELS_F32
    )
    assert np.array_equal(got, want)


@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_fused_float32_errors_equal_quantize_reconstruct_errors(blocks: int) -> None:
    rng = np.random.default_rng(blocks)
    rows = (rng.laplace(size=(12, 300)) * rng.random((12, 1)) * 10).astype(np.float32)
    rows[0, :50] = 0.0
    plan = plan_rows(rows, 1e-2, Setting(0.3, 0.2, blocks, 0.5))
    codes, _ = quantize(rows, plan, plan.kept)
    recon = cast(reconstruct(plan, plan.kept, codes), "float32")
    expected = _kernels.errors(rows, recon, plan.kept, plan.neg, plan.block, blocks)
    cuts = cut_values(plan.q)
    fused = _kernels.roundtrip_errors(
        rows, plan.kept, plan.neg, plan.block, plan.bits, cuts, LEVELS_F32
    )
    for got, want in zip(fused, expected, strict=True):
        assert np.array_equal(got, want)
