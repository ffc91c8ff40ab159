"""Quantisation and entropy models of ``slicer-llm``: transform coefficients to codes and back.

Every coefficient of every row is quantised with the same step ``delta`` (deadzone rounding:
``q = sign(u) * floor(|u| + 0.5 - deadzone)``, ``u = (z - prediction) / delta``, reconstruction
``prediction + q * delta``). A row is one of three kinds: ``FIRST`` (position 0 of a prompt),
``PLAIN`` (no predecessor to predict from) and ``PRED`` (predicted by ``rho * z_hat`` of the row
before it, from decoded values only). Each (kind, coefficient) has a Laplace scale from the
profile; in step units it picks one of ``CLASSES`` fixed tables (a quarter-octave grid of scales,
``2**-7 .. 2**5``), and a coefficient whose scale is below the grid is not coded at all (its code
is 0): reverse water-filling falls out of the one step.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

from codec import _llm_ans
from codec._llm_profile import Profile

FIRST, PLAIN, PRED = 0, 1, 2
RADIUS = 47
_LOG2_MIN, _PER_OCTAVE, _OCTAVES = -7, 4, 12
CLASSES = _PER_OCTAVE * _OCTAVES + 1
SKIP = -1


def class_scales() -> np.ndarray:
    """The Laplace scale (in steps) of each class."""
    return 2.0 ** (_LOG2_MIN + np.arange(CLASSES) / _PER_OCTAVE)


def laplace_probs(beta: np.ndarray, deadzone: float) -> np.ndarray:
    """``[len(beta), 2 * RADIUS + 2]`` probabilities of the codes of a Laplace(0, beta) value
    under deadzone rounding: codes -RADIUS..RADIUS, then the escape (|q| > RADIUS)."""
    b = np.asarray(beta, np.float64)[:, None]
    mags = np.arange(RADIUS + 1, dtype=np.float64)[None]
    edge = np.where(mags == 0, 0.0, mags - 0.5 + deadzone)  # lower edge of |q| = mags
    upper = mags + 0.5 + deadzone
    one_side = 0.5 * (np.exp(-edge / b) - np.exp(-upper / b))  # P(q = +m) for m >= 1
    zero = 1.0 - np.exp(-(0.5 + deadzone) / b)
    escape = np.exp(-(RADIUS + 0.5 + deadzone) / b)
    probs = np.concatenate([one_side[:, :0:-1], zero, one_side[:, 1:], escape], axis=1)
    return np.maximum(probs, 1e-300)


@functools.cache
def tables(deadzone: float) -> _llm_ans.Tables:
    return _llm_ans.build_tables(laplace_probs(class_scales(), deadzone), RADIUS)


@functools.cache
def class_bits(deadzone: float) -> np.ndarray:
    """Expected bits per code of each class's source under its own (fixed-point) table."""
    p = laplace_probs(class_scales(), deadzone)
    p /= p.sum(axis=1, keepdims=True)
    freq = tables(deadzone).freq.astype(np.float64) / (1 << _llm_ans.PROB_BITS)
    return np.asarray(-(p * np.log2(freq)).sum(axis=1))


def classes_for(scale_steps: np.ndarray) -> np.ndarray:
    """Class of each coefficient from its Laplace scale in steps (``SKIP`` below the grid)."""
    with np.errstate(divide="ignore"):
        level = np.round((np.log2(np.maximum(scale_steps, 1e-30)) - _LOG2_MIN) * _PER_OCTAVE)
    cls = np.clip(level, 0, CLASSES - 1).astype(np.int64)
    cls[level < -0.5] = SKIP
    return cls


def row_classes(profile: Profile, delta: float) -> np.ndarray:
    """``[3, d]`` classes of the FIRST, PLAIN and PRED row kinds at step ``delta``."""
    scales = np.stack([profile.first_scale, profile.scale, profile.pred_scale]).astype(np.float64)
    return classes_for(scales / delta)


def expected_bits_per_value(profile: Profile, delta: float, kind: int, deadzone: float) -> float:
    """The model's expected bits per value of a row of ``kind`` at step ``delta``."""
    cls = row_classes(profile, delta)[kind]
    return float(class_bits(deadzone)[cls[cls >= 0]].sum() / profile.width)


def step_for_bits(profile: Profile, bits: float, kind: int, deadzone: float) -> float:
    """The step whose expected rate for rows of ``kind`` is ``bits`` per value (bisection on the
    log step; the rate falls monotonically as the step grows)."""
    ref = float(np.max(profile.scale))
    lo, hi = np.log(ref * 2.0**-20), np.log(ref * 2.0**8)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if expected_bits_per_value(profile, float(np.exp(mid)), kind, deadzone) > bits:
            lo = mid
        else:
            hi = mid
    return float(np.exp(hi))


@njit(cache=True, nogil=True)
def quantise(
    z: np.ndarray,
    kinds: np.ndarray,
    cls: np.ndarray,
    rho: np.ndarray,
    prev: np.ndarray,
    delta: float,
    deadzone: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``z`` ``[T, d]`` -> (flat codes, their classes, ``z_hat`` ``[T, d]``, last ``z_hat``);
    ``prev`` is the decoded row before the first (used by a first row of kind ``PRED``)."""
    t_rows, d = z.shape
    codes = np.empty(t_rows * d, np.int64)
    code_cls = np.empty(t_rows * d, np.int64)
    z_hat = np.empty((t_rows, d), np.float32)
    n = 0
    last = prev.copy()
    inv = 1.0 / delta
    offset = 0.5 - deadzone
    for t in range(t_rows):
        kind = kinds[t]
        for k in range(d):
            pred = rho[k] * last[k] if kind == PRED else 0.0
            c = cls[kind, k]
            if c < 0:
                z_hat[t, k] = pred
                continue
            u = (z[t, k] - pred) * inv
            q = np.int64(np.floor(abs(u) + offset))
            if u < 0:
                q = -q
            codes[n] = q
            code_cls[n] = c
            n += 1
            z_hat[t, k] = pred + q * delta
        last[:] = z_hat[t]
    return codes[:n], code_cls[:n], z_hat, last


@njit(cache=True, nogil=True)
def code_classes(kinds: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """The class of every coded symbol of rows of ``kinds``, in coding order."""
    d = cls.shape[1]
    out = np.empty(kinds.size * d, np.int64)
    n = 0
    for t in range(kinds.size):
        for k in range(d):
            c = cls[kinds[t], k]
            if c >= 0:
                out[n] = c
                n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def reconstruct(
    codes: np.ndarray,
    kinds: np.ndarray,
    cls: np.ndarray,
    rho: np.ndarray,
    prev: np.ndarray,
    delta: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's half of :func:`quantise`: codes -> (``z_hat`` ``[T, d]``, last row)."""
    t_rows = kinds.size
    d = cls.shape[1]
    z_hat = np.empty((t_rows, d), np.float32)
    last = prev.copy()
    n = 0
    for t in range(t_rows):
        kind = kinds[t]
        for k in range(d):
            pred = rho[k] * last[k] if kind == PRED else 0.0
            if cls[kind, k] < 0:
                z_hat[t, k] = pred
            else:
                z_hat[t, k] = pred + codes[n] * delta
                n += 1
        last[:] = z_hat[t]
    return z_hat, last
