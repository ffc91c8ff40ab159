"""SLICER's stored form: side information and rANS streams, written by ``write`` from an
encoder plan and read back by ``read``.

Body layout: ``head`` section (block count, granularity, model choices, first threshold, sign
level), ``hist`` section (empirical code histograms), one rANS section (side streams, masks,
signs, block ids, code-model levels, codes, in that order), then rows stored verbatim.
Side streams are coded as ``codec._slicer_side`` describes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from codec import _cost_kernels, _kernels, _survivors, entropy
from codec._slicer_plan import (
    LEVELS,
    LEVELS_F32,
    MODE_FP16,
    MODE_FP32,
    MODE_NORMAL,
    N_LEVELS,
    Plan,
    cut_values,
    quantize,
)
from codec._slicer_side import put_side, side_model, unzigzag, zigzag
from codec.bitstream import Reader, write_section, write_varint
from codec.errors import CodecError

MASK_LEVELS = 64  # kept fraction quantised to 1/64 for the mask model
SIGN_LEVELS = 256
RHO_LEVELS = 64  # geometric decay levels; level RHO_HISTOGRAM means "empirical histogram"
RHO_UNIFORM = 48
RHO_HISTOGRAM = RHO_LEVELS
DELTA_ALPHABET = 4096


def rho_of(level: int) -> float:
    return (level - RHO_UNIFORM) / 4.0


def write(
    rows: np.ndarray, plan: Plan, granularity: str, report: dict[str, float] | None = None
) -> bytes:
    nb = plan.bits.shape[2]
    normal = plan.mode == MODE_NORMAL
    kept = plan.kept & normal[:, None]
    present = plan.present & normal[:, None]
    head = bytearray((nb, 0 if granularity == "row" else 1))
    coder = entropy.StreamEncoder()  # one rANS stack; streams are read in this order

    level = _write_side_info(head, coder, plan, kept, present)
    _write_masks(coder, kept, normal, level)
    neg, *ids = _kernels.survivors_by_sign(kept, plan.neg, plan.block)
    _write_signs(head, coder, neg)
    _write_block_ids(head, coder, ids, nb)
    hist = _write_codes(head, coder, rows, plan, kept, present)

    out = bytearray()
    coded = coder.finish()
    write_section(out, bytes(head))
    write_section(out, bytes(hist))
    write_section(out, coded)
    if report is not None:
        report.update(
            model_bytes=len(head) + len(hist),
            coded_bytes=len(coded),
            entropy_bytes=coder.empirical_bits() / 8,
            verbatim_rows=int((plan.mode != MODE_NORMAL).sum()),
        )
    for mode, dt in ((MODE_FP16, "<f2"), (MODE_FP32, "<f4")):
        out += rows[plan.mode == mode].astype(dt).tobytes()
    return bytes(out)


def _write_side_info(
    head: bytearray,
    side: entropy.StreamEncoder,
    plan: Plan,
    kept: np.ndarray,
    present: np.ndarray,
) -> np.ndarray:
    """Row modes, presence per sign, mask levels, cuts and bitwidths; returns the mask levels."""
    n = kept.shape[1]
    normal = plan.mode == MODE_NORMAL
    put_side(head, side, plan.mode, 3)
    put_side(head, side, present[normal, 0] + 2 * present[normal, 1], 4)
    kept_n = kept.sum(axis=1)
    level = np.clip(np.rint(kept_n * MASK_LEVELS / max(n, 1)), 1, MASK_LEVELS - 1).astype(np.int64)
    level = np.where(kept_n == 0, 0, np.where(kept_n == n, MASK_LEVELS, level))
    put_side(head, side, level[normal], MASK_LEVELS + 1)
    q0 = plan.q[:, :, 0][present]
    write_varint(head, int(zigzag(q0[:1])[0]) if q0.size else 0)
    put_side(head, side, zigzag(np.diff(q0)), DELTA_ALPHABET)
    put_side(head, side, np.diff(plan.q, axis=2)[present], DELTA_ALPHABET)
    put_side(head, side, plan.bits[present], N_LEVELS)
    return level


def _write_masks(
    main: entropy.StreamEncoder, kept: np.ndarray, normal: np.ndarray, level: np.ndarray
) -> None:
    """The kept mask of every row whose level is strictly between none and all, per level."""
    for lv in np.unique(level[normal]):
        if 0 < lv < MASK_LEVELS:
            main.add(
                kept[normal & (level == lv)].astype(np.int64), entropy.bernoulli(lv / MASK_LEVELS)
            )


def _write_signs(head: bytearray, main: entropy.StreamEncoder, neg: np.ndarray) -> None:
    """The survivors' signs under a Bernoulli model; levels 0 and SIGN_LEVELS mean all one sign."""
    n_neg = int(neg.sum())  # neg: 1 for a negative survivor (int64)
    sign_level = (
        0
        if neg.size == 0
        else int(np.clip(round(SIGN_LEVELS * n_neg / neg.size), 1, SIGN_LEVELS - 1))
    )
    if neg.size and n_neg in (0, neg.size):
        sign_level = 0 if n_neg == 0 else SIGN_LEVELS
    write_varint(head, sign_level)
    if 0 < sign_level < SIGN_LEVELS:
        main.add(neg, entropy.bernoulli(sign_level / SIGN_LEVELS))


