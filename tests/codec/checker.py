"""One checker for every codec (in the spirit of numcodecs' ``check_encode_decode``).

``check_codec(codec, x, tolerance)`` runs the whole contract of ``codec.base.Codec`` on one
input: the round trip within a stated tolerance, the output's shape and dtype, determinism, the
config and ``repr`` round trips, ``decode_any`` dispatch, and ``stats`` against the payload.

Tolerances (``tolerance_for``) are stated per codec:

* ``fp32`` is lossless: bit for bit, NaN and inf included.
* ``fp16``, ``zstd``, ``bf16``, ``int8``, ``blockwise8``, ``rans`` and ``jpeg`` have an analytic
  element-wise bound ``|x - x_hat| <= atol + rtol * |x|`` that follows from their quantiser and
  holds for every finite input (see ``_elementwise``), and, for "typical" inputs (standard normal
  tensors), a measured whole-tensor NMSE bound (``typical_nmse``).
* ``topk`` has an analytic NMSE bound: the dropped entries are the smallest ``1 - keep`` of
  them, so they carry at most that share of the energy; the kept ones add float16 rounding.
* ``slicer`` promises its own budget: ``max_nmse`` on every row (``codec.base.row_nmse``), or on
  the whole tensor for ``granularity="tensor"``; with ``bits_per_element`` only the loosest
  budget it searches (NMSE 1 per row) is promised.

Every bound also allows for the final rounding of the decoded values to the caller's dtype.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from codec import bitstream
from codec.base import Codec, row_nmse
from codec.registry import decode_any, get_codec

ArrayLike = torch.Tensor | np.ndarray

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

#: Relative rounding (half an ulp) and smallest absolute rounding step (half the subnormal
#: spacing) of the dtype a decoded tensor is returned in.
OUTPUT_ROUNDING = {
    "float32": (2.0**-24, 2.0**-150),
    "float16": (2.0**-11, 2.0**-25),
    "bfloat16": (2.0**-8, 2.0**-134),
}
#: Slack for float32 arithmetic inside the decoders (scale * code products and the like).
F32_SLACK = 2.0**-22
#: The absolute rounding error of a float32 quantiser scale in the subnormal range (half the
#: subnormal spacing): for ranges near 1e-43 the relative error of the scale is large, and a
#: decoded value can be off by this much times its code (a float32 limit, not a codec bug).
SUBNORMAL_SCALE_ERROR = 2.0**-150


def load_codecs() -> None:
    """Import every codec module so that the registry knows them all."""
    import codec.baselines
    import codec.slicer  # noqa: F401

    for name in ("codec.rans", "codec.jpeg"):
        with contextlib.suppress(ImportError):  # not written yet
            importlib.import_module(name)


load_codecs()


# -- inputs --------------------------------------------------------------------------------------
def input_values(x: ArrayLike) -> tuple[np.ndarray, str]:
    """The input as float64 values in its own shape, and its dtype name (test-side, independent
    of ``codec.base.prepare``)."""
    if isinstance(x, torch.Tensor):
        names = {v: k for k, v in TORCH_DTYPES.items()}
        return x.detach().to(torch.float64).numpy().copy(), names[x.dtype]
    names_np = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}
    return np.asarray(x, dtype=np.float64).copy(), names_np[x.dtype]


def as_torch(x: ArrayLike) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """The raw bit patterns of a float tensor (NaN-safe and -0.0-aware comparison)."""
    kinds = {4: torch.int32, 2: torch.int16}
    return t.detach().contiguous().view(kinds[t.element_size()])


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits_of(a), bits_of(b))


def lossless_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype and shape, NaN where NaN, and the same bits everywhere else (-0.0 and inf
    included); a NaN's sign and payload bits are not information."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    nan = torch.isnan(a)
    if not torch.equal(nan, torch.isnan(b)):
        return False
    return torch.equal(bits_of(a)[~nan], bits_of(b)[~nan])


def nmse(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Whole-tensor ||x - x_hat||^2 / ||x||^2 (0 for an all-zero tensor decoded as zero)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(x_hat, dtype=np.float64).ravel()
    err = float(((a - b) ** 2).sum())
    energy = float((a**2).sum())
    if energy == 0:
        return 0.0 if err == 0 else math.inf
    return err / energy


# -- tolerances ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """What a decoded tensor must satisfy; every bound that is set is checked."""

    exact: bool = False  # bit for bit (lossless)
    atol: float | None = None  # element-wise |x - x_hat| <= atol + rtol * |x|
    rtol: float = 0.0
    nmse: float | None = None  # whole-tensor NMSE
    row_nmse: float | None = None  # NMSE of every row (slices along the first axis)

    def widened_for(self, dtype: str) -> Tolerance:
        """The element-wise bound after the decoded values are rounded to ``dtype``."""
        if self.atol is None:
            return self
        eps, tiny = OUTPUT_ROUNDING[dtype]
        rtol = self.rtol + F32_SLACK + eps * (1 + self.rtol + F32_SLACK)
        return Tolerance(self.exact, self.atol * (1 + eps) + tiny, rtol, self.nmse, self.row_nmse)


def _finite_stats(values: np.ndarray) -> tuple[float, float, float]:
    if values.size == 0:
        return 0.0, 0.0, 0.0
    return float(values.min()), float(values.max()), float(np.abs(values).max())


def _elementwise(codec: Codec, values: np.ndarray) -> tuple[float, float] | None:
    """(atol, rtol) of the codec's quantiser on these (finite) values, before output rounding."""
    lo, hi, peak = _finite_stats(values)
    config = codec.get_config()
    cid = config["id"]
    if cid in ("fp16", "zstd"):
        # round to nearest float16: half an ulp (2^-11 relative), half the subnormal spacing
        return 2.0**-25, 2.0**-11
    if cid == "bf16":
        # round to nearest even on the top 16 bits: 8 significant bits
        return 2.0**-134, 2.0**-8
    if cid == "int8":
        # 256 levels from min to max: half a step
        return (hi - lo) / 510.0, 0.0
    if cid == "blockwise8":
        # absmax / 127 per block, round to nearest: half a step of the largest block's scale
        # (the scale is floored at the smallest normal float32, so at least half of that), plus
        # 127 codes times the float32 rounding of a subnormal scale
        step = max(peak / 127.0, float(np.finfo(np.float32).tiny))
        return step / 2 + 127 * SUBNORMAL_SCALE_ERROR, 0.0
    if cid == "rans":
        # range widened to include 0; the zero point is rounded and codes are clipped, so the
        # error can reach a full step (not just half a step); a subnormal float32 scale is
        # rounded by up to half the subnormal spacing, which the clipped codes multiply
        levels = 2 ** int(config["bits"]) - 1
        step = (max(hi, 0.0) - min(lo, 0.0)) / levels
        return 1.01 * step + (levels + 1) * SUBNORMAL_SCALE_ERROR + 2e-45, 0.0
    if cid == "jpeg":
        # pixels stay in 0..255, so every value decodes inside its tile's (min, max) range
        # (up to the float32 rounding of a subnormal scale)
        return (hi - lo) * (1 + 1e-6) + 255 * SUBNORMAL_SCALE_ERROR, 0.0
    return None


