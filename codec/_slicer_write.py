"""SLICER's body writer compiled end to end: one call of ``_write`` chooses every stream's model,
writes the head and histogram sections and rANS-codes all streams (``codec._ans_code``, the
words constriction writes) with the thread's cached model tables (``codec._model_bank``).

Its bytes are exactly those of ``codec._slicer_stream.write`` (tested on many plans), which
stays the reference and the path for anything this one refuses (a side value outside its
alphabet, where the Python writer raises the exact ``CodecError``) and for ``report``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from codec import (
    _ans_code,
    _body_bytes,
    _cost_kernels,
    _kernels,
    _model_bank,
    _slicer_side,
    _slicer_stream,
    _slicer_symbols,
)
from codec._model_bank import MASK_BASE, SIDE_ALPHABETS, SIGN_BASE, UNIFORM_BASE
from codec._slicer_plan import LEVELS, MODE_FP16, MODE_FP32, N_LEVELS, Plan, cut_values

HIST = -1  # stream model: the histogram stored with the stream


@functools.cache
def code_lengths() -> tuple[np.ndarray, np.ndarray]:
    """Flat code lengths and their starts: the universal model of each side alphabet
    (``_slicer_side.universal_code_lengths``), then every bitwidth's geometric models
    (``_slicer_stream.geometric_code_lengths``, transposed: [LEVELS[b], 64] each, b = 0..15)."""
    pieces = [_slicer_side.universal_code_lengths(a) for a in SIDE_ALPHABETS]
    pieces += [_slicer_stream.geometric_code_lengths(b).T.ravel() for b in range(N_LEVELS)]
    starts = np.cumsum([0] + [p.size for p in pieces])
    return np.concatenate(pieces), starts.astype(np.int64)


def write(
    rows: np.ndarray, plan: Plan, granularity: str, report: dict[str, float] | None = None
) -> bytes:
    """The body ``_slicer_stream.write`` gives, byte for byte."""
    if report is None:
        fixed, bank = _model_bank.fixed_models(), _model_bank.bank()
        tables = (bank.left, bank.buckets, bank.slot_of, fixed.probs, fixed.meta)
        lengths, starts = code_lengths()
        nb = plan.bits.shape[2]
        head = (nb, 0 if granularity == "row" else 1, math.log2(nb))
        out, ok = _write(
            rows,
            plan.mode,
            plan.kept,
            plan.neg,
            plan.block,
            plan.q,
            plan.bits,
            plan.present,
            head,
            tables,
            lengths,
            starts,
            cut_values(plan.q),
        )
        if ok:
            body = out.tobytes()
            if plan.mode.any():
                for mode, dt in ((MODE_FP16, "<f2"), (MODE_FP32, "<f4")):
                    body += rows[plan.mode == mode].astype(dt).tobytes()
            return body
    return _slicer_stream.write(rows, plan, granularity, report)


# -- streams: sym holds every stream's symbols back to back, streams[t] = (start, count, model
# or alphabet, counts start or -1, pad); hc holds the histogram models' counts ---------------
@njit(cache=True, nogil=True)
def _add(
    sym: np.ndarray,
    streams: np.ndarray,
    at: np.ndarray,
    hc: np.ndarray,
    values: np.ndarray,
    model: int,
    counts: np.ndarray,
    pad: int,
) -> None:
    """Queue a stream (nothing for an empty one) under fixed ``model`` or, for HIST, ``counts``."""
    if values.size == 0:
        return
    sym[at[3] : at[3] + values.size] = values
    _register(streams, at, hc, at[3], values.size, model, counts, pad)
    at[3] += values.size


@njit(cache=True, nogil=True)
def _register(
    streams: np.ndarray,
    at: np.ndarray,
    hc: np.ndarray,
    start: int,
    count: int,
    model: int,
    counts: np.ndarray,
    pad: int,
) -> None:
    """Queue the ``count`` symbols already at ``sym[start:]`` (nothing for none)."""
    if count == 0:
        return
    t = at[2]
    streams[t, 0], streams[t, 1], streams[t, 2], streams[t, 4] = start, count, model, pad
    streams[t, 3] = -1
    if model == HIST:
        streams[t, 3] = at[4]
        streams[t, 2] = counts.size
        hc[at[4] : at[4] + counts.size] = counts
        at[4] += counts.size
    at[2] += 1


@njit(cache=True, nogil=True)
def _argmax(counts: np.ndarray) -> int:
    best = 0
    for i in range(counts.size):
        if counts[i] > counts[best]:
            best = i
    return best


@njit(cache=True, nogil=True)
def _put_side(
    head: np.ndarray,
    sym: np.ndarray,
    streams: np.ndarray,
    at: np.ndarray,
    hc: np.ndarray,
    values: np.ndarray,
    which: int,
    lengths: np.ndarray,
    starts: np.ndarray,
    meta: np.ndarray,
) -> bool:
    """``_slicer_side.put_side``: the model flag (and histogram) into the head, the values
    queued; False for a value outside the alphabet of ``SIDE_ALPHABETS[which]``."""
    if values.size == 0:
        return True
    alphabet = SIDE_ALPHABETS[which]
    universal = lengths[starts[which] : starts[which + 1]]
    if 8 * values.size < alphabet:  # no counts array unless the histogram wins
        universal_bits, hist_bits = _cost_kernels.sparse_side_bits(values, alphabet, universal)
        counts = values[:0]
    else:
        counts, universal_bits, hist_bits = _cost_kernels.side_choice(values, alphabet, universal)
    if universal_bits < 0:
        return False
    if hist_bits < universal_bits:
        counts, _, _ = _cost_kernels.side_choice(values, alphabet, universal)
        head[at[0]] = 1
        at[0] += 1
        _body_bytes.put_histogram(head, at, 0, counts)
        _add(sym, streams, at, hc, values, HIST, counts, _argmax(counts))
    else:
        head[at[0]] = 0
        at[0] += 1
        _add(sym, streams, at, hc, values, which, counts, meta[which, 3])
    return True


@njit(cache=True, nogil=True)
def _masks_and_signs(
    head: np.ndarray,
    streams: np.ndarray,
    at: np.ndarray,
    hc: np.ndarray,
    mask_at: np.ndarray,
    level: np.ndarray,
    n: int,
    signs: np.ndarray,
    signs_at: int,
    meta: np.ndarray,
) -> None:
    """The kept mask of the rows of each level strictly between none and all, in level order,
    then the sign level (a varint) and the survivors' signs (all already in ``sym``)."""
    none = np.zeros(0, dtype=np.int64)
    for lv in range(1, 64):
        first, n_sel = -1, 0
        for r in range(level.size):
            if mask_at[r] >= 0 and level[r] == lv:
                first = mask_at[r] if first < 0 else first
                n_sel += 1
        if n_sel:
            number = MASK_BASE + lv
            _register(streams, at, hc, first, n_sel * n, number, none, meta[number, 3])
    n_neg = int(signs.sum())
    sign_level = 0
    if signs.size:
        sign_level = min(max(int(np.rint(256 * n_neg / signs.size)), 1), 255)
        if n_neg == 0 or n_neg == signs.size:
            sign_level = 0 if n_neg == 0 else 256
    _body_bytes.put_varint(head, at, 0, sign_level)
    if 0 < sign_level < 256:
        number = SIGN_BASE + sign_level
        _register(streams, at, hc, signs_at, signs.size, number, none, meta[number, 3])