def _write_block_ids(
    head: bytearray, main: entropy.StreamEncoder, per_sign: list[np.ndarray], nb: int
) -> None:
    """The survivors' block ids per sign: their histogram where smaller, else uniform."""
    for ids in per_sign:
        counts, _, hist_bits = _cost_kernels.side_choice(ids, nb, _zero_lengths(nb))
        if nb > 1 and ids.size and hist_bits < ids.size * math.log2(nb):
            head.append(1)
            entropy.write_histogram(head, counts)
            main.add(ids, counts / counts.sum())
        else:
            head.append(0)
            if nb > 1:
                main.add(ids, entropy.uniform(nb))


@functools.lru_cache(maxsize=16)
def _zero_lengths(alphabet: int) -> np.ndarray:
    return np.zeros(alphabet)


def _write_codes(
    head: bytearray,
    coder: entropy.StreamEncoder,
    rows: np.ndarray,
    plan: Plan,
    kept: np.ndarray,
    present: np.ndarray,
) -> bytearray:
    """Each group's code model (side stream) then its codes; returns the code histograms."""
    nb = plan.bits.shape[2]
    codes, group = quantize(rows, plan, kept)
    keys = group_keys(plan, present)
    rho = np.full(len(keys), RHO_UNIFORM, dtype=np.int64)
    hist = bytearray()
    streams = []
    by_group, offsets = _kernels.split_by_group(codes, group, 2 * nb * N_LEVELS)
    for g, (s, j, b) in enumerate(keys):
        number = (s * nb + j) * N_LEVELS + b
        sel = by_group[offsets[number] : offsets[number + 1]]
        rho[g], probs = fit_code_model(sel, b)
        if rho[g] == RHO_HISTOGRAM:
            entropy.write_histogram(hist, np.bincount(sel, minlength=LEVELS[b]))
        streams.append((sel, probs))
    put_side(head, coder, rho, RHO_LEVELS + 1)
    for sel, probs in streams:
        coder.add(sel, probs)
    return hist


@dataclass
class Survivors:
    """A SLICER body after its entropy stage: what reconstruction needs. ``pos`` is each
    survivor's flat position, ``row_start`` [R+1] each row's first survivor, ``neg`` and
    ``block`` per survivor, ``by_group`` the codes sorted by group with ``offsets`` per group
    number; ``verbatim`` holds the rows stored as float16/float32 (float32, [rows, n])."""

    n_rows: int
    n: int
    pos: np.ndarray
    row_start: np.ndarray
    neg: np.ndarray
    block: np.ndarray
    by_group: np.ndarray
    offsets: np.ndarray
    bits: np.ndarray
    cuts: np.ndarray
    mode: np.ndarray
    verbatim: dict[int, np.ndarray]


