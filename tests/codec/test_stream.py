"""Per-sequence codec streams (``codec.stream``): set-up once, then one small frame per step.

Inputs are synthetic LLM-like residual streams: a [32, 576] prompt feature and [1, 576] steps,
standard normal with a few large outlier channels. No model is loaded.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import pytest
import torch

from codec import bitstream, open_decoder, open_encoder
from codec.base import Codec, prepare, row_nmse
from codec.errors import CodecError
from codec.registry import available, get_codec
from codec.slicer import Slicer
from codec.slicer_llm import SlicerLlm
from codec.stream import CHECK_BYTES, SETUP_MAGIC, StreamEncoder
from tests.codec.checker import (
    check_tolerance,
    describe,
    input_values,
    lossless_equal,
    same_bits,
    tolerance_for,
)

D = 576
CONFIGS: list[dict[str, Any]] = [{"id": cid} for cid in available()] + [
    {"id": "slicer", "max_nmse": 1e-3},
    {"id": "slicer", "granularity": "tensor"},
    {"id": "slicer", "keep": 0.3, "blocks": 2},  # fixed setting: the search is skipped anyway
    {"id": "slicer", "bits_per_element": 2.0},  # rate mode: generic stream
    {"id": "slicer-llm", "bits": 4.0},  # stateful frames, identity in the set-up
]


def llm(tokens: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A residual-stream-like feature: normal values, two channels 40x larger, one offset."""
    x = np.random.default_rng(seed).standard_normal((tokens, D)).astype(np.float32)
    x[:, [17, 300]] *= 40.0
    x[:, 5] += 200.0
    return torch.from_numpy(x).to(dtype)


PREFILL = llm(32, 0)
STEPS = [llm(1, seed) for seed in (1, 2, 3)]


def expected_body(codec: Codec, enc: StreamEncoder, step: torch.Tensor) -> bytes:
    """What a frame must carry: the container's body, or the fixed-setting SLICER body."""
    if enc.setting is not None:
        assert isinstance(codec, Slicer)
        prepared = prepare(step)
        return codec.encode_body_with(prepared.values, prepared.dtype, enc.setting)
    return bytes(bitstream.unpack(codec.encode(step))[1])


def with_crc(data: bytes) -> bytes:
    """Set-up bytes (CRC stripped) with a fresh CRC32, to reach the checks behind the CRC."""
    return data + struct.pack("<I", zlib.crc32(data))


# -- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=describe)
def test_round_trip_every_codec(config: dict[str, Any]) -> None:
    codec = get_codec(config)
    enc = open_encoder(codec, PREFILL)
    dec = open_decoder(codec, enc.setup)
    assert enc.step_shape == dec.step_shape == (1, D)
    assert dec.setting == enc.setting
    steps = STEPS[:1] if "bits_per_element" in config else STEPS  # rate mode searches per step
    for step in steps:
        frame = enc.encode(step)
        if isinstance(codec, SlicerLlm):  # stateful frames: not a container's body (its test)
            out = dec.decode(frame)
            check_tolerance(
                input_values(step)[0], out, tolerance_for(codec, step), describe(config)
            )
            continue
        body = expected_body(codec, enc, step)
        assert frame[:-CHECK_BYTES] == body
        out = dec.decode(frame)
        assert out.shape == (1, D) and out.dtype == torch.float32
        packed = bitstream.pack(codec.numeric_id, "float32", (1, D), body)
        assert same_bits(out, codec.decode(packed))  # the very values a container gives
        check_tolerance(input_values(step)[0], out, tolerance_for(codec, step), describe(config))
        overhead = len(bitstream.pack(codec.numeric_id, "float32", (1, D), b""))
        assert overhead == 11
        assert len(frame) <= len(codec.encode(step)) - overhead + CHECK_BYTES


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lossless_stream_is_bit_exact(dtype: torch.dtype) -> None:
    codec = get_codec("fp32")
    enc = open_encoder(codec, llm(4, 0, dtype))
    dec = open_decoder(codec, enc.setup)
    step = llm(1, 9, dtype)
    step[0, :4] = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.0])
    out = dec.decode(enc.encode(step))
    assert out.dtype == dtype and lossless_equal(out, step)


@pytest.mark.parametrize("cid", ["blockwise8", "slicer"])
def test_half_precision_numpy_and_nd_streams(cid: str) -> None:
    codec = get_codec(cid)
    cases: list[tuple[Any, Any]] = [
        (llm(8, 0, torch.bfloat16), llm(1, 1, torch.bfloat16)),
        (PREFILL.numpy().astype(np.float16), STEPS[0].numpy().astype(np.float16)),
        (PREFILL.reshape(32, 24, 24), STEPS[0].reshape(1, 24, 24)),
    ]
    for prefill, step in cases:
        enc = open_encoder(codec, prefill)
        dec = open_decoder(codec, enc.setup)
        assert dec.step_shape == (1, *prefill.shape[1:])
        out = dec.decode(enc.encode(step))
        body = expected_body(codec, enc, torch.as_tensor(step))
        assert same_bits(
            out, codec.decode(bitstream.pack(codec.numeric_id, enc.dtype, enc.step_shape, body))
        )
        assert out.dtype == torch.as_tensor(step).dtype


