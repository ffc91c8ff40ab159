"""Per-sequence codec streams: calibrate once on a prompt, then send one small frame per step.

In autoregressive split serving the device sends the prompt's intermediate feature ``[T, ...]``
once in a normal container (``codec.encode``) and then one token's feature ``[1, ...]`` per
generated token. ``open_encoder(codec, prefill)`` calibrates on the prompt and yields
``setup`` bytes, sent once before the first frame; ``open_decoder(codec, setup)`` is built from
those bytes and the codec alone (both ends know its config, as for a container). Each step's
frame carries the codec's body and a 2-byte check, nothing else: no magic, dtype, codec id or
shape per token. The same codec and inputs always give the same bytes.

What is calibrated:

* **SLICER with ``max_nmse``**: the setting (``keep_pos``, ``keep_neg``, ``blocks``,
  ``drop_share``) is chosen once on the prompt's rows by the codec's own auto search
  (``Slicer.choose_setting``) and every step is encoded with it (``Slicer.encode_body_with``):
  steps skip the search, and every step row still meets ``max_nmse`` (verified on the decoded
  values, as in every encode).
* **slicer-llm**: its profile name, digest, step and flags (``Identity``), so a decoder with
  another profile or setting refuses the stream; frames are coded by a per-stream
  ``FrameCoder`` on both ends, which predicts each row from the previous decoded one.
* **SLICER with ``bits_per_element``** and **every other codec**: nothing. Frames hold exactly the
  body a container would hold. A rate target cannot be fixed once: it is met by searching the
  distortion budget per payload, so a SLICER in rate mode runs its own search on each step.

Set-up bytes (little-endian)::

    magic      1 byte   0xA8 (a container starts with 0xA7)
    version    1 byte   high nibble: stream format version (1), low nibble: dtype code
                        (index into ``codec.bitstream.DTYPES``)
    codec      1 byte   numeric codec id; the decoder's ``codec.numeric_id`` must equal it
    kind       1 byte   0: nothing calibrated, 1: a fixed SLICER setting follows, 2: a slicer-llm
                        identity follows
    ndim       varint   then one varint per dimension of the step shape ``(1, *prefill[1:])``
    setting    kind 1 only: keep_pos, keep_neg, drop_share as float64 (exact), blocks varint
    identity   kind 2 only: the slicer-llm identity bytes (``codec.slicer_llm.Identity``)
    crc32      4 bytes  of everything before it

A step frame::

    body       the codec's body for the step, the bytes a container would hold between its
                        header and CRC (``codec._encode_body``; kind 1: ``encode_body_with``)
    check      2 bytes  low 16 bits of ``zlib.crc32(body, key)``, little-endian, where ``key``
                        is the set-up's CRC32 (its last 4 bytes)

The check is chained from the set-up's CRC, so it covers the stream's identity as well as the
body: a frame fed to a stream of another codec, dtype, shape or SLICER setting fails the check
(up to a 1 in 65536 chance, where the body decoder still rejects most frames). A frame that is
corrupted, truncated, extended or empty fails the check or the body decoder: ``CodecError``.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from codec import _model_bank, bitstream
from codec._slicer_plan import Setting
from codec.base import Codec, check_finite, prepare, to_tensor
from codec.errors import CodecError
from codec.slicer import Slicer
from codec.slicer_llm import FrameCoder, Identity, SlicerLlm

SETUP_MAGIC = 0xA8
STREAM_VERSION = 1
KIND_GENERIC, KIND_SLICER, KIND_LLM = 0, 1, 2
CHECK_BYTES = 2
_CRC_BYTES = 4
_MAX_BLOCKS = 16


@dataclass(frozen=True)
class _Header:
    """What the set-up says: the codec number, dtype and step shape, and a SLICER setting."""

    codec_num: int
    dtype: str
    step_shape: tuple[int, ...]
    setting: Setting | None
    identity: bytes | None = None  # kind 2: a slicer-llm identity


def _frames(codec: Codec) -> FrameCoder | None:
    """A slicer-llm per-stream frame coder, or None for codecs whose frames are stateless."""
    return codec.frames() if isinstance(codec, SlicerLlm) else None


def _identity(codec: Codec) -> bytes | None:
    return codec.identity.to_bytes() if isinstance(codec, SlicerLlm) else None


def _calibrates(codec: Codec) -> bool:
    """Whether this codec's streams fix calibrated state in the set-up."""
    return isinstance(codec, Slicer) and codec.max_nmse is not None


def _key(setup: bytes | bytearray | memoryview) -> int:
    """A stream's identity: the set-up's own CRC32 (the one stored in its last 4 bytes; the CRC
    of the whole set-up, CRC included, is the same constant for every set-up)."""
    return int.from_bytes(bytes(setup[-_CRC_BYTES:]), "little")


def _check(body: bytes | memoryview, key: int) -> int:
    return zlib.crc32(body, key) & 0xFFFF


