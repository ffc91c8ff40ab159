"""The codec contract, checked for every registered codec with the shared checker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from codec.errors import CodecError
from codec.registry import available, decode_any, get_codec
from tests.codec.checker import (
    ArrayLike,
    check_codec,
    check_config,
    describe,
    same_bits,
    tolerance_for,
)

# -- codec configs ---------------------------------------------------------------------------------
#: Settings tried on top of each codec's defaults (ids missing from the registry are skipped).
EXTRA_CONFIGS: dict[str, list[dict[str, Any]]] = {
    "blockwise8": [{"block_size": 64}],
    "zstd": [{"level": 19}],
    "topk": [{"keep": 0.5}, {"keep": 1.0}, {"keep": 0.0}],
    "rans": [{"bits": 2}, {"bits": 4}, {"bits": 12}, {"bits": 16}],
    "jpeg": [{"quality": 50}, {"format": "webp"}],
    "slicer-llm": [{"bits": 4.0}, {"predict": False, "first_row": False, "deadzone": 0.0}],
    "slicer": [
        {"max_nmse": 1e-3},
        {"max_nmse": 1e-1},
        {"granularity": "tensor"},
        {"keep": 0.3},
        {"keep_pos": 0.6, "keep_neg": 0.2},
        {"blocks": 1},
        {"blocks": 2},
        {"blocks": 4, "keep": 0.5},
        {"bits_per_element": 2.0},
    ],
}


def all_configs() -> list[dict[str, Any]]:
    configs = []
    for cid in available():
        configs.append({"id": cid})
        configs += [{"id": cid, **extra} for extra in EXTRA_CONFIGS.get(cid, [])]
    return configs


CONFIGS = all_configs()
CONFIG_IDS = [describe(c) for c in CONFIGS]
LOSSY_IDS = [cid for cid in available() if not get_codec(cid).lossless]


# -- inputs ----------------------------------------------------------------------------------------
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(*shape: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).standard_normal(shape).astype(np.float32)


def _huge_range() -> torch.Tensor:
    """Magnitudes spread log-uniformly over 1e-6 .. 1e4, random signs, in one tensor."""
    rng = _rng(1)
    mags = 10.0 ** rng.uniform(-6, 4, size=(8, 64))
    mags[0, 0], mags[0, 1] = 1e-6, 1e4
    return torch.from_numpy((mags * rng.choice([-1.0, 1.0], size=mags.shape)).astype(np.float32))


def _massive_activation() -> torch.Tensor:
    """An LLM-like [16, 576] hidden state with one massive activation of 2e4."""
    x = _normal(16, 576, seed=2)
    x[0, 17] = 2e4
    return torch.from_numpy(x)


def _sparse() -> np.ndarray:
    rng = _rng(3)
    x = rng.standard_normal((12, 100)).astype(np.float32)
    x[rng.random(x.shape) < 0.95] = 0.0
    return x


def _one_hot() -> torch.Tensor:
    x = torch.zeros(4, 16)
    x[2, 5] = -3.0
    return x


#: name -> (factory, typical): typical inputs are standard-normal-like and get the measured NMSE
#: bound on top of the analytic ones.
INPUTS: dict[str, tuple[Callable[[], ArrayLike], bool]] = {
    "llm_16x576": (lambda: torch.from_numpy(_normal(16, 576)), True),
    "vector_1000": (lambda: _normal(1000, seed=4), True),
    "feature_map_8x4x4": (lambda: torch.from_numpy(_normal(8, 4, 4, seed=5)), True),
    "4d_2x3x8x8": (lambda: torch.from_numpy(_normal(2, 3, 8, 8, seed=6)), True),
    "empty_0": (lambda: torch.zeros(0), False),
    "empty_3x0x5": (lambda: torch.zeros(3, 0, 5), False),
    "empty_0x5": (lambda: np.zeros((0, 5), np.float32), False),
    "scalar_0d": (lambda: torch.tensor(1.5), False),
    "scalar_0d_numpy": (lambda: np.array(-2.25, dtype=np.float32), False),
    "single_1": (lambda: torch.tensor([0.75]), False),
    "constant": (lambda: torch.full((4, 8), 3.0), False),
    "all_zero": (lambda: torch.zeros(4, 8), False),
    "one_hot": (_one_hot, False),
    "negative_only": (lambda: -np.abs(_normal(6, 50, seed=7)), False),
    "sparse_95pct_zero": (_sparse, False),
    "tiny_1e-6": (lambda: torch.from_numpy(_normal(4, 64, seed=8) * np.float32(1e-6)), False),
    "huge_range_1e-6_1e4": (_huge_range, False),
    "massive_activation_2e4": (_massive_activation, False),
    "float16": (lambda: torch.from_numpy(_normal(16, 64, seed=9)).half(), True),
    "bfloat16": (lambda: torch.from_numpy(_normal(16, 64, seed=10)).bfloat16(), True),
    "transposed": (lambda: torch.from_numpy(_normal(64, 16, seed=11)).T, True),
    "strided": (lambda: torch.from_numpy(_normal(32, 64, seed=12))[::2, 1::3], True),
    "numpy_float32": (lambda: _normal(16, 64, seed=13), True),
    "numpy_float16": (lambda: _normal(16, 64, seed=14).astype(np.float16), True),
    "numpy_strided": (lambda: _normal(16, 64, seed=15)[:, ::2], True),
}

#: A rate target re-encodes a dozen times: tried on a few small inputs only.
RATE_INPUTS = ("vector_1000", "feature_map_8x4x4", "scalar_0d", "all_zero", "bfloat16", "empty_0")


def _cases() -> list[Any]:
    cases = []
    for config in CONFIGS:
        for name in INPUTS:
            if "bits_per_element" in config and name not in RATE_INPUTS:
                continue
            cases.append(pytest.param(config, name, id=f"{describe(config)}-{name}"))
    return cases


# -- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("config", "name"), _cases())
def test_round_trip(config: dict[str, Any], name: str) -> None:
    factory, typical = INPUTS[name]
    codec = get_codec(config)
    x = factory()
    check_codec(codec, x, tolerance_for(codec, x, typical=typical))


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_config_round_trip(config: dict[str, Any]) -> None:
    codec = get_codec(config)
    check_config(codec)
    for key, value in config.items():
        assert codec.get_config()[key] == value, (key, codec.get_config())


@pytest.mark.parametrize("cid", available())
def test_bare_id_builds_defaults(cid: str) -> None:
    assert get_codec(cid) == get_codec({"id": cid})
    assert cid in repr(get_codec(cid))


def test_available_lists_the_core_codecs() -> None:
    ids = available()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for cid in ("fp32", "fp16", "bf16", "int8", "blockwise8", "zstd", "topk", "slicer"):
        assert cid in ids


def test_codecs_are_values() -> None:
    a = get_codec({"id": "slicer", "max_nmse": 0.01})
    b = get_codec({"id": "slicer", "max_nmse": 0.01})
    c = get_codec({"id": "slicer", "max_nmse": 0.02})
    assert a == b and hash(a) == hash(b) and a != c
    assert len({a, b, c, get_codec("fp16"), get_codec("fp16")}) == 3
    assert get_codec("fp16") != get_codec("bf16")


def test_input_is_not_modified() -> None:
    x = _normal(8, 32)
    copy = x.copy()
    for config in CONFIGS:
        get_codec(config).encode(x)
    assert np.array_equal(x, copy)


# -- config errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [{"id": "nope"}, "nope", {"id": "SLICER"}, {"id": "fp 32"}])
def test_unknown_id_names_the_id(config: Any) -> None:
    bad = config if isinstance(config, str) else config["id"]
    with pytest.raises(CodecError, match=repr(bad).replace("(", r"\(")):
        get_codec(config)


@pytest.mark.parametrize("config", [{}, {"max_nmse": 0.1}, 42, None, ["slicer"]])
def test_config_without_id(config: Any) -> None:
    with pytest.raises(CodecError, match="id"):
        get_codec(config)


@pytest.mark.parametrize("cid", available())
def test_unknown_parameter_names_it(cid: str) -> None:
    with pytest.raises(CodecError, match="bogus_param"):
        get_codec({"id": cid, "bogus_param": 1})


def test_from_config_checks_the_id() -> None:
    slicer = type(get_codec("slicer"))
    with pytest.raises(CodecError, match="fp16"):
        slicer.from_config({"id": "fp16"})


BAD_VALUES: list[tuple[str, str, Any]] = [
    ("slicer", "max_nmse", -1),
    ("slicer", "max_nmse", 0),
    ("slicer", "max_nmse", 2.0),
    ("slicer", "max_nmse", "0.01"),
    ("slicer", "max_nmse", float("nan")),
    ("slicer", "blocks", 0),
    ("slicer", "blocks", 17),
    ("slicer", "blocks", 2.5),
    ("slicer", "blocks", "many"),
    ("slicer", "granularity", "x"),
    ("slicer", "keep", 0),
    ("slicer", "keep", 1.5),
    ("slicer", "keep", "most"),
    ("slicer", "keep_pos", 1.5),
    ("slicer", "keep_neg", -0.5),
    ("slicer", "bits_per_element", 0),
    ("slicer", "bits_per_element", 64),
    ("jpeg", "quality", 0),
    ("jpeg", "quality", 101),
    ("jpeg", "quality", 90.5),
    ("jpeg", "format", "png"),
    ("rans", "bits", 1),
    ("rans", "bits", 17),
    ("rans", "bits", True),
    ("blockwise8", "block_size", 0),
    ("blockwise8", "block_size", 2**21),
    ("zstd", "level", 0),
    ("zstd", "level", 23),
    ("topk", "keep", -0.1),
    ("topk", "keep", 1.5),
    ("topk", "keep", None),
]


@pytest.mark.parametrize(("cid", "param", "value"), BAD_VALUES, ids=str)
def test_bad_value_names_parameter_and_value(cid: str, param: str, value: Any) -> None:
    if cid not in available():
        pytest.skip(f"codec {cid!r} is not registered")
    with pytest.raises(CodecError) as info:
        get_codec({"id": cid, param: value})
    message = str(info.value)
    assert param in message, message
    assert repr(value) in message or str(value) in message, message


def test_slicer_needs_a_budget_or_a_rate() -> None:
    with pytest.raises(CodecError, match="max_nmse"):
        get_codec({"id": "slicer", "max_nmse": None})


def test_slicer_keep_pos_alone_is_refused() -> None:
    with pytest.raises(CodecError, match="keep_neg"):
        get_codec({"id": "slicer", "keep_pos": 0.5})


# -- input errors ----------------------------------------------------------------------------------
NON_FINITE = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("cid", LOSSY_IDS)
@pytest.mark.parametrize("bad", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_lossy_codecs_refuse_non_finite(cid: str, bad: float) -> None:
    x = torch.randn(4, 8)
    x[1, 3] = bad
    with pytest.raises(CodecError, match=r"non-finite|NaN|inf"):
        get_codec(cid).encode(x)
    with pytest.raises(CodecError):
        get_codec(cid).stats(x.numpy())


# Codec.stats on NaN/inf input emits numpy RuntimeWarnings (its distortion is NaN): expected.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fp32_round_trips_non_finite(dtype: torch.dtype) -> None:
    x = torch.tensor([[1.0, float("nan"), float("inf")], [float("-inf"), -0.0, 0.0]], dtype=dtype)
    codec = get_codec("fp32")
    y = check_codec(codec, x)
    assert torch.isnan(y[0, 1]) and y[0, 2] == float("inf") and y[1, 0] == float("-inf")
    assert torch.signbit(y[1, 1]) and not torch.signbit(y[1, 2])


UNSUPPORTED: dict[str, Callable[[], Any]] = {
    "torch_int64": lambda: torch.arange(6).reshape(2, 3),
    "torch_float64": lambda: torch.randn(2, 3, dtype=torch.float64),
    "torch_bool": lambda: torch.ones(3, dtype=torch.bool),
    "torch_complex": lambda: torch.randn(3, dtype=torch.complex64),
    "numpy_float64": lambda: np.random.default_rng(0).standard_normal((2, 3)),
    "numpy_int32": lambda: np.arange(6, dtype=np.int32),
    "numpy_bfloat16_like_uint16": lambda: np.zeros(4, np.uint16),
    "list": lambda: [1.0, 2.0],
    "float": lambda: 1.0,
    "none": lambda: None,
}


@pytest.mark.parametrize("cid", available())
@pytest.mark.parametrize("kind", list(UNSUPPORTED))
def test_unsupported_inputs(cid: str, kind: str) -> None:
    with pytest.raises(CodecError):
        get_codec(cid).encode(UNSUPPORTED[kind]())


FP16_BASED = [cid for cid in ("fp16", "zstd", "topk") if cid in available()]


@pytest.mark.parametrize("cid", FP16_BASED)
def test_float16_range_is_enforced(cid: str) -> None:
    x = torch.randn(4, 8)
    x[2, 2] = 1e5
    with pytest.raises(CodecError, match="float16"):
        get_codec(cid).encode(x)
    x[2, 2] = -1e5
    with pytest.raises(CodecError, match="float16"):
        get_codec(cid).encode(x)
    x[2, 2] = 65504.0  # the largest float16 is fine
    check_codec(get_codec(cid), x)


def test_bf16_refuses_values_rounding_past_its_range() -> None:
    x = torch.tensor([3.4e38, 1.0])
    with pytest.raises(CodecError, match="bfloat16"):
        get_codec("bf16").encode(x)


# -- payload errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", available())
def test_decoding_with_the_wrong_codec(cid: str) -> None:
    payload = get_codec(cid).encode(torch.randn(4, 8))
    for other in available():
        if other == cid:
            continue
        with pytest.raises(CodecError, match="codec number"):
            get_codec(other).decode(payload)
    assert same_bits(decode_any(payload), get_codec(cid).decode(payload))


@pytest.mark.parametrize("cid", available())
@pytest.mark.parametrize(
    "payload", [b"", b"\x00" * 3, b"\xa7" * 16, "not bytes", None, 12], ids=repr
)
def test_garbage_payloads(cid: str, payload: Any) -> None:
    with pytest.raises(CodecError):
        get_codec(cid).decode(payload)
    with pytest.raises(CodecError):
        decode_any(payload)


@pytest.mark.parametrize("cid", available())
def test_truncated_and_extended_payloads(cid: str) -> None:
    codec = get_codec(cid)
    payload = codec.encode(torch.randn(3, 7))
    for cut in range(len(payload)):
        with pytest.raises(CodecError):
            codec.decode(payload[:cut])
    with pytest.raises(CodecError):
        codec.decode(payload + b"\x00")
    with pytest.raises(CodecError):
        codec.decode(b"\x00" + payload)


# -- regressions --------------------------------------------------------------------------------
# rans' rounded zero point lets a reconstruction overshoot the input's range by one step; near
# the float16/bfloat16 maximum the cast to the caller's dtype used to turn it into inf.
@pytest.mark.parametrize(
    ("bits", "values", "dtype"),
    [
        (8, [65504.0, -30000.0], torch.float16),
        (2, [60000.0, -60000.0], torch.float16),
        (2, [3.0e38, -3.3e38], torch.bfloat16),
    ],
)
def test_rans_decodes_float16_near_its_max_to_inf(
    bits: int, values: list[float], dtype: torch.dtype
) -> None:
    if "rans" not in available():
        pytest.skip("rans is not registered")
    x = torch.tensor(values, dtype=dtype)
    codec = get_codec({"id": "rans", "bits": bits})
    decoded = codec.decode(codec.encode(x))
    assert torch.isfinite(decoded).all(), decoded
    check_codec(codec, x)