@njit(cache=True, nogil=True)
def _block_ids(
    head: np.ndarray,
    sym: np.ndarray,
    streams: np.ndarray,
    at: np.ndarray,
    hc: np.ndarray,
    ids_at: np.ndarray,
    n_ids: np.ndarray,
    nb: int,
    log2_nb: float,
    meta: np.ndarray,
) -> None:
    """Per sign, the survivors' block ids (already at ``sym[ids_at[s]:]``) under their
    histogram where smaller, else uniform."""
    none = np.zeros(0, dtype=np.int64)
    for s in range(2):
        ids = sym[ids_at[s] : ids_at[s] + n_ids[s]]
        counts, _, hist_bits = _cost_kernels.side_choice(ids, nb, np.zeros(nb))
        if nb > 1 and ids.size and hist_bits < ids.size * log2_nb:
            head[at[0]] = 1
            at[0] += 1
            _body_bytes.put_histogram(head, at, 0, counts)
            _register(streams, at, hc, ids_at[s], ids.size, HIST, counts, _argmax(counts))
        else:
            head[at[0]] = 0
            at[0] += 1
            if nb > 1:
                number = UNIFORM_BASE + nb
                _register(streams, at, hc, ids_at[s], ids.size, number, none, meta[number, 3])


@njit(cache=True, nogil=True)
def _codes(
    head: np.ndarray,
    hist: np.ndarray,
    sym: np.ndarray,
    streams: np.ndarray,
    at: np.ndarray,
    hc: np.ndarray,
    codes: np.ndarray,
    groups: np.ndarray,
    codes_at: int,
    keys: np.ndarray,
    nb: int,
    lengths: np.ndarray,
    starts: np.ndarray,
    meta: np.ndarray,
) -> None:
    """Each group's code model (geometric level, or its histogram into ``hist``), the levels
    as a side stream, then every group's codes (sorted by group into ``sym[codes_at:]``, which
    ``at[3]`` is past)."""
    offsets = _kernels.group_offsets(groups, 2 * nb * N_LEVELS)
    cursor = offsets[:-1] + codes_at
    for i in range(codes.size):
        sym[cursor[groups[i]]] = codes[i]
        cursor[groups[i]] += 1
    by_group = sym[codes_at : codes_at + codes.size]
    rho = np.empty(keys.size, dtype=np.int64)
    chosen = np.empty(keys.size, dtype=np.int64)  # model number, or HIST
    counts_at = np.empty(keys.size + 1, dtype=np.int64)
    counts_at[0] = 0
    all_counts = np.empty(keys.size * 256, dtype=np.int64)
    for g in range(keys.size):
        b = keys[g] % N_LEVELS
        alphabet = LEVELS[b]
        sel = by_group[offsets[keys[g]] : offsets[keys[g] + 1]]
        geometric = lengths[starts[len(SIDE_ALPHABETS) + b] : starts[len(SIDE_ALPHABETS) + b + 1]]
        counts, level, best_bits, hist_bits = _cost_kernels.code_choice_t(
            sel, geometric.reshape(alphabet, 64)
        )
        all_counts[counts_at[g] : counts_at[g] + alphabet] = counts
        counts_at[g + 1] = counts_at[g] + alphabet
        if hist_bits < best_bits:
            rho[g], chosen[g] = 64, HIST
            _body_bytes.put_histogram(hist, at, 1, counts)
        else:
            rho[g], chosen[g] = level, _model_bank.GEOM_BASE + level * 16 + b
    _put_side(head, sym, streams, at, hc, rho, 3, lengths, starts, meta)
    for g in range(keys.size):
        sel = by_group[offsets[keys[g]] : offsets[keys[g] + 1]]
        counts = all_counts[counts_at[g] : counts_at[g + 1]]
        pad = _argmax(counts) if chosen[g] == HIST else meta[chosen[g], 3]
        _register(streams, at, hc, codes_at + offsets[keys[g]], sel.size, chosen[g], counts, pad)


