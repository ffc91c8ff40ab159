"""The rANS intermediate-feature codec: integer quantisation, CSR sparsity, entropy coding.

The whole tensor is quantised asymmetrically to ``bits`` bits. The range is widened to include
zero (``lo = min(x.min(), 0)``, ``hi = max(x.max(), 0)``), ``scale = (hi - lo) / (2**bits - 1)``
and the integer zero point is ``z = round(-lo / scale)``, so exact zeros map to ``z`` and decode
to exactly 0; ``q = clip(round(x / scale) + z, 0, 2**bits - 1)`` and ``x_hat = (q - z) * scale``.
Entries with ``q == z`` are the sparse zeros. The flattened codes are cut into rows of ``width``
(the last row padded with zeros) and stored in CSR form: the nonzero count of every row, the
column of every nonzero (absolute, or as the gap to the previous nonzero of its row, whichever
the estimate prefers) and its code ``q``. ``width`` is picked among powers of two from 16 to 4096
and the last dimension by the estimated coded size (empirical entropies plus histograms).

Every stream is rANS coded with its empirical histogram as side information. A stream may be
split into a high and a low part (``s >> low``, ``s & (2**low - 1)``) coded as two streams; the
encoder picks ``low`` per stream by the estimated size. A split is required when the alphabet
exceeds ``entropy.SUPER_ALPHABET`` (values for ``bits > 12``, rows of 4096 or more) and often
pays below it, because a large histogram costs more side info than the split loses.

Body (after the container header)::

    bits     u8       2..16 (absent for an empty tensor, which has an empty body)
    scale    f32      0 means every value is zero; nothing follows
    z        varint   zero point, <= 2**bits - 1
    width    varint   1..min(numel, 65536)
    mode     u8       0: absolute column indices, 1: column gaps within a row
    nnz      varint   number of nonzeros, <= numel
    streams  for row counts, columns and values: u8 low-part bits (0: not split), then the
             histogram of every part
    rans     section  the streams, in that order
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from codec import entropy
from codec.base import Codec, check_number
from codec.bitstream import Reader, write_section, write_varint
from codec.errors import CodecError
from codec.registry import register

#: Widest row the format allows: column alphabets stay small enough to split into two streams.
MAX_WIDTH = 65536
WIDTH_CANDIDATES = tuple(2**k for k in range(4, 13))  # 16 .. 4096
ABSOLUTE, GAPS = 0, 1
_F32_MAX = float(np.finfo(np.float32).max)


# -- streams: alphabets, splitting, cost estimates --------------------------------------------
def _split_options(alphabet: int) -> list[int]:
    """Allowed low-part bit counts for a stream of this alphabet (0: coded whole). Both parts
    must fit one rANS model of at most ``entropy.SUPER_ALPHABET`` symbols."""
    if alphabet <= 2:
        return [0]
    top = math.ceil(math.log2(alphabet))
    lows = list(range(max(1, top - 12), min(12, top - 1) + 1))
    return [0, *lows] if alphabet <= entropy.SUPER_ALPHABET else lows


def _default_low(alphabet: int) -> int:
    """The split used while estimating layouts: whole if it fits, else about half the bits."""
    if alphabet <= entropy.SUPER_ALPHABET:
        return 0
    return (math.ceil(math.log2(alphabet)) + 1) // 2


def _part_alphabets(alphabet: int, low: int) -> list[int]:
    if not low:
        return [alphabet]
    return [-(-alphabet // (1 << low)), 1 << low]


def _parts(symbols: np.ndarray, alphabet: int, low: int) -> list[tuple[np.ndarray, int]]:
    """The streams one symbol stream is coded as: itself, or its high and low parts. Parts of a
    one-symbol alphabet carry no information (and constriction refuses such a model): dropped."""
    pieces = [symbols] if not low else [symbols >> low, symbols & ((1 << low) - 1)]
    alphabets = _part_alphabets(alphabet, low)
    return [(p, a) for p, a in zip(pieces, alphabets, strict=True) if a > 1]


def _varint_bytes(values: np.ndarray) -> int:
    """Total size of these non-negative integers as LEB128 varints."""
    v = np.asarray(values, dtype=np.int64)
    size = np.ones(v.shape, dtype=np.int64)
    for shift in range(7, 63, 7):
        size += v >= (1 << shift)
    return int(size.sum())


def _stream_cost(symbols: np.ndarray, alphabet: int, low: int) -> float:
    """Estimated bytes of a stream: empirical entropy plus ``write_histogram`` side info."""
    total = 0.0
    for part, part_alphabet in _parts(symbols, alphabet, low):
        counts = np.bincount(part, minlength=part_alphabet)
        used = np.flatnonzero(counts)
        nz = counts[used].astype(np.float64)
        if part.size:
            total += float(-(nz * np.log2(nz / part.size)).sum()) / 8
        gaps = np.diff(used, prepend=-1) - 1
        total += _varint_bytes(np.array([used.size])) + _varint_bytes(gaps)
        total += _varint_bytes(counts[used])
    return total


def _best_low(symbols: np.ndarray, alphabet: int) -> int:
    options = _split_options(alphabet)
    costs = [_stream_cost(symbols, alphabet, low) for low in options]
    return options[int(np.argmin(costs))]


def _columns(positions: np.ndarray, width: int, mode: int) -> tuple[np.ndarray, np.ndarray]:
    """Row of every nonzero, and its column symbol (absolute, or gap within its row)."""
    rows = positions // width
    cols = positions - rows * width
    if mode == ABSOLUTE or positions.size == 0:
        return rows, cols
    first = np.ones(positions.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    gaps = np.empty_like(cols)
    gaps[first] = cols[first]
    inner = ~first
    gaps[inner] = (positions[1:] - positions[:-1] - 1)[inner[1:]]
    return rows, gaps


def _candidates(shape: tuple[int, ...], n: int) -> list[int]:
    widths = {w for w in WIDTH_CANDIDATES if w <= n} | {min(n, WIDTH_CANDIDATES[0])}
    if shape and 1 <= shape[-1] <= MAX_WIDTH:
        widths.add(shape[-1])
    return sorted(widths)


def _choose_layout(positions: np.ndarray, shape: tuple[int, ...], n: int) -> tuple[int, int]:
    """(width, mode) with the smallest estimated size of the row-count and column streams."""
    best: tuple[float, int, int] | None = None
    for width in _candidates(shape, n):
        n_rows = -(-n // width)
        row_cost = -1.0
        for mode in (ABSOLUTE, GAPS):
            rows, cols = _columns(positions, width, mode)
            if row_cost < 0:
                row_counts = np.bincount(rows, minlength=n_rows)
                row_cost = _stream_cost(row_counts, width + 1, _default_low(width + 1))
            cost = row_cost + _stream_cost(cols, width, _default_low(width))
            if best is None or cost < best[0]:
                best = (cost, width, mode)
    assert best is not None
    return best[1], best[2]


# -- coding -------------------------------------------------------------------------------------
def _write_stream(
    out: bytearray, coder: entropy.StreamEncoder, symbols: np.ndarray, alphabet: int
) -> None:
    """The split (u8 low-part bits) and the histograms; the symbols go to ``coder``."""
    low = _best_low(symbols, alphabet)
    out.append(low)
    for part, part_alphabet in _parts(symbols, alphabet, low):
        counts = np.bincount(part, minlength=part_alphabet).astype(np.float64)
        entropy.write_histogram(out, counts)
        coder.add(part, counts)


def _read_models(
    reader: Reader, alphabet: int, length: int, what: str
) -> tuple[int, list[np.ndarray]]:
    """Inverse of ``_write_stream``'s side info: (low-part bits, histogram of every part)."""
    low = reader.u8()
    if low not in _split_options(alphabet):
        raise CodecError(f"rans: {what} split into {low} low bits, invalid for {alphabet} symbols")
    models = []
    for part_alphabet in _part_alphabets(alphabet, low):
        if part_alphabet <= 1:
            continue
        counts = entropy.read_histogram(reader, part_alphabet)
        total = int(counts.astype(np.int64).sum())
        if total != length:
            raise CodecError(f"rans: {what} histogram counts {total} symbols, expected {length}")
        models.append(counts)
    return low, models


