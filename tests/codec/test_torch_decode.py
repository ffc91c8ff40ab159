"""``decode_torch`` gives on the CPU exactly what ``decode`` gives (bit for bit), for every
codec with a device path and for one without; on CUDA (skipped without one) it agrees to 1 ulp.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from codec import CodecError, decode_any, get_codec
from codec.torch_decode import decode_torch

CONFIGS: list[dict[str, Any]] = [
    {"id": "fp16"},
    {"id": "int8"},
    {"id": "blockwise8", "block_size": 64},
    {"id": "slicer", "max_nmse": 0.01},
    {"id": "slicer", "max_nmse": 1e-3, "keep": 0.3, "blocks": 4},
    {"id": "slicer", "max_nmse": 0.05, "granularity": "tensor"},
    {"id": "slicer", "bits_per_element": 2.0},
    {"id": "topk", "keep": 0.2},  # no device path: decoded on the CPU and moved
]


def _inputs() -> list[torch.Tensor]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((24, 96)).astype(np.float32)
    x[3, 5] = 40.0  # a massive activation
    x[rng.random(x.shape) < 0.2] = 0.0
    spiky = rng.standard_normal((4, 8, 8)).astype(np.float32) * 1e3
    return [
        torch.from_numpy(x),
        torch.from_numpy(x).to(torch.float16),
        torch.from_numpy(x).to(torch.bfloat16),
        torch.from_numpy(spiky),
        torch.from_numpy(rng.standard_normal(577).astype(np.float32)),
        torch.zeros(3, 5),
        torch.zeros(0, 4),
    ]


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(-1), b.view(-1))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: str(sorted(c.items())))
def test_cpu_decode_torch_is_bit_identical_to_decode(config: dict[str, Any]) -> None:
    codec = get_codec(config)
    for x in _inputs():
        payload = codec.encode(x)
        expected = decode_any(payload)
        got = decode_torch(payload, device="cpu")
        assert got.device.type == "cpu"
        assert _same_bits(got.float().view(torch.int32), expected.float().view(torch.int32))
        assert got.dtype == expected.dtype and got.shape == expected.shape


def test_verbatim_rows_come_back_exactly() -> None:
    x = np.zeros((3, 64), np.float32)
    x[1] = np.geomspace(1e-3, 6e4, 64).astype(np.float32)  # unquantisable: stored verbatim
    x[2] = 1.0
    payload = get_codec({"id": "slicer", "max_nmse": 1e-8}).encode(x)
    assert _same_bits(decode_torch(payload), decode_any(payload))


def test_defects_raise_codec_error() -> None:
    payload = bytearray(get_codec({"id": "slicer", "max_nmse": 0.01}).encode(torch.ones(4, 8)))
    payload[6] ^= 0xFF
    with pytest.raises(CodecError):
        decode_torch(bytes(payload))
    with pytest.raises(CodecError, match="not a torch device"):
        decode_torch(get_codec("fp16").encode(torch.ones(2)), device="no-such-device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: str(sorted(c.items())))
def test_cuda_decode_torch_agrees_with_decode(config: dict[str, Any]) -> None:
    codec = get_codec(config)
    for x in _inputs():
        payload = codec.encode(x)
        expected = decode_any(payload).float()
        got = decode_torch(payload, device="cuda")
        assert got.device.type == "cuda" and got.dtype == x.dtype
        ulp = torch.finfo(x.dtype).eps  # one float32 ulp may round to one ulp of x's dtype
        assert torch.allclose(got.float().cpu(), expected, rtol=ulp, atol=0.0)