class StreamEncoder:
    """The device end of one sequence's stream; ``open_encoder`` builds it."""

    def __init__(
        self, codec: Codec, dtype: str, step_shape: tuple[int, ...], setting: Setting | None
    ) -> None:
        self.codec = codec
        self.dtype = dtype
        self.step_shape = step_shape
        self.setting = setting
        header = _Header(codec.numeric_id, dtype, step_shape, setting, _identity(codec))
        self.setup: bytes = _write_setup(header)
        self._key = _key(self.setup)
        self._frames = _frames(codec)

    def encode(self, x: Any) -> bytes:
        """One step's tensor or array (shape ``step_shape``, the prefill's dtype) -> a frame."""
        prepared = prepare(x)
        values = prepared.values
        if values.shape != self.step_shape or prepared.dtype != self.dtype:
            raise CodecError(
                f"{self.codec.codec_id} stream: a step must have shape {self.step_shape} and "
                f"dtype {self.dtype} (fixed by the prefill), got shape {values.shape} and dtype "
                f"{prepared.dtype}; send one token's feature per step, and open a new stream "
                "per sequence"
            )
        if not self.codec.lossless:
            check_finite(values, self.codec.codec_id)
        if self._frames is not None:
            body = self._frames.encode(values, self.dtype)
        elif self.setting is not None:
            assert isinstance(self.codec, Slicer)
            body = self.codec.encode_body_with(values, self.dtype, self.setting)
        else:
            body = self.codec._encode_body(values, self.dtype)
        return body + _check(body, self._key).to_bytes(CHECK_BYTES, "little")


class StreamDecoder:
    """The server end of one sequence's stream; ``open_decoder`` builds it from the set-up."""

    def __init__(self, codec: Codec, header: _Header, key: int) -> None:
        self.codec = codec
        self.dtype = header.dtype
        self.step_shape = header.step_shape
        self.setting = header.setting
        self._numel = math.prod(header.step_shape)
        self._key = key
        self._frames = _frames(codec)

    def decode(self, frame: bytes | bytearray | memoryview) -> torch.Tensor:
        """A frame -> the step's tensor (``step_shape``, the stream's dtype)."""
        cid = self.codec.codec_id
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise CodecError(f"{cid} stream: a frame must be bytes, got {type(frame).__name__}")
        view = memoryview(frame).cast("B")
        if len(view) < CHECK_BYTES:
            raise CodecError(
                f"{cid} stream: frame is truncated: {len(view)} bytes, a frame has at least "
                f"{CHECK_BYTES}"
            )
        body = view[:-CHECK_BYTES]
        if int.from_bytes(view[-CHECK_BYTES:], "little") != _check(body, self._key):
            raise CodecError(
                f"{cid} stream: frame check mismatch: the frame is corrupted or truncated, or "
                "belongs to another stream (another codec, dtype, shape or set-up); decode each "
                "frame with the decoder opened on its own stream's set-up"
            )
        try:
            if self._frames is not None:
                values = self._frames.decode(body, self.step_shape)
            else:
                values = self.codec._decode_body(body, self.step_shape, self.dtype)
        except CodecError:
            raise
        except Exception as exc:  # as Codec.decode: a defect the checks missed is a CodecError
            raise CodecError(f"{cid}: malformed payload body ({exc})") from exc
        if values.size != self._numel:
            raise CodecError(
                f"{cid}: body decodes to {values.size} values, the stream's step shape "
                f"{self.step_shape} needs {self._numel}"
            )
        return to_tensor(values, self.dtype, self.step_shape, clamp=not self.codec.lossless)


def open_encoder(codec: Codec, prefill: Any) -> StreamEncoder:
    """Open a stream for one sequence: ``prefill`` is the prompt's feature (tensor or array,
    ``ndim >= 2``, first axis = tokens, not empty); calibrates on it and fixes dtype and the
    step shape ``(1, *prefill.shape[1:])``."""
    if not isinstance(codec, Codec):
        raise CodecError(f"open_encoder needs a Codec, got {type(codec).__name__}")
    prepared = prepare(prefill)
    values = prepared.values
    if values.ndim < 2 or values.size == 0:
        raise CodecError(
            f"{codec.codec_id} stream: the prefill must be a non-empty tensor of ndim >= 2 "
            f"whose first axis is tokens (e.g. [T, d]), got shape {values.shape}; add a token "
            "axis with x[None] for a single token"
        )
    if not codec.lossless:
        check_finite(values, codec.codec_id)
    setting = None
    if _calibrates(codec):
        assert isinstance(codec, Slicer)
        setting = codec.choose_setting(values, prepared.dtype)
    if isinstance(codec, Slicer):
        _model_bank.warm()
    return StreamEncoder(codec, prepared.dtype, (1, *values.shape[1:]), setting)