def read(body: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 values of a SLICER body (flat); every defect raises ``CodecError``."""
    if math.prod(shape) == 0:
        Reader(body, "slicer payload").done()
        return np.zeros(0, dtype=np.float32)
    d = read_survivors(body, shape)
    out = _survivors.reconstruct(
        d.pos, d.row_start, d.neg, d.block, d.by_group, d.offsets, d.bits, d.cuts, LEVELS_F32, d.n
    )
    for m, rows in d.verbatim.items():
        out[d.mode == m] = rows
    return out.reshape(-1)


def read_survivors(body: memoryview, shape: tuple[int, ...]) -> Survivors:
    """The entropy stage of ``read`` on a non-empty tensor; every defect raises
    ``CodecError``."""
    reader = Reader(body, "slicer payload")
    head = Reader(reader.section(), "slicer side information")
    hist = Reader(reader.section(), "slicer code histograms")
    decoder = entropy.StreamDecoder(reader.section())
    nb, n_rows, n = _read_layout(head, shape, math.prod(shape))

    mode, present, level, q, bits = _read_side_info(head, decoder, n_rows, nb)
    normal = mode == MODE_NORMAL
    kept = _read_masks(decoder, normal, level, present, n)
    pos, row_start = _survivors.positions(kept)
    neg = _read_signs(head, decoder, pos.size)
    ids_pos, ids_neg = _read_block_ids(head, decoder, neg, nb)
    blk, offsets, consistent = _survivors.group_offsets(
        row_start, neg, ids_pos, ids_neg, bits, present, N_LEVELS
    )
    if not consistent:
        raise CodecError("slicer: a survivor's sign has no cuts in its row")
    # neg and block stay in survivor order here (the encoder's plan holds them per element)
    plan = Plan(mode, kept, neg, blk, q, bits, present)
    by_group = _read_codes(head, hist, decoder, plan, offsets)
    verbatim = {}
    for m, dt in ((MODE_FP16, "<f2"), (MODE_FP32, "<f4")):
        count = int((mode == m).sum())
        verbatim[m] = reader.array(dt, count * n).reshape(-1, n).astype(np.float32)
    reader.done()
    return Survivors(
        n_rows, n, pos, row_start, neg, blk, by_group, offsets, bits, cut_values(q), mode, verbatim
    )


def _read_layout(head: Reader, shape: tuple[int, ...], numel: int) -> tuple[int, int, int]:
    """(block count, rows, values per row) from the head and the tensor's shape."""
    nb = head.u8()
    granularity = head.u8()
    if not 1 <= nb <= 16 or granularity > 1:
        raise CodecError(f"slicer: bad block count {nb} or granularity flag {granularity}")
    if granularity == 1 or len(shape) < 2:
        return nb, 1, numel
    n_rows = shape[0]
    return nb, n_rows, numel // n_rows if n_rows else 0


def _read_side_info(
    head: Reader, side: entropy.StreamDecoder, n_rows: int, nb: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(modes, presence per sign, mask levels, cut grid indices, bitwidths) of every row."""
    mode = side.take(side_model(head, 3), n_rows) if n_rows else np.zeros(0, np.int64)
    normal = mode == MODE_NORMAL
    n_normal = int(normal.sum())
    pres_code = side.take(side_model(head, 4), n_normal) if n_normal else np.zeros(0, np.int64)
    present = np.zeros((n_rows, 2), dtype=bool)
    present[normal, 0] = pres_code % 2 == 1
    present[normal, 1] = pres_code >= 2
    n_present = int(present.sum())
    level = np.zeros(n_rows, np.int64)
    if n_normal:
        level[normal] = side.take(side_model(head, MASK_LEVELS + 1), n_normal)
    q0_first = int(unzigzag(np.array([head.varint(limit=2**20)]))[0])
    q = np.zeros((n_rows, 2, nb + 1), dtype=np.int64)
    bits = np.zeros((n_rows, 2, nb), np.int64)
    if n_present:
        dq0 = (
            side.take(side_model(head, DELTA_ALPHABET), n_present - 1)
            if n_present > 1
            else np.zeros(0, np.int64)
        )
        q0 = q0_first + np.concatenate([[0], np.cumsum(unzigzag(dq0))])
        dq = side.take(side_model(head, DELTA_ALPHABET), n_present * nb).reshape(n_present, nb)
        qq = np.concatenate([q0[:, None], q0[:, None] + np.cumsum(dq, axis=1)], axis=1)
        q[present] = qq
        bits[present] = side.take(side_model(head, N_LEVELS), n_present * nb).reshape(n_present, nb)
    if np.abs(q).max(initial=0) > 4 * DELTA_ALPHABET:
        raise CodecError("slicer: cut grid index out of range")
    return mode, present, level, q, bits


def _read_masks(
    main: entropy.StreamDecoder,
    normal: np.ndarray,
    level: np.ndarray,
    present: np.ndarray,
    n: int,
) -> np.ndarray:
    """The kept mask ``[rows, n]``: all, none, or Bernoulli-coded at the row's level."""
    kept = np.zeros((len(level), n), dtype=bool)
    kept[normal & (level == MASK_LEVELS)] = True
    for lv in np.unique(level[normal]):
        if 0 < lv < MASK_LEVELS:
            sel = normal & (level == lv)
            bits = main.take(entropy.bernoulli(lv / MASK_LEVELS), int(sel.sum()) * n, np.uint8)
            kept[sel] = bits.view(bool).reshape(-1, n)
    if kept.any() and not (kept.any(axis=1) <= present.any(axis=1)).all():
        raise CodecError("slicer: survivors in a row that declares none")
    return kept


def _read_signs(head: Reader, main: entropy.StreamDecoder, n_kept: int) -> np.ndarray:
    """Whether each survivor is negative, in survivor order."""
    sign_level = head.varint(limit=SIGN_LEVELS)
    if 0 < sign_level < SIGN_LEVELS:
        return main.take(entropy.bernoulli(sign_level / SIGN_LEVELS), n_kept, np.uint8).view(bool)
    return np.full(n_kept, sign_level == SIGN_LEVELS)


def _read_block_ids(
    head: Reader, main: entropy.StreamDecoder, neg: np.ndarray, nb: int
) -> tuple[np.ndarray, np.ndarray]:
    """The block ids (int64) of the positive and of the negative survivors, coded per sign
    (``_survivors.group_offsets`` merges them back into survivor order)."""
    n_neg = int(neg.sum())
    per_sign = []
    for count in (neg.size - n_neg, n_neg):
        flag = head.u8()
        if flag == 1:
            counts = entropy.read_histogram(head, nb)
            per_sign.append(main.take(counts / max(counts.sum(), 1), count))
        elif flag == 0:
            uniform = nb > 1 and count
            per_sign.append(main.take(entropy.uniform(nb), count) if uniform else np.zeros(count))
        else:
            raise CodecError(f"slicer: unknown block-id model flag {flag}")
    return per_sign[0].astype(np.int64, copy=False), per_sign[1].astype(np.int64, copy=False)


def _read_codes(
    head: Reader, hist: Reader, decoder: entropy.StreamDecoder, plan: Plan, offsets: np.ndarray
) -> np.ndarray:
    """The survivors' quantisation codes sorted by group, each group at its ``offsets`` entry
    (``_survivors.group_offsets``); ends the head, the histograms and the rANS stream."""
    nb = plan.bits.shape[2]
    keys = group_keys(plan, plan.present)
    rho = (
        decoder.take(side_model(head, RHO_LEVELS + 1), len(keys)) if keys else np.zeros(0, np.int64)
    )
    head.done()
    by_group = np.zeros(plan.neg.size, dtype=np.int64)  # codes sorted by group; 0 for 0 bits
    for g, (s, j, b) in enumerate(keys):
        number = (s * nb + j) * N_LEVELS + b
        start, stop = int(offsets[number]), int(offsets[number + 1])
        if rho[g] == RHO_HISTOGRAM:
            counts = entropy.read_histogram(hist, int(LEVELS[b]))
            probs = counts / max(counts.sum(), 1)
        else:
            probs = geometric_model(int(rho[g]), b)
        by_group[start:stop] = decoder.take(probs, stop - start)
    hist.done()
    decoder.finish()
    return by_group


def group_keys(plan: Plan, present: np.ndarray) -> list[tuple[int, int, int]]:
    """Every (sign, block, bits>0) combination the side information declares, in order."""
    nb = plan.bits.shape[2]
    numbers = _cost_kernels.group_numbers(plan.bits, present, N_LEVELS).tolist()
    return [(g // (nb * N_LEVELS), g // N_LEVELS % nb, g % N_LEVELS) for g in numbers]


def fit_code_model(codes: np.ndarray, bits: int) -> tuple[int, np.ndarray]:
    """The cheaper of a geometric decay level (6 bits) and the empirical histogram."""
    counts, best_level, best_bits, hist_bits = _cost_kernels.code_choice(
        codes, geometric_code_lengths(bits)
    )
    if hist_bits < best_bits:
        return RHO_HISTOGRAM, counts / max(counts.sum(), 1)
    return best_level, geometric_model(best_level, bits)


@functools.lru_cache(maxsize=RHO_LEVELS * N_LEVELS)
def geometric_model(level: int, bits: int) -> np.ndarray:
    """The code model of decay ``level`` for a block of LEVELS[bits] cells (built once)."""
    return entropy.geometric(rho_of(level), int(LEVELS[bits]))


@functools.lru_cache(maxsize=N_LEVELS)
def geometric_code_lengths(bits: int) -> np.ndarray:
    """[decay level, code] -> bits under each geometric model for a block of LEVELS[bits]."""
    alphabet = int(LEVELS[bits])
    return np.stack(
        [
            -np.log2(entropy._normalise(entropy.geometric(rho_of(lv), alphabet)))
            for lv in range(RHO_LEVELS)
        ]
    )
