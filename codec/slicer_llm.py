"""``slicer-llm``: a training-free codec for LLM hidden states at one split of one causal LM.

``get_codec({"id": "slicer-llm", "profile": "smollm2-135m/16", "bits": 2.5})``. Rows ``x`` of a
``[T, d]`` hidden state are coded in a calibrated transform domain (``codec._llm_profile``):
``z = analysis @ (x - mean)``, where the profile's transform is the KLT of the rows in the tail's
sensitivity-whitened domain (``F^(1/2)``, ``F`` the regularised Fisher matrix of the tail's output
distribution with respect to the row), so that one uniform step for every coefficient spends
bits where the tail's output is sensitive. Codes are entropy-coded with static per-coefficient
Laplace tables (``codec._llm_rows``, ``codec._llm_ans``): frames carry codes only. Options:

* ``bits``: the target rate in bits per value, mapped to the step by the profile's model (the
  realised rate differs by the model's mismatch; benchmarks report the realised one);
* ``predict``: predict each coefficient from the previous decoded row (AR(1), closed loop);
* ``first_row``: code a container's row 0 (position 0) with its own mean and scales;
* ``deadzone``: the rounding offset (0 is plain rounding).

Inputs that are not ``[T, d]`` rows of the profile's width are stored as float16 (clamped to
its range): the codec is for hidden states, and stays total on any tensor.

Body (after the container header), little-endian::

    mode       1 byte   0: float16 values follow; 1: profiled rows
    mode 1:
    name       1 byte length, then the profile name (UTF-8)
    identity   13 bytes digest (4), step (float32), deadzone (float32), flags (1: bit 0 predict,
                        bit 1 first_row)
    words      varint byte count, then that many bytes of rANS words, then the escape bytes
               (the rest of the body)

A stream frame (``codec.stream``) is ``words`` only: its set-up carries the profile name and
identity, and the decoder's own config must match them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from codec import _llm_ans, _llm_rows, bitstream
from codec._llm_profile import Profile, find_by_digest, resolve
from codec.base import Codec, check_number
from codec.errors import CodecError
from codec.registry import register

MODE_FLOAT16, MODE_ROWS = 0, 1
_FP16_MAX = 65504.0
_IDENTITY = struct.Struct("<4sffB")


@dataclass(frozen=True)
class Identity:
    """What both ends of a payload must agree on, besides the row values."""

    profile: Profile
    delta: float  # float32-exact
    deadzone: float  # float32-exact
    predict: bool
    first_row: bool

    def to_bytes(self) -> bytes:
        name = self.profile.name.encode()
        flags = int(self.predict) | (int(self.first_row) << 1)
        packed = _IDENTITY.pack(self.profile.digest, self.delta, self.deadzone, flags)
        return bytes((len(name),)) + name + packed

    @staticmethod
    def read(reader: bitstream.Reader) -> Identity:
        name_len = reader.take(1)[0]
        try:
            name = bytes(reader.take(name_len)).decode()
        except UnicodeDecodeError as exc:
            raise CodecError("slicer-llm: the payload's profile name is not UTF-8") from exc
        digest, delta, deadzone, flags = _IDENTITY.unpack(bytes(reader.take(_IDENTITY.size)))
        if not (math.isfinite(delta) and delta > 0 and 0.0 <= deadzone < 0.5) or flags > 3:
            raise CodecError(
                f"slicer-llm: the payload declares step {delta}, deadzone {deadzone}, flags "
                f"{flags}; a step is > 0, a deadzone in [0, 0.5), flags in 0..3"
            )
        profile = find_by_digest(digest, name)
        return Identity(profile, delta, deadzone, bool(flags & 1), bool(flags & 2))

    @property
    def classes(self) -> np.ndarray:
        return _llm_rows.row_classes(self.profile, self.delta)


def _f32(value: float) -> float:
    return float(np.float32(value))


@register
class SlicerLlm(Codec):
    codec_id = "slicer-llm"
    numeric_id = 12

    def __init__(
        self,
        profile: str = "smollm2-135m/16",
        bits: float = 2.5,
        predict: bool = True,
        first_row: bool = True,
        deadzone: float = 0.15,
    ) -> None:
        if not isinstance(profile, str):
            raise CodecError(f"slicer-llm.profile: must be a string 'model/split', got {profile!r}")
        self.bits = float(check_number(self.codec_id, "bits", bits, 0.05, 16.0))
        for name, flag in (("predict", predict), ("first_row", first_row)):
            if not isinstance(flag, bool):
                raise CodecError(f"slicer-llm.{name}: must be true or false, got {flag!r}")
        self.predict, self.first_row = predict, first_row
        self.deadzone = float(check_number(self.codec_id, "deadzone", deadzone, 0.0, 0.45))
        self.profile_name = profile
        kind = _llm_rows.PRED if predict else _llm_rows.PLAIN
        found = resolve(profile)
        deadzone_f32 = _f32(self.deadzone)  # what payloads carry and both ends use
        delta = _f32(_llm_rows.step_for_bits(found, self.bits, kind, deadzone_f32))
        self.identity = Identity(found, delta, deadzone_f32, predict, first_row)
        self._classes = self.identity.classes

    def get_config(self) -> dict[str, Any]:
        return {
            "id": self.codec_id,
            "profile": self.profile_name,
            "bits": self.bits,
            "predict": self.predict,
            "first_row": self.first_row,
            "deadzone": self.deadzone,
        }

    @property
    def width(self) -> int:
        return self.identity.profile.width

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether a tensor of ``shape`` is coded as profiled rows (else as float16)."""
        return len(shape) == 2 and shape[1] == self.width and shape[0] >= 1

    # -- containers ---------------------------------------------------------------------------
    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        if not self.fits(values.shape):
            clipped = np.clip(values, -_FP16_MAX, _FP16_MAX).astype("<f2")
            return bytes((MODE_FLOAT16,)) + clipped.tobytes()
        kinds = self._container_kinds(values.shape[0], self.identity)
        prev = np.zeros(self.width, np.float32)
        coded, _ = encode_rows(values, kinds, self.identity, self._classes, prev)
        return bytes((MODE_ROWS,)) + self.identity.to_bytes() + coded

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        reader = bitstream.Reader(body, "slicer-llm body")
        mode = reader.take(1)[0]
        if mode == MODE_FLOAT16:
            count = math.prod(shape)
            raw = reader.take(2 * count)
            reader.done()
            return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape)
        if mode != MODE_ROWS:
            raise CodecError(f"slicer-llm: unknown body mode {mode}; expected 0 or 1")
        identity = Identity.read(reader)
        if len(shape) != 2 or shape[1] != identity.profile.width or shape[0] < 1:
            raise CodecError(
                f"slicer-llm: profiled rows need shape [T, {identity.profile.width}], the header "
                f"says {shape}"
            )
        kinds = self._container_kinds(shape[0], identity)
        prev = np.zeros(identity.profile.width, np.float32)
        rest = reader.take(reader.remaining)
        x_hat, _ = decode_rows(rest, kinds, identity, identity.classes, prev)
        return x_hat

    @staticmethod
    def _container_kinds(rows: int, identity: Identity) -> np.ndarray:
        kinds = np.full(rows, _llm_rows.PRED if identity.predict else _llm_rows.PLAIN, np.int64)
        kinds[:2] = _llm_rows.PLAIN  # row 1 is not predicted from the attention sink
        if identity.first_row:
            kinds[0] = _llm_rows.FIRST
        return kinds

    # -- streams ------------------------------------------------------------------------------
    def frames(self) -> FrameCoder:
        """A fresh per-stream frame coder (both ends build one; see :class:`FrameCoder`)."""
        return FrameCoder(self.identity, self._classes)


