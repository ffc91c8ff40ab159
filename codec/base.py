"""The codec contract: tensor in, bytes out, tensor back, with a JSON config and shared checks.

Every codec takes a torch tensor or numpy array of float32, float16 or bfloat16 of any shape
(0-d and empty included) and gives back a torch tensor of the same shape and dtype. A codec is
a value: equality, hashing and ``repr`` come from ``get_config()``, and
``get_codec(codec.get_config())`` rebuilds an equal codec.
"""

from __future__ import annotations

import inspect
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from codec import bitstream
from codec.errors import CodecError

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}


@dataclass(frozen=True)
class Prepared:
    """An input made ready for a codec: float32 values, C-contiguous, and where it came from."""

    values: np.ndarray  # float32, C-contiguous, original shape
    dtype: str  # the caller's dtype name, restored on decode


def prepare(x: Any) -> Prepared:
    """Accept a tensor or an array, check its dtype, return float32 values."""
    if isinstance(x, torch.Tensor):
        if x.dtype not in _DTYPE_NAMES:
            raise CodecError(
                f"input dtype {x.dtype} is not supported; use float32, float16 or bfloat16"
            )
        dtype = _DTYPE_NAMES[x.dtype]
        values = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return Prepared(_contiguous(values), dtype)
    if isinstance(x, np.ndarray):
        if x.dtype == np.float32:
            return Prepared(_contiguous(x), "float32")
        if x.dtype == np.float16:
            return Prepared(_contiguous(x.astype(np.float32)), "float16")
        raise CodecError(
            f"input dtype {x.dtype} is not supported; use float32 or float16 arrays "
            "(or a torch bfloat16 tensor)"
        )
    raise CodecError(f"input must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _contiguous(values: np.ndarray) -> np.ndarray:
    """C-contiguous float32 with the shape kept (``ascontiguousarray`` turns 0-d into 1-d)."""
    return np.ascontiguousarray(values, dtype=np.float32).reshape(values.shape)


def check_finite(values: np.ndarray, codec_id: str) -> None:
    if values.size and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise CodecError(
            f"codec {codec_id!r} is lossy and cannot encode non-finite values: the input holds "
            f"{bad} NaN/inf entries; clean the tensor or use the lossless 'fp32' codec"
        )


def check_decoded(values: np.ndarray, codec_id: str) -> None:
    """A lossy codec encodes finite values only, so a decoded NaN or inf means the payload was
    altered (with its CRC recomputed): raise ``CodecError`` rather than hand it on. Two
    reductions, no temporary array (min and max propagate NaN)."""
    if values.size == 0:
        return
    lo, hi = float(np.min(values)), float(np.max(values))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int((~np.isfinite(values)).sum())
        raise CodecError(
            f"{codec_id}: the payload decodes to {bad} NaN/inf values, which its encoder never "
            "writes; the payload is corrupt or was altered"
        )


def to_tensor(
    values: np.ndarray, dtype: str, shape: tuple[int, ...], *, clamp: bool = False
) -> torch.Tensor:
    """Float32 values back to a tensor of the caller's dtype and shape; ``clamp`` keeps finite
    values finite in a narrower dtype (a lossy reconstruction may overshoot the input's range
    by a rounding step, which near float16's maximum would otherwise become inf)."""
    array = np.ascontiguousarray(values, dtype=np.float32).reshape(shape)
    if clamp and dtype != "float32":
        peak = float(torch.finfo(TORCH_DTYPES[dtype]).max)
        array = np.asarray(np.clip(array, -peak, peak), dtype=np.float32)
    return torch.from_numpy(array).to(TORCH_DTYPES[dtype])


@dataclass(frozen=True)
class CodecStats:
    """What one encode tells a benchmark: size, and for lossy codecs the realised distortion."""

    numel: int
    payload_bytes: int
    bits_per_element: float
    nmse: float  # ||x - x_hat||^2 / ||x||^2 over the whole tensor (0 when x is all zero)
    max_row_nmse: float  # the worst row (slices along the first axis; whole tensor if ndim < 2)
    cosine: float
    max_abs_error: float


def row_view(values: np.ndarray) -> np.ndarray:
    """The rows of a tensor as a 2-D array: slices along the first axis, or one row if ndim < 2."""
    if values.ndim >= 2:
        return values.reshape(values.shape[0], -1)
    return values.reshape(1, -1)


def row_nmse(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Per-row ||x - x_hat||^2 / ||x||^2 (0 for an all-zero row decoded as zero, inf otherwise)."""
    a = row_view(x).astype(np.float64)
    err = ((a - row_view(x_hat).astype(np.float64)) ** 2).sum(axis=1)
    energy = (a**2).sum(axis=1)
    out = np.zeros_like(err)
    nz = energy > 0
    out[nz] = err[nz] / energy[nz]
    out[~nz & (err > 0)] = np.inf
    return out


def distortion(x: np.ndarray, x_hat: np.ndarray) -> tuple[float, float, float, float]:
    """(nmse, max_row_nmse, cosine, max_abs_error) of a reconstruction."""
    if x.size == 0:
        return 0.0, 0.0, 1.0, 0.0
    a = x.astype(np.float64).ravel()
    b = x_hat.astype(np.float64).ravel()
    energy = float(a @ a)
    err = float(((a - b) ** 2).sum())
    nmse = err / energy if energy > 0 else (0.0 if err == 0 else float("inf"))
    norms = float(np.sqrt(energy * float(b @ b)))
    cosine = float(a @ b) / norms if norms > 0 else (1.0 if err == 0 else 0.0)
    rows = row_nmse(x, x_hat)
    return nmse, float(rows.max()), cosine, float(np.abs(a - b).max())


class Codec(ABC):
    """Base class of every codec. Subclasses set ``codec_id`` and ``numeric_id`` and implement
    ``_encode_body`` and ``_decode_body`` on float32 numpy values; this class owns input checks,
    the container and the error contract."""

    codec_id: ClassVar[str]
    numeric_id: ClassVar[int]  # stored in every payload; never reuse a number
    lossless: ClassVar[bool] = False

    # -- the contract -------------------------------------------------------------------------
    def encode(self, x: Any) -> bytes:
        """Encode a tensor or array into a self-describing payload."""
        prepared = prepare(x)
        if not self.lossless:
            check_finite(prepared.values, self.codec_id)
        body = self._encode_body(prepared.values, prepared.dtype)
        return bitstream.pack(self.numeric_id, prepared.dtype, prepared.values.shape, body)

    def decode(self, payload: bytes) -> torch.Tensor:
        """Decode a payload made by an equal codec; any defect raises ``CodecError``."""
        header, body = bitstream.unpack(payload)
        if header.codec_num != self.numeric_id:
            raise CodecError(
                f"payload was made by codec number {header.codec_num}, not by {self.codec_id!r} "
                f"(number {self.numeric_id}); use codec.decode_any to dispatch"
            )
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # tampered scales: checked below
                values = self._decode_body(body, header.shape, header.dtype)
        except CodecError:
            raise
        except Exception as exc:  # a defect the checks missed must still surface as CodecError
            raise CodecError(f"{self.codec_id}: malformed payload body ({exc})") from exc
        if values.size != header.numel:
            raise CodecError(
                f"{self.codec_id}: body decodes to {values.size} values, header says {header.numel}"
            )
        if not self.lossless:
            check_decoded(values, self.codec_id)
        return to_tensor(values, header.dtype, header.shape, clamp=not self.lossless)

    def stats(self, x: Any) -> CodecStats:
        """Encode once, decode once, and report size and distortion."""
        prepared = prepare(x)
        payload = self.encode(x)
        x_hat = self.decode(payload).to(torch.float32).numpy()
        nmse, worst, cosine, max_abs = distortion(prepared.values, x_hat)
        numel = prepared.values.size
        return CodecStats(
            numel=numel,
            payload_bytes=len(payload),
            bits_per_element=8 * len(payload) / numel if numel else 0.0,
            nmse=nmse,
            max_row_nmse=worst,
            cosine=cosine,
            max_abs_error=max_abs,
        )

    @abstractmethod
    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes: ...

    @abstractmethod
    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray: ...

    # -- config -------------------------------------------------------------------------------
    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """JSON-only config with an ``"id"`` key; ``from_config`` inverts it."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Codec:
        params = dict(config)
        given = params.pop("id", cls.codec_id)
        if given != cls.codec_id:
            raise CodecError(f"config id {given!r} does not match codec {cls.codec_id!r}")
        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        for key in params:
            if key not in allowed:
                raise CodecError(
                    f"codec {cls.codec_id!r} has no parameter {key!r}; allowed: {allowed or 'none'}"
                )
        built = cls(**params)
        _check_used(built, params)
        return built

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Codec) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.get_config(), sort_keys=True))

    def __repr__(self) -> str:
        config = dict(sorted(self.get_config().items()))
        return f"get_codec({config!r})"


def _check_used(built: Codec, given: dict[str, Any]) -> None:
    """Every parameter given must be one the built codec uses: a value that its config does not
    echo (``max_nmse`` next to ``bits_per_element``, which takes precedence) was silently
    dropped, so the two conflict. A missing key and None count as the same (unset)."""
    config = built.get_config()
    for key, value in given.items():
        used = config.get(key)
        if value is None or used == value:
            continue
        others = ", ".join(f"{k}={v!r}" for k, v in given.items() if k != key)
        raise CodecError(
            f"codec {built.codec_id!r}: {key}={value!r} conflicts with {others or 'the defaults'}"
            f" (the codec would use {key}={used!r}); give one of them, not both"
        )


# -- parameter checks shared by the codecs' constructors --------------------------------------
def check_number(
    codec_id: str, name: str, value: Any, lo: float, hi: float, *, integer: bool = False
) -> float:
    """Validate a numeric parameter; the error names the codec, the parameter and the range."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not (lo <= value <= hi):
        raise CodecError(f"{codec_id}.{name}: must be {kind} in [{lo}, {hi}], got {value!r}")
    return value


def check_choice(codec_id: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise CodecError(f"{codec_id}.{name}: must be one of {list(choices)}, got {value!r}")
    return str(value)