def _take(
    decoder: entropy.StreamDecoder,
    model: tuple[int, list[np.ndarray]],
    alphabet: int,
    length: int,
    what: str,
) -> np.ndarray:
    low, histograms = model
    parts = []
    for counts in histograms:
        symbols = decoder.take(counts, length)
        found = np.bincount(symbols, minlength=counts.size)
        if not np.array_equal(found, counts.astype(np.int64)):
            raise CodecError(f"rans: decoded {what} do not match their histogram")
        parts.append(symbols)
    if not parts:
        return np.zeros(length, dtype=np.int64)
    if len(parts) == 1:
        return parts[0]
    combined: np.ndarray = (parts[0] << low) | parts[1]
    if combined.size and int(combined.max()) >= alphabet:
        raise CodecError(f"rans: a decoded {what} symbol exceeds its alphabet of {alphabet}")
    return combined


def _quantise(flat: np.ndarray, bits: int) -> tuple[float, int, np.ndarray]:
    """(scale, zero point, codes); scale 0 means the tensor is all zero."""
    levels = (1 << bits) - 1
    lo = min(float(flat.min()), 0.0)
    hi = max(float(flat.max()), 0.0)
    if hi == lo:
        return 0.0, 0, np.zeros(0, dtype=np.int64)
    scale = float(np.float32((hi - lo) / levels))
    if scale == 0.0:  # the range is subnormal: use the smallest float32 step
        scale = float(np.nextafter(np.float32(0), np.float32(1)))
    z = int(np.clip(np.rint(-lo / scale), 0, levels))
    q = np.clip(np.rint(flat.astype(np.float64) / scale) + z, 0, levels).astype(np.int64)
    return scale, z, q


