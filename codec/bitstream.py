"""The container every payload travels in, and bounded readers and writers for its sections.

Layout (little-endian)::

    magic      1 byte   0xA7
    version    1 byte   high nibble: format version, low nibble: dtype code
    codec      1 byte   numeric codec id (see ``codec.registry``)
    ndim       varint   then one varint per dimension
    body       codec-specific sections
    crc32      4 bytes  of everything before it

A 1-D tensor of 576 values costs 10 bytes of container. ``unpack`` checks the CRC, the magic,
the version and the declared size before any codec sees the body, and every read through
``Reader`` is bounds-checked, so hostile bytes end in ``CodecError``, never in a crash.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from codec.errors import CodecError

MAGIC = 0xA7
FORMAT_VERSION = 1
MAX_NDIM = 32
#: Decoders refuse payloads that declare more elements than this (128 MiB of float32 output;
#: decoding a hostile payload of this size can still cost seconds and a few GiB);
#: raise it (``codec.bitstream.MAX_ELEMENTS = ...``) to decode larger tensors.
MAX_ELEMENTS = 2**25

DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Header:
    """What the container says about the tensor inside it."""

    codec_num: int
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def write_varint(out: bytearray, value: int) -> None:
    """Append an unsigned LEB128 varint."""
    if value < 0:
        raise CodecError(f"varint must be >= 0, got {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


class Reader:
    """A cursor over bytes whose every read is bounds-checked."""

    def __init__(self, data: bytes | memoryview, what: str = "payload") -> None:
        self._data = memoryview(data)
        self.pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def take(self, n: int) -> memoryview:
        if n < 0 or n > self.remaining:
            raise CodecError(
                f"{self.what} is truncated: needs {n} more bytes at offset {self.pos}, "
                f"has {self.remaining}"
            )
        view = self._data[self.pos : self.pos + n]
        self.pos += n
        return view

    def u8(self) -> int:
        return int(self.take(1)[0])

    def varint(self, limit: int = 2**63) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if value > limit:
                    raise CodecError(f"{self.what}: field value {value} exceeds its limit {limit}")
                return value
        raise CodecError(f"{self.what}: varint longer than 10 bytes at offset {self.pos}")

    def f32(self) -> float:
        return float(struct.unpack("<f", self.take(4))[0])

    def f16(self) -> float:
        return float(np.frombuffer(self.take(2), dtype="<f2")[0])

    def array(self, dtype: str, count: int) -> np.ndarray:
        """Read ``count`` items of ``dtype``; the count is checked against the bytes present."""
        itemsize = np.dtype(dtype).itemsize
        if count < 0 or count * itemsize > self.remaining:
            raise CodecError(
                f"{self.what} is truncated: needs {count} x {dtype} at offset {self.pos}, "
                f"has {self.remaining} bytes"
            )
        return np.frombuffer(self.take(count * itemsize), dtype=dtype).copy()

    def section(self) -> bytes:
        """A length-prefixed byte section."""
        return bytes(self.take(self.varint(limit=self.remaining)))

    def done(self) -> None:
        if self.remaining:
            raise CodecError(f"{self.what} has {self.remaining} unexpected trailing bytes")


def write_section(out: bytearray, data: bytes) -> None:
    write_varint(out, len(data))
    out += data


def pack(codec_num: int, dtype: str, shape: tuple[int, ...], body: bytes) -> bytes:
    """Wrap a codec body in the container."""
    out = bytearray((MAGIC, (FORMAT_VERSION << 4) | DTYPES.index(dtype), codec_num))
    write_varint(out, len(shape))
    for dim in shape:
        write_varint(out, dim)
    out += body
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def unpack(data: bytes | bytearray | memoryview) -> tuple[Header, memoryview]:
    """Check and open a container; returns its header and the codec body."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"payload must be bytes, got {type(data).__name__}")
    view = memoryview(data).cast("B")
    if len(view) < 8:
        raise CodecError(f"payload is truncated: {len(view)} bytes, a container has at least 8")
    if view[0] != MAGIC:
        raise CodecError(
            f"not a slicer-fleet payload: first byte is {view[0]:#04x}, not {MAGIC:#04x}"
        )
    (crc,) = struct.unpack("<I", view[-4:])
    if zlib.crc32(view[:-4]) != crc:
        raise CodecError("payload is corrupted or truncated: CRC32 mismatch")
    version, dtype_code = view[1] >> 4, view[1] & 0x0F
    if version != FORMAT_VERSION:
        raise CodecError(
            f"payload format version {version} is not supported (this build reads {FORMAT_VERSION})"
        )
    if dtype_code >= len(DTYPES):
        raise CodecError(f"payload declares unknown dtype code {dtype_code}")
    reader = Reader(view[:-4], "payload header")
    reader.take(3)
    ndim = reader.varint(limit=MAX_NDIM)
    shape = tuple(reader.varint(limit=MAX_ELEMENTS) for _ in range(ndim))
    header = Header(int(view[2]), DTYPES[dtype_code], shape)
    if header.numel > MAX_ELEMENTS:
        raise CodecError(
            f"payload declares {header.numel} elements, more than the decoder limit {MAX_ELEMENTS}"
        )
    return header, view[reader.pos : len(view) - 4]
