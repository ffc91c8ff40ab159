"""SLICER's body reader compiled end to end: one call of ``_read`` parses the sections, decodes
every rANS stream with the thread's cached model tables (``codec._model_bank``) and
reconstructs the values, without a Python step per stream.

It reads exactly what ``codec._slicer_stream.read`` reads and gives bit-identical values
(tested on many payloads). Every read is bounds-checked; on anything it does not accept
(a defect, a varint longer than 8 bytes, or rows stored verbatim) it returns a failure and
``read`` hands the body to the Python reader, which decodes it or raises the exact
``CodecError``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from codec import (
    _ans_code,
    _ans_decode,
    _body_bytes,
    _cost_kernels,
    _model_bank,
    _slicer_stream,
    _survivors,
)
from codec._model_bank import GEOM_BASE, MASK_BASE, SIDE_ALPHABETS, SIGN_BASE, UNIFORM_BASE
from codec._slicer_plan import LEVELS_F32, cut_values

N_LEVELS = 16
CUT_LIMIT = 4 * 4096  # |grid index| the reader accepts (``_slicer_stream``)
_LEVELS = np.array(_model_bank.LEVELS, dtype=np.int64)


@functools.cache
def cut_table() -> np.ndarray:
    """``cut_values`` of every grid index the reader accepts, from ``-CUT_LIMIT``."""
    with np.errstate(over="ignore"):
        return cut_values(np.arange(-CUT_LIMIT, CUT_LIMIT + 1))


def read(body: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 values of a SLICER body (flat), as ``_slicer_stream.read``."""
    numel = math.prod(shape)
    if numel:
        fixed, bank = _model_bank.fixed_models(), _model_bank.bank()
        tables = (bank.left, bank.buckets, bank.slot_of, fixed.probs, fixed.meta)
        data = np.frombuffer(body, dtype=np.uint8)
        n_rows = shape[0] if len(shape) >= 2 else 0
        out, ok = _read(data, numel, n_rows, tables, cut_table(), LEVELS_F32, _LEVELS)
        if ok:
            return out
    return _slicer_stream.read(body, shape)


# -- models and streams ---------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _take_fixed(
    words: np.ndarray,
    dec: np.ndarray,
    tables: _model_bank.Tables,
    number: int,
    out: np.ndarray,
    start: int,
    count: int,
) -> None:
    """Decode ``count`` symbols into ``out[start:]`` under fixed model ``number``."""
    if count == 0:
        return
    left, buckets, slot_of, probs, meta = tables
    slot = _model_bank.fixed_slot(left, buckets, slot_of, probs, meta, number)
    pos, state = _ans_code.take(
        words,
        np.int64(dec[0]),
        dec[1],
        left[slot],
        buckets[slot],
        meta[number, 1],
        meta[number, 2],
        out,
        start,
        count,
    )
    dec[0], dec[1] = pos, state


@njit(cache=True, nogil=True)
def _take_hist(
    words: np.ndarray,
    dec: np.ndarray,
    tables: _model_bank.Tables,
    counts: np.ndarray,
    total: float,
    out: np.ndarray,
    start: int,
    count: int,
) -> None:
    """Decode ``count`` symbols into ``out[start:]`` under the histogram ``counts / total``."""
    if count == 0:
        return
    left, buckets = tables[0], tables[1]
    slot = _model_bank.histogram_slot(left, buckets, counts, total)
    pos, state = _ans_code.take(
        words,
        np.int64(dec[0]),
        dec[1],
        left[slot],
        buckets[slot],
        counts.size,
        _model_bank.pack_factor(counts.size),
        out,
        start,
        count,
    )
    dec[0], dec[1] = pos, state


@njit(cache=True, nogil=True)
def _side(
    data: np.ndarray,
    cur: np.ndarray,
    words: np.ndarray,
    dec: np.ndarray,
    tables: _model_bank.Tables,
    which: int,
    count: int,
) -> tuple[np.ndarray, bool]:
    """``count`` side values under the model ``_slicer_side.side_model`` reads from the head
    (universal of ``SIDE_ALPHABETS[which]``, or a histogram)."""
    alphabet = SIDE_ALPHABETS[which]
    out = np.zeros(count, dtype=np.int64)
    flag = _body_bytes.get_u8(data, cur, 0)
    if flag == 0:
        _take_fixed(words, dec, tables, which, out, 0, count)
        return out, True
    if flag != 1:
        return out, False
    counts, ok = _body_bytes.get_histogram(data, cur, 0, alphabet)
    total = counts.sum()
    if not ok or total <= 0:
        return out, False
    _take_hist(words, dec, tables, counts, total, out, 0, count)
    return out, True