@njit(cache=True, nogil=True)
def _encode(
    sym: np.ndarray, streams: np.ndarray, n_streams: int, hc: np.ndarray, tables: _model_bank.Tables
) -> np.ndarray:
    """All queued streams on one rANS stack, the last first: the words (uint32)."""
    left, buckets, slot_of, probs, meta = tables
    words = np.empty(sym.size + 2, dtype=np.uint32)
    n_words, state = 0, np.uint64(0)
    for t in range(n_streams - 1, -1, -1):
        start, count, model, counts_at, pad = streams[t]
        if counts_at >= 0:
            counts = hc[counts_at : counts_at + model]
            slot = _model_bank.histogram_slot(left, buckets, counts, counts.sum())
            alphabet, k = model, _model_bank.pack_factor(model)
        else:
            slot = _model_bank.fixed_slot(left, buckets, slot_of, probs, meta, model)
            alphabet, k = meta[model, 1], meta[model, 2]
        n_words, state = _ans_code.encode_reverse(
            words, n_words, state, sym[start : start + count], alphabet, k, pad, left[slot]
        )
    return words[: _ans_code.finish(words, n_words, state)]


@njit(cache=True, nogil=True)
def _write(
    rows: np.ndarray,
    mode: np.ndarray,
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    q: np.ndarray,
    bits: np.ndarray,
    present: np.ndarray,
    layout: tuple[int, int, float],
    tables: _model_bank.Tables,
    lengths: np.ndarray,
    starts: np.ndarray,
    cuts: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """The body's three sections (uint8) of a plan, and False where a side value is outside
    its alphabet; ``layout`` is (block count, granularity flag, log2 of the block count)."""
    nb, granularity, log2_nb = layout
    meta = tables[4]
    n_rows, n = kept.shape
    normal = mode == 0
    kept = kept & normal.reshape(-1, 1)
    present = present & normal.reshape(-1, 1)
    total = kept.sum()
    # every symbol is below 4096: int16 (side streams, masks, signs, 2 id regions, codes)
    sym = np.empty(n_rows * (n + 5 + 4 * nb) + 4 * total + 1200, dtype=np.int16)
    streams = np.empty((n_rows * 2 + 1200, 5), dtype=np.int64)
    keys = _cost_kernels.group_numbers(bits, present, N_LEVELS)
    hc = np.empty(8448 + 256 * keys.size, dtype=np.int64)  # every histogram model's counts
    head = np.empty(1024 + 12 * (n_rows * (5 + 4 * nb) + 600), dtype=np.uint8)
    hist = np.empty(4096 + 12 * min(total, 512 * 256), dtype=np.uint8)
    at = np.zeros(5, dtype=np.int64)
    head[0], head[1] = nb, granularity
    at[0] = 2
    level = _slicer_symbols.row_levels(kept)
    dq0, dq, b, first = _slicer_symbols.side_values(q, bits, present)
    pres = present[:, 0].astype(np.int64) + 2 * present[:, 1].astype(np.int64)
    ok = _put_side(head, sym, streams, at, hc, mode, 0, lengths, starts, meta)
    ok &= _put_side(head, sym, streams, at, hc, pres[normal], 1, lengths, starts, meta)
    ok &= _put_side(head, sym, streams, at, hc, level[normal], 3, lengths, starts, meta)
    _body_bytes.put_varint(head, at, 0, first)
    for values, which in ((dq0, 4), (dq, 4), (b, 2)):
        ok &= _put_side(head, sym, streams, at, hc, values, which, lengths, starts, meta)
    if not ok:
        return head[:0], False
    mask_at, signs_at, ids_at, codes_at = _slicer_symbols.regions(level, normal, n, at[3], total)
    codes, groups, n_ids = _slicer_symbols.survivor_streams(
        sym, mask_at, signs_at, ids_at, rows, kept, neg, block, bits, cuts
    )
    signs = sym[signs_at : signs_at + total]
    _masks_and_signs(head, streams, at, hc, mask_at, level, n, signs, signs_at, meta)
    _block_ids(head, sym, streams, at, hc, ids_at, n_ids, nb, log2_nb, meta)
    at[3] = codes_at + total
    _codes(
        head, hist, sym, streams, at, hc, codes, groups, codes_at, keys, nb, lengths, starts, meta
    )
    words = _encode(sym[: at[3]], streams, at[2], hc, tables)
    return _body_bytes.sections(head[: at[0]], hist[: at[1]], words), True
