"""Conflicting codec parameters and payloads altered with their CRC recomputed (issue 17).

A CRC catches accidents, not edits: a payload whose bytes were changed and whose CRC was then
recomputed passes the container's checks, so the decoders themselves must refuse what their
encoders never write (NaN, inf, impossible scales) with ``CodecError``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

import codec
from codec import CodecError

LOSSY = [
    "fp16",
    "bf16",
    "int8",
    "blockwise8",
    "zstd",
    "topk",
    "rans",
    "jpeg",
    "slicer",
    "slicer-llm",
]


def _recrc(payload: bytes | bytearray) -> bytes:
    body = bytes(payload[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def _x() -> np.ndarray:
    return np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(8, 8)


def test_slicer_refuses_a_budget_and_a_rate_together() -> None:
    with pytest.raises(CodecError, match=r"max_nmse=0\.01 conflicts with bits_per_element=2"):
        codec.get_codec({"id": "slicer", "max_nmse": 0.01, "bits_per_element": 2})


def test_configs_that_say_one_thing_still_build() -> None:
    rate = codec.get_codec({"id": "slicer", "bits_per_element": 2})
    assert codec.get_codec(rate.get_config()) == rate  # its config says max_nmse: None
    assert codec.get_codec({"id": "slicer", "max_nmse": 0.01}).get_config()["max_nmse"] == 0.01
    assert codec.get_codec({"id": "topk", "keep": 1}).get_config()["keep"] == 1.0


@pytest.mark.parametrize("codec_id", LOSSY)
def test_config_round_trip_passes_the_conflict_check(codec_id: str) -> None:
    built = codec.get_codec(codec_id)
    assert codec.get_codec(built.get_config()) == built


@pytest.mark.parametrize("codec_id", LOSSY)
def test_payloads_altered_with_a_new_crc_never_decode_to_nan_or_inf(codec_id: str) -> None:
    chosen = codec.get_codec(codec_id)
    payload = chosen.encode(_x())
    for i in range(5, len(payload) - 4):
        for byte in (0x7C, 0x7F, 0xFF):
            altered = bytearray(payload)
            altered[i] = byte
            try:
                values = chosen.decode(_recrc(altered)).float().numpy()
            except CodecError:
                continue
            assert np.isfinite(values).all(), (codec_id, i, byte)


@pytest.mark.parametrize(("codec_id", "bad"), [("fp16", 0x7C00), ("fp16", 0x7E00)])
def test_an_inf_or_nan_element_is_named_as_corruption(codec_id: str, bad: int) -> None:
    payload = bytearray(codec.get_codec(codec_id).encode(_x()))
    payload[-6:-4] = struct.pack("<H", bad)  # the last float16 element
    with pytest.raises(CodecError, match="NaN/inf values, which its encoder never writes"):
        codec.get_codec(codec_id).decode(_recrc(payload))


def test_int8_refuses_a_non_finite_scale() -> None:
    chosen = codec.get_codec("int8")
    payload = bytearray(chosen.encode(_x()))
    start = payload.index(struct.pack("<d", float(_x().min())))
    payload[start + 8 : start + 16] = struct.pack("<d", float("inf"))
    with pytest.raises(CodecError, match="int8: corrupt header"):
        chosen.decode(_recrc(payload))


@pytest.mark.parametrize("bad", [0x7C00, 0x7E00])
def test_decode_torch_names_an_altered_nan_or_inf_as_corruption(bad: int) -> None:
    payload = bytearray(codec.get_codec("fp16").encode(_x()))
    payload[-6:-4] = struct.pack("<H", bad)
    with pytest.raises(CodecError, match="NaN/inf values, which its encoder never writes"):
        codec.decode_torch(_recrc(payload), device="cpu")