def test_streams_are_deterministic() -> None:
    for config in ({"id": "slicer"}, {"id": "rans"}, {"id": "topk"}):
        a, b = open_encoder(get_codec(config), PREFILL), open_encoder(get_codec(config), PREFILL)
        assert a.setup == b.setup
        assert [a.encode(s) for s in STEPS] == [b.encode(s) for s in STEPS]


def test_generic_setup_is_a_few_bytes() -> None:
    enc = open_encoder(get_codec("fp16"), PREFILL)
    # magic, version/dtype, codec, kind, ndim, 1, 576 (2 bytes), CRC32
    assert len(enc.setup) == 12 and enc.setup[0] == SETUP_MAGIC and enc.setting is None


# -- SLICER --------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_nmse", [1e-2, 1e-3])
def test_slicer_stream_fixes_the_prefill_setting(max_nmse: float) -> None:
    codec = get_codec({"id": "slicer", "max_nmse": max_nmse})
    assert isinstance(codec, Slicer)
    enc = open_encoder(codec, PREFILL)
    chosen = codec._choose_setting(PREFILL.numpy(), max_nmse, "float32")
    assert enc.setting == chosen
    assert open_decoder(codec, enc.setup).setting == chosen
    assert len(enc.setup) == 12 + 3 * 8 + 1  # generic header + three float64 + blocks varint
    for step in STEPS:
        frame = enc.encode(step)
        assert frame[:-CHECK_BYTES] == codec._encode_with(step.numpy(), max_nmse, "float32", chosen)
        out = open_decoder(codec, enc.setup).decode(frame)
        assert row_nmse(step.numpy(), out.numpy()).max() <= max_nmse


def test_slicer_steps_skip_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = get_codec("slicer")
    enc = open_encoder(codec, PREFILL)
    dec = open_decoder(codec, enc.setup)

    def no_search(*args: Any) -> None:
        raise AssertionError("the setting search ran on a step")

    monkeypatch.setattr(Slicer, "_choose_setting", no_search)
    for step in STEPS:
        out = dec.decode(enc.encode(step))
        assert row_nmse(step.numpy(), out.numpy()).max() <= 0.01
    with pytest.raises(AssertionError, match="search ran"):
        codec.encode(STEPS[0])  # the patch is live: a container encode does search


def test_slicer_rate_mode_streams_generically() -> None:
    codec = get_codec({"id": "slicer", "bits_per_element": 2.0})
    enc = open_encoder(codec, PREFILL)
    assert enc.setting is None and len(enc.setup) == 12
    with pytest.raises(CodecError, match="max_nmse"):
        open_decoder(get_codec("slicer"), enc.setup)  # config mismatch between the ends
    with pytest.raises(CodecError, match="max_nmse"):
        codec.choose_setting(PREFILL.numpy(), "float32")  # type: ignore[attr-defined]