def _positions(
    counts: np.ndarray, cols: np.ndarray, mode: int, width: int, n: int, nnz: int
) -> np.ndarray:
    """Flat positions of the nonzeros from per-row counts and column indices (or gaps).

    Checks the decoded streams against the header: counts sum to the number of nonzeros, no
    row or column exceeds the width, no nonzero lies in the padding, columns strictly increase.
    """
    if int(counts.sum()) != nnz:
        raise CodecError(f"rans: row counts sum to {int(counts.sum())}, header says {nnz}")
    if counts.size and int(counts.max()) > width:
        raise CodecError(f"rans: a row count {int(counts.max())} exceeds the width {width}")
    rows = np.repeat(np.arange(-(-n // width), dtype=np.int64), counts)
    if mode == GAPS:
        steps = np.cumsum(cols + 1)
        before = np.concatenate(([0], steps))[np.cumsum(counts) - counts]
        cols = steps - np.repeat(before, counts) - 1
    if cols.size and int(cols.max()) >= width:
        raise CodecError(f"rans: a column index {int(cols.max())} is >= the width {width}")
    positions = rows * width + cols
    if positions.size and int(positions.max()) >= n:
        raise CodecError(f"rans: a nonzero lies in the padding (position >= {n})")
    if positions.size > 1 and not (np.diff(positions) > 0).all():
        raise CodecError("rans: column indices are not strictly increasing within a row")
    return positions


@register
class Rans(Codec):
    """``bits``-bit asymmetric quantisation, CSR over the zero point, rANS-coded streams."""

    codec_id = "rans"
    numeric_id = 8

    def __init__(self, bits: int = 8) -> None:
        self.bits = int(check_number(self.codec_id, "bits", bits, 2, 16, integer=True))

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "bits": self.bits}

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        flat = values.ravel()
        n = flat.size
        if n == 0:
            return b""
        out = bytearray((self.bits,))
        scale, z, q = _quantise(flat, self.bits)
        out += struct.pack("<f", scale)
        if scale == 0.0:
            return bytes(out)
        positions = np.flatnonzero(q != z)
        width, mode = _choose_layout(positions, values.shape, n)
        rows, cols = _columns(positions, width, mode)
        write_varint(out, z)
        write_varint(out, width)
        out.append(mode)
        write_varint(out, positions.size)
        coder = entropy.StreamEncoder()
        _write_stream(out, coder, np.bincount(rows, minlength=-(-n // width)), width + 1)
        _write_stream(out, coder, cols, width)
        _write_stream(out, coder, q[positions], 1 << self.bits)
        write_section(out, coder.finish())
        return bytes(out)

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        n = math.prod(shape)
        reader = Reader(body, self.codec_id)
        if n == 0:
            reader.done()
            return np.zeros(0, dtype=np.float32)
        bits = reader.u8()
        if not 2 <= bits <= 16:
            raise CodecError(f"rans: payload declares {bits} bits, the format allows 2..16")
        scale = reader.f32()
        if not (math.isfinite(scale) and scale >= 0):
            raise CodecError(f"rans: payload declares an invalid scale {scale}")
        out = np.zeros(n, dtype=np.float32)
        if scale == 0.0:
            reader.done()
            return out
        levels = (1 << bits) - 1
        z = reader.varint(limit=levels)
        width = reader.varint(limit=min(n, MAX_WIDTH))
        if width < 1:
            raise CodecError("rans: payload declares a row width of 0")
        mode = reader.u8()
        if mode not in (ABSOLUTE, GAPS):
            raise CodecError(f"rans: unknown column mode {mode}")
        nnz = reader.varint(limit=n)
        n_rows = -(-n // width)
        streams = (
            (width + 1, n_rows, "row counts"),
            (width, nnz, "column indices" if mode == ABSOLUTE else "column gaps"),
            (levels + 1, nnz, "values"),
        )
        models = [_read_models(reader, a, length, what) for a, length, what in streams]
        rans = reader.section()
        reader.done()
        decoder = entropy.StreamDecoder(rans)
        counts, cols, q = (
            _take(decoder, m, a, length, what)
            for m, (a, length, what) in zip(models, streams, strict=True)
        )
        decoder.finish()

        positions = _positions(counts, cols, mode, width, n, nnz)
        if (q == z).any():
            raise CodecError("rans: a stored nonzero equals the zero point")
        restored = (q - z).astype(np.float64) * scale
        out[positions] = np.clip(restored, -_F32_MAX, _F32_MAX)
        return out