#: Whole-tensor NMSE bounds on standard normal tensors (shapes [4, 8] .. [64, 576], seeds 0-2),
#: measured with ``codec.stats``: the worst measured value is in each comment; the bound adds a
#: margin of 2-3x. Used only for inputs marked typical.
TYPICAL_NMSE = {
    "fp16": 1e-7,  # measured <= 4.9e-8 (theory: 2^-22 / 3 ~ 8e-8 for a uniform mantissa)
    "zstd": 1e-7,  # the same float16 values, losslessly compressed
    "bf16": 6e-6,  # measured <= 3.0e-6
    "int8": 3e-4,  # measured <= 1.1e-4 (64 x 576; the range, hence the step, grows with size)
    "blockwise8": 2e-4,  # measured <= 8.2e-5 (block_size 4096), <= 4.2e-5 (block_size 64)
    "topk": 0.65,  # keep 0.1: measured <= 0.62; see typical_nmse for other keeps
    "rans": 3e-4,  # bits 8: measured <= 1.1e-4; scaled by 4x per bit below, see typical_nmse
    "jpeg": 0.05,  # quality 90 JPEG: measured <= 2.0e-2; see typical_nmse
}


def typical_nmse(codec: Codec) -> float | None:
    """The measured NMSE bound of a codec config on standard normal inputs."""
    config = codec.get_config()
    cid = config["id"]
    if cid == "fp32":
        return 0.0
    if cid == "topk":
        keep = float(config["keep"])
        if keep == 0.1:
            return TYPICAL_NMSE["topk"]
        if keep == 0.5:
            return 0.12  # measured <= 0.10
        return min(1.0, 1.0 - keep + 1e-6)  # the analytic bound
    if cid == "rans":
        # uniform quantiser: NMSE ~ step^2 / 12, a factor 4 per bit; bits 2: measured 0.67,
        # bits 4: 3.2e-2, bits 12: 4.2e-7, bits 16: 1.7e-9
        return min(1.0, TYPICAL_NMSE["rans"] * 4.0 ** (8 - int(config["bits"])))
    if cid == "jpeg":
        if config["format"] == "webp":
            return 0.02 if config["quality"] >= 90 else None  # quality 90: measured <= 5.9e-3
        quality = int(config["quality"])
        if quality >= 90:
            return TYPICAL_NMSE["jpeg"]
        if quality >= 50:
            return 0.8  # quality 50: measured <= 0.39
        return None  # low qualities can exceed NMSE 1 (quality 1: 1.1)
    if cid == "slicer":
        return None  # its own budget is the bound (see tolerance_for)
    return TYPICAL_NMSE.get(cid)