# -- bad frames ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", ["fp16", "topk", "slicer", "rans"])
def test_corrupt_frames_raise(cid: str) -> None:
    codec = get_codec(cid)
    enc = open_encoder(codec, PREFILL)
    dec = open_decoder(codec, enc.setup)
    frame = enc.encode(STEPS[0])
    stride = max(1, len(frame) // 97)  # about 100 positions, always the first and last bytes
    for pos in [*range(0, len(frame), stride), len(frame) - 1]:
        bad = bytearray(frame)
        bad[pos] ^= 0x5A
        with pytest.raises(CodecError):
            dec.decode(bytes(bad))
    for cut in range(0, len(frame), stride):
        with pytest.raises(CodecError):
            dec.decode(frame[:cut])
    for bad_frame in (frame + b"\x00", b"\x00" + frame, frame * 2, b"", b"\x01"):
        with pytest.raises(CodecError):
            dec.decode(bad_frame)
    with pytest.raises(CodecError, match="bytes"):
        dec.decode("not bytes")  # type: ignore[arg-type]
    assert same_bits(dec.decode(frame), dec.decode(bytearray(frame)))


def test_frames_of_another_stream_fail_the_check() -> None:
    """The check is chained from the set-up's CRC: a frame only passes its own stream's check.
    Without it, some frames would decode silently as garbage (fp16 bytes read as bf16)."""
    encoders = {cid: open_encoder(get_codec(cid), PREFILL) for cid in available()}
    frames = {cid: enc.encode(STEPS[0]) for cid, enc in encoders.items()}
    for cid, enc in encoders.items():
        dec = open_decoder(get_codec(cid), enc.setup)
        for other, frame in frames.items():
            if other != cid:
                with pytest.raises(CodecError, match="check mismatch"):
                    dec.decode(frame)
    body = frames["fp16"][:-CHECK_BYTES]
    assert get_codec("bf16")._decode_body(memoryview(body), (1, D), "float32").shape == (D,)
    # same codec, another dtype or shape: another stream too
    half = open_encoder(get_codec("fp16"), PREFILL.half())
    with pytest.raises(CodecError, match="check mismatch"):
        open_decoder(get_codec("fp16"), half.setup).decode(frames["fp16"])


# -- bad steps and prefills ----------------------------------------------------------------------
def test_wrong_step_shape_or_dtype_names_the_expected() -> None:
    enc = open_encoder(get_codec("slicer"), PREFILL)
    for bad in (llm(2, 1), STEPS[0][0], STEPS[0][:, :100], STEPS[0].half(), llm(1, 1)[None]):
        with pytest.raises(CodecError, match=r"\(1, 576\).*open a new stream per sequence"):
            enc.encode(bad)
    with pytest.raises(CodecError, match="dtype"):
        enc.encode(STEPS[0].to(torch.float64))


@pytest.mark.parametrize("cid", ["slicer", "int8", "fp16"])
def test_lossy_streams_refuse_non_finite(cid: str) -> None:
    codec = get_codec(cid)
    enc = open_encoder(codec, PREFILL)
    step = STEPS[0].clone()
    step[0, 3] = float("nan")
    with pytest.raises(CodecError, match="non-finite"):
        enc.encode(step)
    prefill = PREFILL.clone()
    prefill[4, 4] = float("inf")
    with pytest.raises(CodecError, match="non-finite"):
        open_encoder(codec, prefill)


@pytest.mark.parametrize("bad", [torch.zeros(D), torch.zeros(0, D), torch.zeros(4, 0), 1.0])
def test_bad_prefills(bad: Any) -> None:
    with pytest.raises(CodecError):
        open_encoder(get_codec("slicer"), bad)
    with pytest.raises(CodecError, match="Codec"):
        open_encoder("slicer", PREFILL)  # type: ignore[arg-type]


# -- bad set-ups ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", ["fp16", "slicer"])
def test_corrupt_setups_raise(cid: str) -> None:
    codec = get_codec(cid)
    setup = open_encoder(codec, PREFILL).setup
    for pos in range(len(setup)):
        bad = bytearray(setup)
        bad[pos] ^= 0x01
        with pytest.raises(CodecError):
            open_decoder(codec, bytes(bad))
    for cut in range(len(setup)):
        with pytest.raises(CodecError):
            open_decoder(codec, setup[:cut])
    for bad_setup in (setup + b"\x00", b"\x00" + setup, None, "setup"):
        with pytest.raises(CodecError):
            open_decoder(codec, bad_setup)  # type: ignore[arg-type]


def test_setup_of_another_codec_names_both() -> None:
    setup = open_encoder(get_codec("fp16"), PREFILL).setup
    with pytest.raises(CodecError, match=r"codec number 2.*'bf16' \(number 3\)"):
        open_decoder(get_codec("bf16"), setup)
    with pytest.raises(CodecError, match="container"):
        open_decoder(get_codec("fp16"), get_codec("fp16").encode(PREFILL))


def test_setup_fields_are_checked_behind_the_crc() -> None:
    slicer = get_codec("slicer")
    good = open_encoder(slicer, PREFILL).setup[:-4]
    assert open_decoder(slicer, with_crc(good)).setting is not None
    cases = {
        "version 2": good[:1] + bytes([0x20]) + good[2:],
        "dtype code 7": good[:1] + bytes([0x17]) + good[2:],
        "kind 7": good[:3] + b"\x07" + good[4:],
        r"step shape \(2, 576\)": good[:5] + b"\x02" + good[6:],
        "keep_pos must be in": good[:8] + struct.pack("<d", 0.0) + good[16:],
        "keep_neg must be in": good[:16] + struct.pack("<d", float("nan")) + good[24:],
        "drop_share must be in": good[:24] + struct.pack("<d", 1.5) + good[32:],
        "blocks must be in": good[:-1] + b"\x00",
        "exceeds its limit 16": good[:-1] + b"\x11",
        "trailing": good + b"\x00",
    }
    for match, data in cases.items():
        with pytest.raises(CodecError, match=match):
            open_decoder(slicer, with_crc(data))
    with pytest.raises(CodecError, match="same codec config"):
        open_decoder(get_codec({"id": "slicer", "bits_per_element": 2.0}), with_crc(good))
