"""SLICER specifics: per-row budget, rate targets, asymmetric keep, monotonicity, determinism."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch

from codec import bitstream
from codec.base import row_nmse
from codec.registry import get_codec
from tests.codec.checker import Tolerance, check_codec, nmse


def _normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _decode_rows(config: dict[str, Any], x: np.ndarray) -> tuple[bytes, np.ndarray]:
    codec = get_codec(config)
    payload = codec.encode(x)
    return payload, codec.decode(payload).numpy()


# -- the per-row budget ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def massive() -> np.ndarray:
    """A [64, 576] hidden state whose row 0 carries a massive activation of 2e4."""
    x = _normal(64, 576, seed=1)
    x[0, 7] = 2e4
    return x


BUDGET = 0.01


def test_every_row_holds_the_budget_despite_a_massive_activation(massive: np.ndarray) -> None:
    config = {"id": "slicer", "max_nmse": BUDGET}
    check_codec(get_codec(config), massive, Tolerance(row_nmse=BUDGET))
    _, decoded = _decode_rows(config, massive)
    rows = row_nmse(massive, decoded)
    assert rows.max() <= BUDGET, rows.max()
    assert rows[1:].max() <= BUDGET  # the ordinary rows too
    assert abs(decoded[0, 7] - 2e4) / 2e4 < 0.1  # and the spike itself survives


def test_tensor_granularity_only_holds_the_budget_on_the_whole_tensor(
    massive: np.ndarray,
) -> None:
    """Why per-row is the default: with one budget for the whole tensor the spike's energy
    (4e8, against ~576 per ordinary row) buys the whole error budget, and the ordinary rows,
    i.e. every other token, are wrecked."""
    per_row_payload, per_row = _decode_rows({"id": "slicer", "max_nmse": BUDGET}, massive)
    tensor_config = {"id": "slicer", "max_nmse": BUDGET, "granularity": "tensor"}
    check_codec(get_codec(tensor_config), massive, Tolerance(nmse=BUDGET))
    tensor_payload, whole = _decode_rows(tensor_config, massive)

    assert nmse(massive, whole) <= BUDGET  # the promise it makes holds
    ordinary = row_nmse(massive, whole)[1:]
    assert np.median(ordinary) > 10 * BUDGET, np.median(ordinary)
    assert (ordinary > BUDGET).mean() > 0.9  # nearly every ordinary row misses the budget
    assert np.median(ordinary) > 100 * np.median(row_nmse(massive, per_row)[1:])
    # it is tempting because it is much smaller
    assert len(tensor_payload) < len(per_row_payload) / 4


def test_rows_of_very_different_scales() -> None:
    x = _normal(12, 200, seed=2) * (10.0 ** np.arange(-6, 6, dtype=np.float32))[:, None]
    for budget in (1e-3, 0.05):
        check_codec(get_codec({"id": "slicer", "max_nmse": budget}), x, Tolerance(row_nmse=budget))


def test_rows_are_slices_along_the_first_axis() -> None:
    """A feature map [C, H, W]: one budget per channel; a vector: one row."""
    x = _normal(8, 4, 4, seed=3)
    x[0] *= 1e3
    budget = 0.02
    _, decoded = _decode_rows({"id": "slicer", "max_nmse": budget}, x)
    assert row_nmse(x, decoded).shape == (8,)
    assert row_nmse(x, decoded).max() <= budget
    vector = x.reshape(-1)
    _, decoded = _decode_rows({"id": "slicer", "max_nmse": budget}, vector)
    assert nmse(vector, decoded) <= budget


def test_a_budget_too_tight_for_quantisation_stores_rows_verbatim() -> None:
    x = _normal(4, 64, seed=4)
    config = {"id": "slicer", "max_nmse": 1e-8}
    check_codec(get_codec(config), x, Tolerance(row_nmse=1e-8))
    payload, decoded = _decode_rows(config, x)
    np.testing.assert_array_equal(decoded, x)  # float32 verbatim: exact
    assert len(payload) >= 4 * x.size


# -- rate targets ----------------------------------------------------------------------------------
RATE_TARGETS = (1.0, 2.0, 4.0)


@pytest.fixture(scope="module")
def rate_runs() -> dict[float, tuple[bytes, np.ndarray, np.ndarray]]:
    x = _normal(16, 576, seed=5)
    runs = {}
    for target in RATE_TARGETS:
        payload, decoded = _decode_rows({"id": "slicer", "bits_per_element": target}, x)
        runs[target] = (payload, decoded, x)
    return runs


def test_rate_target_bounds_the_body(rate_runs: dict[float, Any]) -> None:
    for target, (payload, _, x) in rate_runs.items():
        _, body = bitstream.unpack(payload)
        rate = 8 * len(body) / x.size
        assert rate <= target, f"target {target}: body has {rate:.4f} bits/element"


def test_rate_target_bounds_the_payload(rate_runs: dict[float, Any]) -> None:
    for target, (payload, _, x) in rate_runs.items():
        rate = 8 * len(payload) / x.size
        assert rate <= target, f"target {target}: payload has {rate:.4f} bits/element"


def test_lower_rate_means_higher_distortion(rate_runs: dict[float, Any]) -> None:
    errors = [nmse(x, decoded) for _, decoded, x in (rate_runs[t] for t in RATE_TARGETS)]
    assert errors[0] > errors[1] > errors[2], errors
    for _, decoded, x in rate_runs.values():
        assert row_nmse(x, decoded).max() <= 1.0  # the loosest budget the search uses
    sizes = [len(rate_runs[t][0]) for t in RATE_TARGETS]
    assert sizes[0] < sizes[1] < sizes[2]
    # and the target is used, not undershot by much
    assert 8 * sizes[2] / rate_runs[4.0][2].size > 0.8 * 4.0


# -- asymmetric top-K ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def skewed() -> np.ndarray:
    """Rows with ~70% positive and ~30% negative entries."""
    rng = np.random.default_rng(6)
    x = np.abs(rng.standard_normal((8, 1000))).astype(np.float32)
    x[rng.random(x.shape) < 0.3] *= -1
    return x


def _kept_fractions(x: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = (decoded > 0).sum(axis=1) / (x > 0).sum(axis=1)
    neg = (decoded < 0).sum(axis=1) / (x < 0).sum(axis=1)
    return pos, neg


@pytest.mark.parametrize(("keep_pos", "keep_neg"), [(0.5, 0.1), (0.1, 0.5), (0.3, 0.3)])
def test_keep_pos_and_keep_neg_keep_different_counts(
    skewed: np.ndarray, keep_pos: float, keep_neg: float
) -> None:
    # a loose budget, so that the fixed fractions are not raised to meet it
    config = {"id": "slicer", "max_nmse": 0.8, "keep_pos": keep_pos, "keep_neg": keep_neg}
    _, decoded = _decode_rows(config, skewed)
    pos, neg = _kept_fractions(skewed, decoded)
    # at least the fraction; a few more survive because thresholds round down onto a
    # 1/8-octave grid (up to ~9% lower in magnitude)
    assert (pos >= keep_pos).all() and (pos <= keep_pos + 0.1).all(), pos
    assert (neg >= keep_neg).all() and (neg <= keep_neg + 0.1).all(), neg
    if keep_pos != keep_neg:
        assert (np.sign(pos - neg) == np.sign(keep_pos - keep_neg)).all()
    # survivors keep their sign, and they are the largest magnitudes of that sign
    nonzero = decoded != 0
    assert (np.sign(decoded[nonzero]) == np.sign(skewed[nonzero])).all()
    for r in range(skewed.shape[0]):
        for sign in (1, -1):
            of_sign = np.sign(skewed[r]) == sign
            kept = np.abs(skewed[r][of_sign & nonzero[r]])
            dropped = np.abs(skewed[r][of_sign & ~nonzero[r]])
            assert dropped.size == 0 or kept.min() >= dropped.max()


def test_a_fixed_keep_is_raised_when_the_budget_needs_it(skewed: np.ndarray) -> None:
    config = {"id": "slicer", "max_nmse": 0.05, "keep_pos": 0.5, "keep_neg": 0.1}
    _, decoded = _decode_rows(config, skewed)
    _, neg = _kept_fractions(skewed, decoded)
    assert (neg > 0.2).all(), neg  # dropping 90% of the negatives would break the budget
    assert row_nmse(skewed, decoded).max() <= 0.05


# -- rate monotonicity and determinism -------------------------------------------------------------
@pytest.mark.parametrize("extra", [{}, {"keep": 0.5, "blocks": 2}, {"granularity": "tensor"}])
def test_tighter_budget_means_more_bytes(extra: dict[str, Any]) -> None:
    x = _normal(16, 576, seed=7)
    budgets = (0.1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4)

    def size(budget: float) -> int:
        return len(get_codec({"id": "slicer", "max_nmse": budget, **extra}).encode(x))

    sizes = [size(b) for b in budgets]
    assert all(a < b for a, b in itertools.pairwise(sizes)), sizes
    # and never fewer bytes for a tighter budget, down to the verbatim rows
    more = [size(b) for b in (1e-6, 1e-8)]
    assert sizes[-1] <= more[0] <= more[1], (sizes, more)


@pytest.mark.parametrize(
    "config",
    [
        {"id": "slicer"},
        {"id": "slicer", "max_nmse": 1e-3, "blocks": 3, "keep": 0.4},
        {"id": "slicer", "keep_pos": 0.6, "keep_neg": 0.2, "granularity": "tensor"},
    ],
)
def test_same_input_gives_identical_bytes(config: dict[str, Any]) -> None:
    x = _normal(16, 96, seed=8)
    other = _normal(5, 33, seed=9)
    first = get_codec(config).encode(x)
    get_codec(config).encode(other)  # no state carried between calls
    assert get_codec(config).encode(x) == first
    codec = get_codec(config)
    assert codec.encode(x) == codec.encode(x) == first
    assert codec.encode(torch.from_numpy(x)) == first
    assert codec.encode(np.asfortranarray(x)) == first  # memory layout does not matter
    assert codec.encode(torch.from_numpy(x.T.copy()).T) == first


def test_input_dtype_is_part_of_the_payload() -> None:
    x = torch.from_numpy(_normal(4, 64, seed=10))
    codec = get_codec("slicer")
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        decoded = codec.decode(codec.encode(x.to(dtype)))
        assert decoded.dtype == dtype
        values = x.to(dtype).to(torch.float64).numpy()
        assert row_nmse(values, decoded.to(torch.float64).numpy()).max() <= 0.01


@pytest.mark.parametrize("shape", [(0,), (3, 0, 5), (0, 5), (5, 0)])
def test_empty_tensors(shape: tuple[int, ...]) -> None:
    codec = get_codec("slicer")
    decoded = codec.decode(codec.encode(torch.zeros(shape)))
    assert decoded.shape == shape