def tolerance_for(codec: Codec, x: ArrayLike, *, typical: bool = False) -> Tolerance:
    """The tolerance a codec states for this input; ``typical`` adds the measured NMSE bound
    (only meaningful for standard-normal-like inputs)."""
    values, dtype = input_values(x)
    config = codec.get_config()
    cid = config["id"]
    if codec.lossless:
        return Tolerance(exact=True)
    if cid == "slicer":
        budget = 1.0 if config.get("max_nmse") is None else float(config["max_nmse"])
        per_row = config["granularity"] == "row" and values.ndim >= 2
        return Tolerance(nmse=budget) if not per_row else Tolerance(row_nmse=budget)
    extra_nmse = typical_nmse(codec) if typical else None
    if cid == "topk":
        n = values.size
        k = min(n, math.ceil(float(config["keep"]) * n))
        # dropped: the n - k smallest magnitudes, at most (n - k) / n of the energy; kept:
        # float16 rounding, then the output dtype's rounding
        eps, tiny = OUTPUT_ROUNDING[dtype]
        rel = 2.0**-11 + eps + 2.0**-22
        energy = float((values**2).sum())
        f16_err = float(((rel * np.abs(values) + 2.0**-25 + tiny) ** 2).sum())
        bound = (n - k) / n + f16_err / energy + 1e-12 if energy > 0 else 0.0
        if extra_nmse is not None:
            bound = min(bound, extra_nmse)
        return Tolerance(nmse=bound)
    elementwise = _elementwise(codec, values[np.isfinite(values)])
    if elementwise is None:  # a codec this checker does not know yet: a sanity bound only
        return Tolerance(nmse=extra_nmse if extra_nmse is not None else 1.0)
    atol, rtol = elementwise
    return Tolerance(atol=atol, rtol=rtol, nmse=extra_nmse).widened_for(dtype)


def check_tolerance(values: np.ndarray, decoded: torch.Tensor, tol: Tolerance, what: str) -> None:
    """Assert that ``decoded`` is within ``tol`` of the float64 ``values``."""
    x_hat = decoded.to(torch.float64).numpy()
    if tol.atol is not None and values.size:
        err = np.abs(values - x_hat)
        allowed = tol.atol + tol.rtol * np.abs(values)
        worst = int(np.argmax(err - allowed))
        assert (err <= allowed).all(), (
            f"{what}: element-wise error {err.flat[worst]:.3g} at flat index {worst} "
            f"(value {values.flat[worst]!r}, decoded {x_hat.flat[worst]!r}) exceeds "
            f"{allowed.flat[worst]:.3g} = {tol.atol:.3g} + {tol.rtol:.3g} * |x|"
        )
    if tol.nmse is not None:
        got = nmse(values, x_hat)
        assert got <= tol.nmse * (1 + 1e-9), f"{what}: NMSE {got:.4g} exceeds {tol.nmse:.4g}"
    if tol.row_nmse is not None and values.size:
        rows = row_nmse(values, x_hat)
        worst = int(np.argmax(rows))
        assert (rows <= tol.row_nmse * (1 + 1e-9)).all(), (
            f"{what}: row {worst} has NMSE {rows[worst]:.4g}, over the budget {tol.row_nmse:.4g} "
            f"({int((rows > tol.row_nmse).sum())} of {rows.size} rows over)"
        )