def open_decoder(codec: Codec, setup: bytes) -> StreamDecoder:
    """Open the server end of a stream from its set-up bytes and the codec (same config as the
    encoder's); any defect in the set-up raises ``CodecError``."""
    if not isinstance(codec, Codec):
        raise CodecError(f"open_decoder needs a Codec, got {type(codec).__name__}")
    header = _read_setup(setup)
    if header.codec_num != codec.numeric_id:
        raise CodecError(
            f"stream set-up was made by codec number {header.codec_num}, not by "
            f"{codec.codec_id!r} (number {codec.numeric_id}); open the decoder with the "
            "sequence's own codec"
        )
    if (header.setting is not None) != _calibrates(codec):
        made = "a fixed SLICER setting" if header.setting is not None else "no calibrated state"
        raise CodecError(
            f"stream set-up carries {made}, which does not fit codec {codec!r}; both ends "
            "need the same codec config"
        )
    if header.identity != _identity(codec):
        raise CodecError(
            f"stream set-up was made by a slicer-llm with another profile, step or flags than "
            f"{codec!r}; both ends need the same codec config and profile"
        )
    if isinstance(codec, Slicer):
        _model_bank.warm()
    return StreamDecoder(codec, header, _key(setup))


# -- set-up bytes -------------------------------------------------------------------------------
def _write_setup(header: _Header) -> bytes:
    kind = KIND_SLICER if header.setting is not None else KIND_GENERIC
    if header.identity is not None:
        kind = KIND_LLM
    version = (STREAM_VERSION << 4) | bitstream.DTYPES.index(header.dtype)
    out = bytearray((SETUP_MAGIC, version, header.codec_num, kind))
    bitstream.write_varint(out, len(header.step_shape))
    for dim in header.step_shape:
        bitstream.write_varint(out, dim)
    if header.setting is not None:
        s = header.setting
        out += struct.pack("<ddd", s.keep_pos, s.keep_neg, s.drop_share)
        bitstream.write_varint(out, s.blocks)
    if header.identity is not None:
        out += header.identity
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def _read_setup(setup: Any) -> _Header:
    if not isinstance(setup, bytes | bytearray | memoryview):
        raise CodecError(f"stream set-up must be bytes, got {type(setup).__name__}")
    view = memoryview(setup).cast("B")
    if len(view) < 5 + _CRC_BYTES:
        raise CodecError(
            f"stream set-up is truncated: {len(view)} bytes, a set-up has at least {5 + _CRC_BYTES}"
        )
    if view[0] != SETUP_MAGIC:
        hint = "; that is a container: decode it with codec.decode" if view[0] == 0xA7 else ""
        raise CodecError(
            f"not a stream set-up: first byte is {view[0]:#04x}, not {SETUP_MAGIC:#04x}{hint}"
        )
    (crc,) = struct.unpack("<I", view[-_CRC_BYTES:])
    if zlib.crc32(view[:-_CRC_BYTES]) != crc:
        raise CodecError("stream set-up is corrupted or truncated: CRC32 mismatch")
    version, dtype_code = view[1] >> 4, view[1] & 0x0F
    if version != STREAM_VERSION:
        raise CodecError(
            f"stream format version {version} is not supported (this build reads {STREAM_VERSION})"
        )
    if dtype_code >= len(bitstream.DTYPES):
        raise CodecError(f"stream set-up declares unknown dtype code {dtype_code}")
    kind = int(view[3])
    if kind not in (KIND_GENERIC, KIND_SLICER, KIND_LLM):
        raise CodecError(f"stream set-up declares unknown kind {kind}; expected 0, 1 or 2")
    reader = bitstream.Reader(view[4:-_CRC_BYTES], "stream set-up")
    ndim = reader.varint(limit=bitstream.MAX_NDIM)
    shape = tuple(reader.varint(limit=bitstream.MAX_ELEMENTS) for _ in range(ndim))
    if ndim < 2 or shape[0] != 1 or math.prod(shape) > bitstream.MAX_ELEMENTS:
        raise CodecError(
            f"stream set-up declares step shape {shape}; expected (1, ...) of ndim >= 2 and at "
            f"most {bitstream.MAX_ELEMENTS} elements"
        )
    setting = _read_setting(reader) if kind == KIND_SLICER else None
    identity = None
    if kind == KIND_LLM:
        start = len(view) - _CRC_BYTES - reader.remaining
        Identity.read(reader)  # checks the profile and the values
        identity = bytes(view[start : len(view) - _CRC_BYTES])
    reader.done()
    return _Header(int(view[2]), bitstream.DTYPES[dtype_code], shape, setting, identity)


def _read_setting(reader: bitstream.Reader) -> Setting:
    keep_pos, keep_neg, drop_share = np.frombuffer(reader.take(24), dtype="<f8").tolist()
    blocks = reader.varint(limit=_MAX_BLOCKS)
    for name, value in (("keep_pos", keep_pos), ("keep_neg", keep_neg), ("drop_share", drop_share)):
        if not 0.0 < value <= 1.0:
            raise CodecError(f"stream set-up: SLICER {name} must be in (0, 1], got {value!r}")
    if blocks < 1:
        raise CodecError(f"stream set-up: SLICER blocks must be in [1, {_MAX_BLOCKS}], got 0")
    return Setting(keep_pos, keep_neg, blocks, drop_share)