class FrameCoder:
    """One stream's frames: each ``[1, d]`` row is predicted from the previous decoded row (when
    ``predict``); the first frame has no predecessor. Encoder and decoder keep the same state,
    computed from decoded values only. A step of another shape goes as float16 values."""

    def __init__(self, identity: Identity, classes: np.ndarray) -> None:
        self.identity, self.classes = identity, classes
        self._prev = np.zeros(identity.profile.width, np.float32)
        self._started = False

    def _fits(self, shape: tuple[int, ...]) -> bool:
        return shape == (1, self.identity.profile.width)

    def _kinds(self) -> np.ndarray:
        kind = _llm_rows.PRED if (self.identity.predict and self._started) else _llm_rows.PLAIN
        return np.array([kind], np.int64)

    def encode(self, values: np.ndarray, dtype: str) -> bytes:
        if not self._fits(values.shape):
            return np.clip(values, -_FP16_MAX, _FP16_MAX).astype("<f2").tobytes()
        body, self._prev = encode_rows(
            values, self._kinds(), self.identity, self.classes, self._prev
        )
        self._started = True
        return body

    def decode(self, body: memoryview, shape: tuple[int, ...]) -> np.ndarray:
        if not self._fits(shape):
            if len(body) != 2 * math.prod(shape):
                raise CodecError(
                    f"slicer-llm stream: a float16 frame of {shape} has the wrong size"
                )
            return np.frombuffer(body, dtype="<f2").astype(np.float32).reshape(shape)
        x_hat, last = decode_rows(body, self._kinds(), self.identity, self.classes, self._prev)
        self._prev, self._started = last, True
        return x_hat


def encode_rows(
    values: np.ndarray,
    kinds: np.ndarray,
    identity: Identity,
    classes: np.ndarray,
    prev: np.ndarray,
) -> tuple[bytes, np.ndarray]:
    """Rows -> (words section, last decoded coefficient row)."""
    profile = identity.profile
    means = _means(profile, kinds)
    z = ((values - means) @ profile.analysis.T).astype(np.float32)
    codes, code_cls, _, last = _llm_rows.quantise(
        z, kinds, classes, profile.rho, prev, identity.delta, identity.deadzone
    )
    words, extra = _llm_ans.encode(codes, code_cls, _llm_rows.tables(identity.deadzone))
    out = bytearray()
    bitstream.write_varint(out, len(words))
    return bytes(out) + words + extra, last


def decode_rows(
    data: memoryview | bytes,
    kinds: np.ndarray,
    identity: Identity,
    classes: np.ndarray,
    prev: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The words section -> (decoded rows ``[T, d]``, last decoded coefficient row)."""
    reader = bitstream.Reader(memoryview(data).cast("B"), "slicer-llm rows")
    n_words = reader.varint(limit=len(data))
    words = reader.take(n_words)
    extra = reader.take(reader.remaining)
    code_cls = _llm_rows.code_classes(kinds, classes)
    codes = _llm_ans.decode(
        words, extra, code_cls, _llm_rows.tables(identity.deadzone), "slicer-llm"
    )
    profile = identity.profile
    z_hat, last = _llm_rows.reconstruct(codes, kinds, classes, profile.rho, prev, identity.delta)
    x_hat = _means(profile, kinds) + z_hat @ profile.synthesis.T
    return np.ascontiguousarray(x_hat, dtype=np.float32), last


def _means(profile: Profile, kinds: np.ndarray) -> np.ndarray:
    """The mean of each row (``[T, d]``, or ``[1, d]`` broadcasting when no row is FIRST)."""
    first = kinds == _llm_rows.FIRST
    if not first.any():
        return profile.mean[None]
    return np.where(first[:, None], profile.first_mean[None], profile.mean[None])
