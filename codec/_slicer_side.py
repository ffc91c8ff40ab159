"""SLICER's side streams: small non-negative integers (row modes, mask levels, cut deltas,
bitwidths, code-model levels), each coded with its own histogram or a fixed universal model,
whichever is smaller, plus the zigzag map that folds signed deltas onto them.

``put_side`` writes a one-byte model flag (and the histogram) to the head and queues the
values on the rANS stack; ``side_model`` reads the flag back and returns the same model.
"""

from __future__ import annotations

import functools

import numpy as np

from codec import _cost_kernels, entropy
from codec.bitstream import Reader
from codec.errors import CodecError


def zigzag(v: np.ndarray) -> np.ndarray:
    """Signed to non-negative: 0, -1, 1, -2, ... become 0, 1, 2, 3, ..."""
    return np.where(v >= 0, 2 * v, -2 * v - 1).astype(np.int64)


def unzigzag(z: np.ndarray) -> np.ndarray:
    """The inverse of ``zigzag``."""
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2).astype(np.int64)


@functools.lru_cache(maxsize=16)
def universal(alphabet: int) -> np.ndarray:
    """A fixed model for small non-negative integers: about 2*log2(v+1)+1 bits for v (built
    once per alphabet; read-only)."""
    v = np.arange(alphabet, dtype=np.float64)
    model = entropy._normalise(np.exp2(-(2 * np.floor(np.log2(v + 1)) + 1)))
    model.setflags(write=False)
    return model


def put_side(
    head: bytearray, coder: entropy.StreamEncoder, values: np.ndarray, alphabet: int
) -> None:
    """Queue ``values`` on ``coder`` and write their model's flag (and histogram) to ``head``."""
    values = np.asarray(values, dtype=np.int64).ravel()
    if values.size == 0:
        return
    counts, universal_bits, hist_bits = _cost_kernels.side_choice(
        values, alphabet, universal_code_lengths(alphabet)
    )
    if universal_bits < 0:
        raise CodecError(f"slicer: side value outside its alphabet of {alphabet}")
    if hist_bits < universal_bits:
        head.append(1)
        entropy.write_histogram(head, counts)
        coder.add(values, counts / counts.sum())
    else:
        head.append(0)
        coder.add(values, universal(alphabet))


@functools.lru_cache(maxsize=16)
def universal_code_lengths(alphabet: int) -> np.ndarray:
    """-log2 of ``universal(alphabet)`` as the coder sees it (read-only)."""
    lengths = -np.log2(entropy._normalise(universal(alphabet)))
    lengths.setflags(write=False)
    return lengths


def side_model(reader: Reader, alphabet: int) -> np.ndarray:
    """The model ``put_side`` chose, read back from the head."""
    flag = reader.u8()
    if flag == 0:
        return universal(alphabet)
    if flag != 1:
        raise CodecError(f"slicer: unknown side-stream model flag {flag}")
    counts = entropy.read_histogram(reader, alphabet)
    if counts.sum() <= 0:
        raise CodecError("slicer: empty side-stream histogram")
    return counts / counts.sum()
