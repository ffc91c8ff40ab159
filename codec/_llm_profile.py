"""Per-(model, split) calibration profiles of ``slicer-llm``: what both ends know without sending.

A profile describes the residual stream at one split of one causal LM:

* ``mean`` / ``first_mean`` ``[d]``: the calibration mean of rows after the first, and of the first
  row (position 0, the attention sink that carries the massive activations);
* ``basis`` ``[d, d]`` (float16, unit columns) and ``gain`` ``[d]``: the synthesis transform,
  ``x = mean + basis @ (gain * z)``; the encoder inverts the stored float16 basis, so both ends
  use one transform exactly;
* per coefficient Laplace scales of ``z``: ``scale`` (a row with no predecessor), ``first_scale``
  (position 0) and ``pred_scale`` (the residual after predicting ``z_t`` by ``rho * z_{t-1}``),
  and the AR(1) coefficients ``rho``.

Profiles ship as package data (``codec/llm_profiles/<model>_<split>.npz``, written by
``slicer calibrate-llm-codec``) or are registered in memory (:func:`register_profile`, for tests and
ablations). A profile's ``digest`` (the first 4 bytes of a SHA-256 of its arrays) goes into every
payload and stream set-up, so data coded with another profile raises ``CodecError``.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codec.errors import CodecError

PROFILE_DIR = Path(__file__).resolve().parent / "llm_profiles"
_ARRAYS = ("mean", "first_mean", "basis", "gain", "scale", "first_scale", "pred_scale", "rho")
_MEMORY: dict[str, Profile] = {}


@dataclass(frozen=True, eq=False)
class Profile:
    """One split's calibration (see the module docstring); arrays are read-only."""

    name: str  # "<model>/<split>"
    mean: np.ndarray
    first_mean: np.ndarray
    basis: np.ndarray  # float16 [d, d], unit columns
    gain: np.ndarray
    scale: np.ndarray
    first_scale: np.ndarray
    pred_scale: np.ndarray
    rho: np.ndarray
    digest: bytes = field(init=False)

    def __post_init__(self) -> None:
        d = self.mean.shape[0]
        for key in _ARRAYS:
            value = getattr(self, key)
            want = (d, d) if key == "basis" else (d,)
            if value.shape != want or not np.isfinite(value).all():
                raise CodecError(f"profile {self.name}: {key} must be finite of shape {want}")
            value.setflags(write=False)
        sha = hashlib.sha256()
        for key in _ARRAYS:
            sha.update(np.ascontiguousarray(getattr(self, key)).tobytes())
        object.__setattr__(self, "digest", sha.digest()[:4])

    @property
    def width(self) -> int:
        return int(self.mean.shape[0])

    @functools.cached_property
    def synthesis(self) -> np.ndarray:
        """``basis * gain`` in float32: ``x - mean = synthesis @ z``."""
        return np.ascontiguousarray(self.basis.astype(np.float32) * self.gain.astype(np.float32))

    @functools.cached_property
    def analysis(self) -> np.ndarray:
        """The exact inverse of :attr:`synthesis` (float32): ``z = analysis @ (x - mean)``."""
        inverse = np.linalg.inv(self.synthesis.astype(np.float64))
        return np.ascontiguousarray(inverse.astype(np.float32))

    def size_bytes(self) -> int:
        return sum(getattr(self, key).nbytes for key in _ARRAYS)

    def to_bytes(self) -> bytes:
        """The profile as an ``.npz`` file's bytes (``from_bytes`` inverts it)."""
        out = io.BytesIO()
        arrays = {key: getattr(self, key) for key in _ARRAYS}
        np.savez_compressed(out, name=np.array(self.name), **arrays)
        return out.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> Profile:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {key: np.array(z[key]) for key in _ARRAYS}
            return Profile(str(z["name"]), **arrays)


def file_name(name: str) -> str:
    """``"smollm2-135m/16"`` -> ``"smollm2-135m_16.npz"``."""
    return name.replace("/", "_") + ".npz"


def register_profile(profile: Profile) -> None:
    """Make an in-memory profile resolvable by its name (tests, ablations); replaces any earlier."""
    _MEMORY[profile.name] = profile


def shipped() -> list[str]:
    """Names of the profiles shipped as package data."""
    if not PROFILE_DIR.is_dir():
        return []
    names = []
    for path in sorted(PROFILE_DIR.glob("*.npz")):
        model, _, split = path.stem.rpartition("_")
        names.append(f"{model}/{split}")
    return names


def shipped_splits(model: str) -> list[int]:
    """The splits of ``model`` with a shipped profile, shallowest first."""
    return sorted(int(n.rpartition("/")[2]) for n in shipped() if n.startswith(f"{model}/"))


def resolve(name: str) -> Profile:
    """The profile called ``name`` (in memory first, then package data)."""
    if name in _MEMORY:
        return _MEMORY[name]
    return _load_shipped(name)


@functools.cache
def _load_shipped(name: str) -> Profile:
    path = PROFILE_DIR / file_name(name)
    if "/" not in name or not path.is_file():
        raise CodecError(
            f"slicer-llm.profile: no profile {name!r}; shipped: {shipped() or 'none'} (make one "
            "with `slicer calibrate-llm-codec --model MODEL --splits S`)"
        )
    return Profile.from_bytes(path.read_bytes())


def find_by_digest(digest: bytes, name: str) -> Profile:
    """The profile a payload names, checked against the digest it carries."""
    profile = resolve(name)
    if profile.digest != digest:
        raise CodecError(
            f"slicer-llm: the payload was coded with another version of profile {name!r} "
            f"(digest {digest.hex()}, this build has {profile.digest.hex()}); both ends need the "
            "same profile"
        )
    return profile