@njit(cache=True, nogil=True)
def _unzigzag(z: int) -> int:
    return z // 2 if z % 2 == 0 else -(z + 1) // 2


# -- the body -------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _sections(data: np.ndarray, cur: np.ndarray) -> int:
    """Head, histograms and rANS section as cursors 0, 2 and 4; returns where they end (-1:
    malformed)."""
    at = 0
    for c in (0, 2, 4):
        length, end = _ans_decode._varint(data, at, data.size - at)
        if end < 0 or length > data.size - end:
            return -1
        cur[c], cur[c + 1] = end, end + length
        at = end + length
    return at


@njit(cache=True, nogil=True)
def _side_info(
    data: np.ndarray,
    cur: np.ndarray,
    words: np.ndarray,
    dec: np.ndarray,
    tables: _model_bank.Tables,
    n_rows: int,
    nb: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """(presence [R, 2], mask levels, cut grid indices, bitwidths, ok) of rows that all store
    normally (any other row mode fails: the Python reader takes those)."""
    present = np.zeros((n_rows, 2), dtype=np.bool_)
    level = np.zeros(n_rows, dtype=np.int64)
    q = np.zeros((n_rows, 2, nb + 1), dtype=np.int64)
    bits = np.zeros((n_rows, 2, nb), dtype=np.int64)
    mode, ok = _side(data, cur, words, dec, tables, 0, n_rows)
    if not ok or mode.any():
        return present, level, q, bits, False
    code, ok1 = _side(data, cur, words, dec, tables, 1, n_rows)
    for r in range(n_rows):
        present[r, 0], present[r, 1] = code[r] % 2 == 1, code[r] >= 2
    lv, ok2 = _side(data, cur, words, dec, tables, 3, n_rows)
    level[:] = lv
    first = _body_bytes.get_varint(data, cur, 0, 2**20)
    n_present = int(present.sum())
    if not (ok1 and ok2) or first < 0 or n_present == 0:
        return present, level, q, bits, ok1 and ok2 and first >= 0
    dq0, ok3 = np.zeros(0, dtype=np.int64), True
    if n_present > 1:  # the writer stores no first-cut deltas (nor their model) otherwise
        dq0, ok3 = _side(data, cur, words, dec, tables, 4, n_present - 1)
    dq, ok4 = _side(data, cur, words, dec, tables, 4, n_present * nb)
    b, ok5 = _side(data, cur, words, dec, tables, 2, n_present * nb)
    if not (ok3 and ok4 and ok5):
        return present, level, q, bits, False
    q0 = _unzigzag(first)
    i = 0
    for r in range(n_rows):
        for s in range(2):
            if present[r, s]:
                q0 += _unzigzag(dq0[i - 1]) if i else 0
                q[r, s, 0] = q0
                for j in range(nb):
                    q[r, s, j + 1] = q[r, s, j] + dq[i * nb + j]
                    bits[r, s, j] = b[i * nb + j]
                i += 1
    return present, level, q, bits, np.abs(q).max() <= CUT_LIMIT


@njit(cache=True, nogil=True)
def _masks(
    words: np.ndarray, dec: np.ndarray, tables: _model_bank.Tables, level: np.ndarray, n: int
) -> np.ndarray:
    """The kept mask [R, n] (uint8): all, none, or Bernoulli-coded per level, in level order."""
    n_rows = level.size
    kept = np.zeros((n_rows, n), dtype=np.uint8)
    for r in range(n_rows):
        if level[r] == 64:
            kept[r] = 1
    for lv in range(1, 64):
        n_sel = 0
        for r in range(n_rows):
            n_sel += level[r] == lv
        if n_sel == 0:
            continue
        bits = np.empty(n_sel * n, dtype=np.uint8)
        _take_fixed(words, dec, tables, MASK_BASE + lv, bits, 0, n_sel * n)
        i = 0
        for r in range(n_rows):
            if level[r] == lv:
                kept[r] = bits[i * n : (i + 1) * n]
                i += 1
    return kept


@njit(cache=True, nogil=True)
def _signs_and_ids(
    data: np.ndarray,
    cur: np.ndarray,
    words: np.ndarray,
    dec: np.ndarray,
    tables: _model_bank.Tables,
    n_kept: int,
    nb: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Each survivor's sign (uint8, 1 negative), then the block ids (uint8) of the positive and
    of the negative survivors."""
    neg = np.zeros(n_kept, dtype=np.uint8)
    sign_level = _body_bytes.get_varint(data, cur, 0, 256)
    if 0 < sign_level < 256:
        _take_fixed(words, dec, tables, SIGN_BASE + sign_level, neg, 0, n_kept)
    elif sign_level == 256:
        neg[:] = 1
    n_neg = int(neg.sum())
    ids = (np.zeros(n_kept - n_neg, dtype=np.uint8), np.zeros(n_neg, dtype=np.uint8))
    ok = sign_level >= 0
    for s in range(2):
        flag = _body_bytes.get_u8(data, cur, 0)
        if flag == 1:
            counts, good = _body_bytes.get_histogram(data, cur, 0, nb)
            ok &= good
            total = max(counts.sum(), 1.0)
            _take_hist(words, dec, tables, counts, total, ids[s], 0, ids[s].size)
        elif flag == 0:
            if nb > 1:
                _take_fixed(words, dec, tables, UNIFORM_BASE + nb, ids[s], 0, ids[s].size)
        else:
            ok = False
        if not ok:
            break
    return neg, ids[0], ids[1], ok


@njit(cache=True, nogil=True)
def _codes(
    data: np.ndarray,
    cur: np.ndarray,
    words: np.ndarray,
    dec: np.ndarray,
    tables: _model_bank.Tables,
    keys: np.ndarray,
    offsets: np.ndarray,
    nb: int,
    levels: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """The survivors' codes sorted by group: each group's model level (a side stream), then its
    codes under that geometric model or its histogram (read from cursor 2)."""
    by_group = np.zeros(offsets[-1], dtype=np.uint8)  # codes are below 256
    rho, ok = np.zeros(0, dtype=np.int64), True
    if keys.size:
        rho, ok = _side(data, cur, words, dec, tables, 3, keys.size)
    if not ok or cur[0] != cur[1]:
        return by_group, False
    for g in range(keys.size):
        number = keys[g]
        b = number % N_LEVELS
        start, stop = offsets[number], offsets[number + 1]
        if rho[g] == 64:
            counts, good = _body_bytes.get_histogram(data, cur, 2, levels[b])
            if not good:
                return by_group, False
            total = max(counts.sum(), 1.0)
            _take_hist(words, dec, tables, counts, total, by_group, start, stop - start)
        else:
            model = GEOM_BASE + rho[g] * 16 + b
            _take_fixed(words, dec, tables, model, by_group, start, stop - start)
    return by_group, cur[2] == cur[3] and dec[0] == 0 and dec[1] == 0


@njit(cache=True, nogil=True)
def _read(
    data: np.ndarray,
    numel: int,
    shape0: int,
    tables: _model_bank.Tables,
    cuts_at: np.ndarray,
    levels_f32: np.ndarray,
    levels: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """Float32 values (flat) of a non-empty body and whether it was read; ``shape0`` is the
    tensor's first dimension (0 for a tensor of fewer than 2 dims)."""
    failed = np.zeros(0, dtype=np.float32)
    cur = np.zeros(6, dtype=np.int64)
    dec = np.zeros(2, dtype=np.uint64)
    end = _sections(data, cur)
    if end != data.size:  # also where rows follow verbatim: the Python reader takes those
        return failed, False
    words, ok = _body_bytes.read_words(data, cur[4], cur[5], dec)
    nb, granularity = _body_bytes.get_u8(data, cur, 0), _body_bytes.get_u8(data, cur, 0)
    if not ok or not 1 <= nb <= 16 or not 0 <= granularity <= 1:
        return failed, False
    n_rows = 1 if granularity == 1 or shape0 == 0 else shape0
    n = numel // n_rows
    present, level, q, bits, ok = _side_info(data, cur, words, dec, tables, n_rows, nb)
    if not ok:
        return failed, False
    kept = _masks(words, dec, tables, level, n)
    for r in range(n_rows):
        if not (present[r, 0] or present[r, 1]) and kept[r].any():
            return failed, False
    pos, row_start = _survivors.positions(kept)
    neg, ids_pos, ids_neg, ok = _signs_and_ids(data, cur, words, dec, tables, pos.size, nb)
    if not ok:
        return failed, False
    offsets, ok = _survivors.group_counts(row_start, neg, ids_pos, ids_neg, bits, present, N_LEVELS)
    if not ok:
        return failed, False
    keys = _cost_kernels.group_numbers(bits, present, N_LEVELS)
    by_group, ok = _codes(data, cur, words, dec, tables, keys, offsets, nb, levels)
    if not ok:
        return failed, False
    cuts = np.empty(q.shape, dtype=np.float32)
    for r in range(n_rows):
        for s in range(2):
            for j in range(nb + 1):
                cuts[r, s, j] = cuts_at[q[r, s, j] + CUT_LIMIT]
    out = _survivors.reconstruct_merged(
        pos, row_start, neg, ids_pos, ids_neg, by_group, offsets, bits, cuts, levels_f32, n
    )
    return out.reshape(-1), True