# -- the checker ---------------------------------------------------------------------------------
def check_config(codec: Codec) -> None:
    """Config, equality, hash and repr round trips."""
    config = codec.get_config()
    assert isinstance(config, dict) and config.get("id") == codec.codec_id, config
    text = json.dumps(config, sort_keys=True, allow_nan=False)
    assert json.loads(text) == config, f"config does not survive JSON: {config!r}"
    rebuilt = get_codec(json.loads(text))
    assert rebuilt == codec and hash(rebuilt) == hash(codec), (rebuilt, codec)
    assert rebuilt.get_config() == config
    assert get_codec(config) == codec
    assert type(codec).from_config(config) == codec
    assert eval(repr(codec), {"get_codec": get_codec}) == codec, repr(codec)
    assert codec != object() and codec in {rebuilt}


def check_codec(codec: Codec, x: ArrayLike, tolerance: Tolerance | None = None) -> torch.Tensor:
    """Run the whole contract on one input; returns the decoded tensor.

    ``tolerance`` defaults to ``tolerance_for(codec, x)`` (analytic bounds only).
    """
    values, dtype = input_values(x)
    tol = tolerance_for(codec, x) if tolerance is None else tolerance
    what = f"{codec!r} on {dtype}{list(values.shape)}"

    payload = codec.encode(x)
    assert isinstance(payload, bytes), f"{what}: encode returned {type(payload).__name__}"
    header, _ = bitstream.unpack(payload)
    assert header.codec_num == codec.numeric_id, what
    assert header.shape == values.shape and header.dtype == dtype, (what, header)

    decoded = codec.decode(payload)
    assert isinstance(decoded, torch.Tensor), what
    assert decoded.shape == torch.Size(values.shape), f"{what}: decoded shape {decoded.shape}"
    assert decoded.dtype == TORCH_DTYPES[dtype], f"{what}: decoded dtype {decoded.dtype}"
    assert decoded.device.type == "cpu"

    if tol.exact:
        expected = as_torch(x).detach().contiguous()
        assert lossless_equal(decoded, expected), f"{what}: not bit-exact"
    else:
        assert np.isfinite(values).all(), f"{what}: a lossy codec accepted non-finite input"
        check_tolerance(values, decoded, tol, what)

    # determinism, decoding by a rebuilt codec and by dispatch
    assert codec.encode(x) == payload, f"{what}: encode is not deterministic"
    rebuilt = get_codec(codec.get_config())
    assert same_bits(rebuilt.decode(payload), decoded), what
    assert same_bits(decode_any(payload), decoded), f"{what}: decode_any differs from decode"
    assert same_bits(decode_any(bytearray(payload)), decoded), what  # type: ignore[arg-type]
    # the input is not modified
    assert np.array_equal(input_values(x)[0], values, equal_nan=True), f"{what}: input changed"

    check_config(codec)
    check_stats(codec, x, payload, decoded)
    return decoded


def check_stats(codec: Codec, x: ArrayLike, payload: bytes, decoded: torch.Tensor) -> None:
    """``stats(x)`` agrees with the payload and with distortion measured here."""
    values, _ = input_values(x)
    stats = codec.stats(x)
    numel = values.size
    assert stats.numel == numel
    assert stats.payload_bytes == len(payload)
    expected_bpe = 8 * len(payload) / numel if numel else 0.0
    assert math.isclose(stats.bits_per_element, expected_bpe, rel_tol=1e-12)
    if not np.isfinite(values).all():
        return
    x_hat = decoded.to(torch.float64).numpy()
    assert math.isclose(stats.nmse, nmse(values, x_hat), rel_tol=1e-6, abs_tol=1e-300)
    worst_row = float(row_nmse(values, x_hat).max()) if numel else 0.0
    assert math.isclose(stats.max_row_nmse, worst_row, rel_tol=1e-6, abs_tol=1e-300)
    assert stats.max_row_nmse >= stats.nmse * (1 - 1e-9) or numel == 0
    abs_err = float(np.abs(values - x_hat).max()) if numel else 0.0
    assert math.isclose(stats.max_abs_error, abs_err, rel_tol=1e-6, abs_tol=1e-300)
    assert -1.0 - 1e-9 <= stats.cosine <= 1.0 + 1e-9


def describe(config: dict[str, Any]) -> str:
    """A short test id for a codec config."""
    rest = ",".join(f"{k}={v}" for k, v in sorted(config.items()) if k != "id")
    return f"{config['id']}({rest})"
