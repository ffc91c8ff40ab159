"""Baseline codecs: plain casts, 8-bit quantisers, zstd and magnitude top-K.

``fp32`` is lossless (it also carries NaN and inf); every other codec here refuses non-finite
input, so its decoder refuses a payload that decodes to NaN or inf (``Codec.decode``), and the
8-bit decoders check their scales. ``fp16`` and ``zstd`` refuse values beyond
the float16 range rather than turning them into inf. ``int8`` is per-tensor asymmetric uniform,
``blockwise8`` is absmax-scaled int8 per block of ``block_size`` values (the 8-bit blockwise
compression used between servers in distributed LLM inference), ``topk`` keeps the
``keep`` fraction of largest magnitudes as float16 with rANS-coded positions.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import zstandard

from codec import entropy
from codec.base import Codec, check_number
from codec.bitstream import Reader, write_varint
from codec.errors import CodecError
from codec.registry import register

FP16_MAX = 65504.0


def _f16(values: np.ndarray, codec_id: str) -> np.ndarray:
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak > FP16_MAX:
        raise CodecError(
            f"{codec_id}: value {peak:.4g} exceeds the float16 range (+-{FP16_MAX}); "
            "use 'bf16' or 'fp32'"
        )
    return values.astype("<f2")


def _expect(body: memoryview, nbytes: int, codec_id: str) -> None:
    if len(body) != nbytes:
        raise CodecError(f"{codec_id}: body is {len(body)} bytes, the shape needs {nbytes}")


class _NoParams(Codec):
    def __init__(self) -> None:
        pass

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id}


@register
class Fp32(_NoParams):
    """Lossless: float32 bytes (float16/bfloat16 inputs are widened exactly)."""

    codec_id = "fp32"
    numeric_id = 1
    lossless = True

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        return values.astype("<f4").tobytes()

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        n = math.prod(shape)
        _expect(body, 4 * n, self.codec_id)
        return np.frombuffer(body, dtype="<f4").astype(np.float32)


@register
class Fp16(_NoParams):
    codec_id = "fp16"
    numeric_id = 2

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        return _f16(values, self.codec_id).tobytes()

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        _expect(body, 2 * math.prod(shape), self.codec_id)
        return np.frombuffer(body, dtype="<f2").astype(np.float32)


@register
class Bf16(_NoParams):
    """bfloat16 with round-to-nearest-even."""

    codec_id = "bf16"
    numeric_id = 3

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        bits = values.astype("<f4").view("<u4").astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        if values.size and (rounded & 0x7F80 == 0x7F80).any():
            raise CodecError("bf16: a value rounds beyond the bfloat16 range; use 'fp32'")
        return rounded.astype("<u2").tobytes()

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        _expect(body, 2 * math.prod(shape), self.codec_id)
        high = np.frombuffer(body, dtype="<u2").astype(np.uint32) << 16
        return high.view(np.float32)


@register
class Int8(_NoParams):
    """Per-tensor asymmetric uniform 8-bit: 256 levels from min to max."""

    codec_id = "int8"
    numeric_id = 4

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        flat = values.ravel().astype(np.float64)
        lo = float(flat.min()) if flat.size else 0.0
        hi = float(flat.max()) if flat.size else 0.0
        scale = (hi - lo) / 255.0
        if not math.isfinite(scale):
            raise CodecError("int8: the value range overflows float64")
        q = np.zeros(flat.size, np.uint8) if scale == 0 else np.rint((flat - lo) / scale)
        return struct.pack("<dd", lo, scale) + q.astype(np.uint8).tobytes()

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        _expect(body, 16 + math.prod(shape), self.codec_id)
        lo, scale = struct.unpack("<dd", body[:16])
        if not (math.isfinite(lo) and math.isfinite(scale) and scale >= 0):
            raise CodecError(f"int8: corrupt header (lo {lo!r}, scale {scale!r})")
        q = np.frombuffer(body[16:], dtype=np.uint8)
        return (lo + q * scale).astype(np.float32)


@register
class Blockwise8(Codec):
    """int8 codes with one float32 absmax scale per block of ``block_size`` values."""

    codec_id = "blockwise8"
    numeric_id = 5

    def __init__(self, block_size: int = 4096) -> None:
        self.block_size = int(
            check_number(self.codec_id, "block_size", block_size, 16, 2**20, integer=True)
        )

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "block_size": self.block_size}

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        flat = values.ravel()
        n_blocks = -(-flat.size // self.block_size)
        padded = np.zeros(n_blocks * self.block_size, np.float32)
        padded[: flat.size] = flat
        blocks = padded.reshape(n_blocks, self.block_size)
        absmax = np.abs(blocks).max(axis=1) if n_blocks else np.zeros(0, np.float32)
        # a block of subnormals would underflow absmax / 127 to 0: floor the scale at the
        # smallest normal float32 (its values then round to a few steps of that)
        tiny = np.finfo(np.float32).tiny
        scale = np.where(absmax > 0, np.maximum(absmax / 127.0, tiny), 1.0).astype(np.float32)
        q = np.clip(np.rint(blocks / scale[:, None]), -127, 127).astype(np.int8)
        out = bytearray()
        write_varint(out, self.block_size)
        out += scale.astype("<f4").tobytes()
        out += q.ravel()[: flat.size].tobytes()
        return bytes(out)

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        reader = Reader(body, self.codec_id)
        block_size = reader.varint(limit=2**20)
        n = math.prod(shape)
        if block_size < 1:
            raise CodecError("blockwise8: block size 0 in payload")
        n_blocks = -(-n // block_size)
        scale = reader.array("<f4", n_blocks).astype(np.float32)
        if scale.size and not (np.isfinite(scale).all() and (scale > 0).all()):
            raise CodecError("blockwise8: corrupt block scales (not finite and > 0)")
        q = reader.array("i1", n).astype(np.float32)
        reader.done()
        return q * np.repeat(scale, block_size)[:n]


@register
class Zstd(Codec):
    """zstd on the float16 bytes."""

    codec_id = "zstd"
    numeric_id = 6

    def __init__(self, level: int = 3) -> None:
        self.level = int(check_number(self.codec_id, "level", level, 1, 22, integer=True))

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "level": self.level}

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        raw = _f16(values, self.codec_id).tobytes()
        return zstandard.ZstdCompressor(level=self.level).compress(raw)

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        n = math.prod(shape)
        try:
            if zstandard.frame_content_size(bytes(body)) not in (-1, 2 * n):  # no zstd bombs
                raise CodecError(f"zstd: frame size is not the {2 * n} bytes the shape needs")
            raw = zstandard.ZstdDecompressor().decompress(bytes(body), max_output_size=2 * n)
        except zstandard.ZstdError as exc:
            raise CodecError(f"zstd: corrupt body ({exc})") from exc
        _expect(memoryview(raw), 2 * n, self.codec_id)
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)


@register
class TopK(Codec):
    """Keep the ``keep`` fraction of largest magnitudes (float16 values, rANS-coded mask)."""

    codec_id = "topk"
    numeric_id = 7

    def __init__(self, keep: float = 0.1) -> None:
        self.keep = float(check_number(self.codec_id, "keep", keep, 0.0, 1.0))

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "keep": self.keep}

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        flat = values.ravel()
        k = min(flat.size, math.ceil(self.keep * flat.size))
        mask = np.zeros(flat.size, dtype=bool)
        if 0 < k < flat.size:
            mask[np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :]] = True
        elif k == flat.size:
            mask[:] = True
        out = bytearray()
        write_varint(out, k)
        coder = entropy.StreamEncoder()
        if 0 < k < flat.size:
            coder.add(mask.astype(np.int64), entropy.bernoulli(k / flat.size))
        rans = coder.finish()
        write_varint(out, len(rans))
        out += rans
        out += _f16(flat[mask], self.codec_id).tobytes()
        return bytes(out)

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        n = math.prod(shape)
        reader = Reader(body, self.codec_id)
        k = reader.varint(limit=n)
        rans = reader.take(reader.varint(limit=reader.remaining))
        if 0 < k < n:
            decoder = entropy.StreamDecoder(rans)
            mask = decoder.take(entropy.bernoulli(k / n), n).astype(bool)
            decoder.finish()
        else:
            mask = np.full(n, k == n)
        if int(mask.sum()) != k:
            raise CodecError(f"topk: mask holds {int(mask.sum())} entries, header says {k}")
        out = np.zeros(n, np.float32)
        out[mask] = reader.array("<f2", k)
        reader.done()
        return out
