"""Compiled byte writers of SLICER's body: LEB128 varints, ``entropy.write_histogram``'s sparse
histograms and the length-prefixed sections, into preallocated uint8 buffers (``buf[at[i]]``
is the next free byte of buffer ``i``)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def put_varint(buf: np.ndarray, at: np.ndarray, i: int, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        buf[at[i]] = byte | (0x80 if value else 0)
        at[i] += 1
        if not value:
            return


@njit(cache=True, nogil=True)
def put_histogram(buf: np.ndarray, at: np.ndarray, i: int, counts: np.ndarray) -> None:
    """``entropy.write_histogram``: used symbols, then (gap, count) varint pairs."""
    used = 0
    for c in counts:
        used += c != 0
    put_varint(buf, at, i, used)
    previous = -1
    for symbol in range(counts.size):
        if counts[symbol]:
            put_varint(buf, at, i, symbol - previous - 1)
            put_varint(buf, at, i, counts[symbol])
            previous = symbol


@njit(cache=True, nogil=True)
def sections(head: np.ndarray, hist: np.ndarray, words: np.ndarray) -> np.ndarray:
    """The three sections, each a varint length then its bytes (words little-endian)."""
    out = np.empty(head.size + hist.size + 4 * words.size + 30, dtype=np.uint8)
    at = np.zeros(1, dtype=np.int64)
    for part in (head, hist):
        put_varint(out, at, 0, part.size)
        out[at[0] : at[0] + part.size] = part
        at[0] += part.size
    put_varint(out, at, 0, 4 * words.size)
    for w in words:
        for shift in range(0, 32, 8):
            out[at[0]] = (w >> np.uint32(shift)) & np.uint32(0xFF)
            at[0] += 1
    return out[: at[0]]
