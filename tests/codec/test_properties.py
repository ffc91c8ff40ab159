"""Property tests: random float32 tensors through every codec, and SLICER's per-row budget."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from codec.errors import CodecError
from codec.registry import available, get_codec
from tests.codec.checker import check_codec, tolerance_for
from tests.codec.test_contract import CONFIGS

#: CODEC_PROPERTY_EXAMPLES=1000 for a deeper run.
SETTINGS = settings(
    max_examples=int(os.environ.get("CODEC_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FP16_MAX = 65504.0
MAX_SIZE = 2000
SCALES = (1e-30, 1e-12, 1e-6, 1e-3, 1.0, 30.0, 1e3, 2e4, 1e6, 1e12)


@st.composite
def shapes(draw: st.DrawFn, max_size: int = MAX_SIZE) -> tuple[int, ...]:
    """0 to 3 dimensions of at least 1, at most ``max_size`` elements."""
    ndim = draw(st.integers(0, 3))
    shape: list[int] = []
    room = max_size
    for _ in range(ndim):
        dim = draw(st.integers(1, max(1, min(room, 300))))
        shape.append(dim)
        room //= dim
    return tuple(shape)


@st.composite
def tensors(draw: st.DrawFn) -> np.ndarray:
    """Float32 arrays of varied distributions and scales, sparse or not, with outliers."""
    shape = draw(shapes())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["normal", "uniform", "laplace", "positive", "lognormal"]))
    n = math.prod(shape)
    if kind == "normal":
        x = rng.standard_normal(n)
    elif kind == "uniform":
        x = rng.uniform(-1, 1, n)
    elif kind == "laplace":
        x = rng.laplace(size=n)
    elif kind == "positive":
        x = np.abs(rng.standard_normal(n))
    else:
        x = rng.lognormal(0, 3, n) * rng.choice([-1.0, 1.0], n)
    x *= draw(st.sampled_from(SCALES))
    zeros = draw(st.sampled_from([0.0, 0.0, 0.5, 0.9, 0.99, 1.0]))
    x[rng.random(n) < zeros] = 0.0
    if n and draw(st.booleans()):  # a few outliers, like massive activations
        idx = rng.integers(0, n, size=max(1, n // 500))
        x[idx] *= draw(st.sampled_from([10.0, 1e3]))
    return x.astype(np.float32).reshape(shape)


#: Raw float32 arrays straight from hypothesis: ties, subnormals, signed zeros, extremes.
raw_arrays = hnp.arrays(
    dtype=np.float32,
    shape=shapes(max_size=400),
    elements=st.floats(-1e6, 1e6, width=32, allow_nan=False, allow_infinity=False),
)

DTYPES = st.sampled_from(["numpy", "float32", "float16", "bfloat16"])


def as_input(x: np.ndarray, kind: str) -> Any:
    if kind == "numpy":
        return x
    peak = float(np.abs(x).max()) if x.size else 0.0
    if kind == "float16" and peak > 6e4:  # keep float16 inputs finite
        x = np.asarray(x * np.float32(6e4 / peak), dtype=np.float32).reshape(x.shape)
    t = torch.from_numpy(x)
    return t if kind == "float32" else t.to(getattr(torch, kind))


def must_refuse(config: dict[str, Any], x: Any) -> bool:
    """Inputs a codec must refuse: float16-based codecs and values past the float16 range."""
    values = (x.to(torch.float32).numpy() if isinstance(x, torch.Tensor) else x).astype(np.float32)
    peak = float(np.abs(values).max()) if values.size else 0.0
    if config["id"] in ("fp16", "zstd"):
        return peak > FP16_MAX
    if config["id"] == "topk":
        return peak > FP16_MAX and config.get("keep", 0.1) > 0  # the peak is always kept
    return False


#: Every codec's defaults and the settings of the contract tests that change the quantiser
#: (SLICER's settings get their own property test below).
PROPERTY_CONFIGS = [c for c in CONFIGS if c["id"] != "slicer" or len(c) == 1]


def rans_may_overflow(config: dict[str, Any], x: Any) -> bool:
    """The known rans bug (see test_contract.test_rans_decodes_float16_near_its_max_to_inf):
    the reconstruction can overshoot the input's range by up to a step, which overflows to inf
    when cast back to float16 or bfloat16 near their largest value."""
    if config["id"] != "rans" or not isinstance(x, torch.Tensor) or x.dtype == torch.float32:
        return False
    values = x.to(torch.float64).numpy()
    if values.size == 0:
        return False
    hi, lo = max(float(values.max()), 0.0), min(float(values.min()), 0.0)
    step = (hi - lo) / (2 ** config.get("bits", 8) - 1)
    return float(np.abs(values).max()) + step > float(torch.finfo(x.dtype).max)


def check_all_codecs(x: Any) -> None:
    for config in PROPERTY_CONFIGS:
        codec = get_codec(config)
        if must_refuse(config, x):
            with pytest.raises(CodecError, match="float16"):
                codec.encode(x)
            continue
        if rans_may_overflow(config, x):
            continue
        check_codec(codec, x, tolerance_for(codec, x))


@SETTINGS
@given(x=tensors(), kind=DTYPES)
def test_every_codec_round_trips(x: np.ndarray, kind: str) -> None:
    check_all_codecs(as_input(x, kind))


@SETTINGS
@given(x=raw_arrays)
def test_every_codec_round_trips_raw_floats(x: np.ndarray) -> None:
    check_all_codecs(x)


def test_blockwise8_below_the_smallest_normal_scale() -> None:
    """Found by hypothesis: absmax / 127 under float32's smallest normal floors the scale, so
    the error may reach half of that floor, not half of absmax / 127."""
    check_codec(get_codec({"id": "blockwise8"}), np.array(8.5470955e-37, dtype=np.float32))


@SETTINGS
@given(
    x=tensors(),
    kind=DTYPES,
    budget=st.sampled_from([1e-4, 1e-3, 1e-2, 0.1, 0.5]),
    extra=st.sampled_from(
        [
            {},
            {"granularity": "tensor"},
            {"blocks": 1},
            {"blocks": 3},
            {"keep": 0.2},
            {"keep_pos": 0.9, "keep_neg": 0.05},
            {"keep": 0.5, "keep_neg": 0.1},
        ]
    ),
)
def test_slicer_holds_its_budget_on_every_row(
    x: np.ndarray, kind: str, budget: float, extra: dict[str, Any]
) -> None:
    codec = get_codec({"id": "slicer", "max_nmse": budget, **extra})
    check_codec(codec, as_input(x, kind))  # tolerance: max_nmse on every row


@SETTINGS
@given(x=raw_arrays, budget=st.sampled_from([1e-3, 1e-2, 0.1]))
def test_slicer_budget_on_raw_floats(x: np.ndarray, budget: float) -> None:
    check_codec(get_codec({"id": "slicer", "max_nmse": budget}), x)


def test_property_configs_cover_every_codec() -> None:
    assert {c["id"] for c in PROPERTY_CONFIGS} == set(available())
