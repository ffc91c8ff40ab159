"""Compiled byte writers and readers of SLICER's body: LEB128 varints, ``entropy.write_histogram``'s
sparse histograms, the length-prefixed sections and the rANS words. Writers fill preallocated
uint8 buffers (``buf[at[i]]`` is the next free byte of buffer ``i``); readers are bounds-checked
and return -1 or False for anything malformed."""

from __future__ import annotations

import numpy as np
from numba import njit

from codec import _ans_decode


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


# -- readers: cur[c] is a position, cur[c + 1] its end -----------------------------------------
@njit(cache=True, nogil=True)
def get_u8(data: np.ndarray, cur: np.ndarray, c: int) -> int:
    if cur[c] >= cur[c + 1]:
        return -1
    cur[c] += 1
    return int(data[cur[c] - 1])


@njit(cache=True, nogil=True)
def get_varint(data: np.ndarray, cur: np.ndarray, c: int, limit: int) -> int:
    value, end = _ans_decode._varint(data[: cur[c + 1]], cur[c], limit)
    if end < 0:
        return -1
    cur[c] = end
    return value


@njit(cache=True, nogil=True)
def get_histogram(
    data: np.ndarray, cur: np.ndarray, c: int, alphabet: int
) -> tuple[np.ndarray, bool]:
    counts, end = _ans_decode.parse_histogram(data[: cur[c + 1]], cur[c], alphabet)
    if end < 0:
        return counts, False
    cur[c] = end
    return counts, True


@njit(cache=True, nogil=True)
def read_words(data: np.ndarray, lo: int, hi: int, dec: np.ndarray) -> tuple[np.ndarray, bool]:
    """The rANS section's words; ``dec`` gets (bulk length, state) as constriction opens them."""
    n = (hi - lo) // 4
    words = np.empty(n, dtype=np.uint32)
    for i in range(n):
        b = lo + 4 * i
        w = np.uint32(data[b]) | (np.uint32(data[b + 1]) << np.uint32(8))
        w |= (np.uint32(data[b + 2]) << np.uint32(16)) | (np.uint32(data[b + 3]) << np.uint32(24))
        words[i] = w
    if (hi - lo) % 4 or (n and words[n - 1] == 0):
        return words, False
    dec[0], dec[1] = 0, 0
    if n == 1:
        dec[1] = np.uint64(words[0])
    elif n > 1:
        dec[0] = n - 2
        dec[1] = (np.uint64(words[n - 1]) << np.uint64(32)) | np.uint64(words[n - 2])
    return words, True
