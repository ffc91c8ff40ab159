"""Reference kernels for the codec tests: the dense-mask SLICER decode loops and the plain
rANS decode that the product code replaced with faster ones (``codec._survivors``,
``codec._ans_decode.decode_digits``). They stay here, not in the package, so the tests can
check the fast kernels against them element for element; and constriction, the reference
coder whose words ``codec._ans_code`` writes."""

from __future__ import annotations

import constriction
import numpy as np
from numba import njit

from codec import _kernels, entropy
from codec._kernels import _value


@njit(nogil=True)
def survivor_group_offsets(
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    bits: np.ndarray,
    present: np.ndarray,
    n_levels: int,
) -> tuple[np.ndarray, bool]:
    """Decoder, sign and block in survivor order: the start offset of each group number
    ((sign*B + block)*n_levels + bits) in the survivors sorted by group (stable), and whether
    every survivor's sign has cuts in its row."""
    n_rows, n = kept.shape
    nb = bits.shape[2]
    n_groups = 2 * nb * n_levels
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    i = 0
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[i] else 0
                if not present[r, s]:
                    return offsets, False
                j = block[i]
                offsets[(s * nb + j) * n_levels + bits[r, s, j] + 1] += 1
                i += 1
    for g in range(n_groups):
        offsets[g + 1] += offsets[g]
    return offsets, True


@njit(nogil=True)
def reconstruct_grouped(
    kept: np.ndarray,
    neg: np.ndarray,
    block: np.ndarray,
    by_group: np.ndarray,
    offsets: np.ndarray,
    bits: np.ndarray,
    cuts: np.ndarray,
    levels: np.ndarray,
) -> np.ndarray:
    """``reconstruct`` with the codes sorted by group (``survivor_group_offsets``) instead of
    in survivor order: each survivor takes the next code of its group."""
    n_rows, n = kept.shape
    nb = bits.shape[2]
    n_levels = levels.size
    cursor = offsets[:-1].copy()
    out = np.zeros((n_rows, n), dtype=np.float32)
    i = 0
    for r in range(n_rows):
        for c in range(n):
            if kept[r, c]:
                s = 1 if neg[i] else 0
                j = block[i]
                b = bits[r, s, j]
                g = (s * nb + j) * n_levels + b
                lo = cuts[r, s, j]
                step = (cuts[r, s, j + 1] - lo) / levels[b]
                v = _value(by_group[cursor[g]], lo, step)
                cursor[g] += 1
                out[r, c] = -v if s else v
                i += 1
    return out


@njit(nogil=True)
def unpack_table(supers: np.ndarray, table: np.ndarray, count: int) -> tuple[np.ndarray, bool]:
    """Split super-symbols into their ``k`` digits by a lookup ``table`` [alphabet**k, k]
    (least significant first); ``False`` where a super-symbol is outside the table."""
    k = table.shape[1]
    out = np.empty(count, dtype=np.int64)
    size = table.shape[0]
    i = 0
    for v in supers:
        if v < 0 or v >= size:
            return out, False
        for d in range(min(k, count - i)):
            out[i + d] = table[v, d]
        i += k
        if i >= count:
            break
    return out, True


@njit(nogil=True)
def merge_by_sign(neg: np.ndarray, ids_pos: np.ndarray, ids_neg: np.ndarray) -> np.ndarray:
    """The inverse of ``survivors_by_sign``'s split: block ids back in survivor order
    (branch-free: signs are close to coin flips)."""
    both = np.concatenate((ids_pos, ids_neg))
    n_pos = ids_pos.size
    out = np.empty(neg.size, dtype=np.int64)
    a = 0
    b = 0
    for i in range(neg.size):
        s = int(neg[i])
        out[i] = both[a + s * (n_pos + b - a)]
        a += 1 - s
        b += s
    return out


# One explicit signature: a Python int state below 2**63 would otherwise compile an int64
# variant whose mixed arithmetic goes through float64.
@njit(
    "Tuple((int32[::1], int64, uint64))"
    "(uint32[::1], int64, uint64, uint64[::1], int64[::1], int64)",
    cache=True,
    nogil=True,
)
def decode(
    words: np.ndarray, pos: int, state: np.uint64, left: np.ndarray, buckets: np.ndarray, count: int
) -> tuple[np.ndarray, int, np.uint64]:
    """``count`` symbols of one model; returns them (int32), the bulk length and the state."""
    out = np.empty(count, dtype=np.int32)
    mask = np.uint64((1 << 24) - 1)
    shift = np.uint64(24)
    bucket_shift = np.uint64(24 - 12)
    low = np.uint64(1) << np.uint64(32)
    word_bits = np.uint64(32)
    for t in range(count):
        q = state & mask
        s = buckets[q >> bucket_shift]
        while left[s + 1] <= q:
            s += 1
        lo = left[s]
        state = (left[s + 1] - lo) * (state >> shift) + (q - lo)
        if state < low and pos > 0:
            pos -= 1
            state = (state << word_bits) | np.uint64(words[pos])
        out[t] = s
    return out, pos, state


# -- constriction, the reference coder ------------------------------------------------------------
def constriction_model(probs: np.ndarray) -> tuple[object, int]:
    """constriction's model of ``probs`` (the product table ``codec.entropy`` builds) and k."""
    table, k = entropy._product_table(entropy._key(probs))
    return constriction.stream.model.Categorical(table, perfect=False), k


def constriction_words(streams: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """What ``entropy.StreamEncoder.finish`` wrote when it called constriction: the streams
    (symbols, probs) in decoding order, coded on one ``AnsCoder`` in reverse."""
    coder = constriction.stream.stack.AnsCoder()
    for symbols, probs in reversed(streams):
        model, k = constriction_model(probs)
        pad = int(np.argmax(probs))
        supers = _kernels.pack_digits(np.asarray(symbols, dtype=np.int64), len(probs), k, pad)
        coder.encode_reverse(supers, model)
    words: np.ndarray = coder.get_compressed()
    return words.astype("<u4").tobytes()
