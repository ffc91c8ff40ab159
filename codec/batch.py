"""Decode many payloads in one call, on several cores: ``decode_batch(payloads, threads=N)``.

A server decodes a whole batch of requests at once. The payloads are split into ``threads``
contiguous chunks, each decoded by one thread of a pool kept per thread count; the compiled
kernels that do most of the work (rANS, survivor walks, reconstruction) release the GIL, so the
chunks run on separate cores. The result is the list of tensors in payload order, each exactly
what ``codec.decode`` (or ``decode_any``) gives for that payload alone.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from codec.base import Codec
from codec.errors import CodecError
from codec.registry import decode_any

MAX_THREADS = 256


def decode_batch(
    payloads: Sequence[bytes], codec: Codec | None = None, threads: int | None = None
) -> list[torch.Tensor]:
    """Decode ``payloads`` (containers of ``Codec.encode``) to their tensors, in order.

    ``codec``: decode every payload with this codec (``codec.decode``: a payload of another
    codec is refused); ``None`` dispatches each payload on its codec number (``decode_any``).
    ``threads``: how many threads decode at once (default: the cores this process may use;
    1 decodes in the calling thread). A defect in any payload raises ``CodecError`` naming the
    first bad payload's index; the other payloads' results are then dropped."""
    if isinstance(payloads, bytes | bytearray | memoryview) or not isinstance(payloads, Sequence):
        raise CodecError(
            f"decode_batch needs a sequence of payloads (a list of bytes), got "
            f"{type(payloads).__name__}; wrap a single payload in a list"
        )
    n_threads = default_threads() if threads is None else threads
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise CodecError(f"decode_batch: threads must be an integer >= 1, got {threads!r}")
    n_threads = min(n_threads, MAX_THREADS, max(len(payloads), 1))
    decode = decode_any if codec is None else codec.decode
    if n_threads == 1:
        return _decode_chunk(decode, payloads, 0)
    bounds = [len(payloads) * i // n_threads for i in range(n_threads + 1)]
    pool = _pool(n_threads)
    futures = [
        pool.submit(_decode_chunk, decode, payloads[lo:hi], lo)
        for lo, hi in itertools.pairwise(bounds)
    ]
    results: list[torch.Tensor] = []
    for future in futures:  # in order, so the first defect raised is the first bad payload
        results += future.result()
    return results


def default_threads() -> int:
    """The cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _decode_chunk(decode: object, payloads: Sequence[bytes], first: int) -> list[torch.Tensor]:
    assert callable(decode)
    out = []
    for i, payload in enumerate(payloads):
        try:
            out.append(decode(payload))
        except CodecError as exc:
            raise CodecError(f"decode_batch: payload {first + i}: {exc}") from exc
    return out


@functools.lru_cache(maxsize=8)
def _pool(n_threads: int) -> ThreadPoolExecutor:
    """One pool per thread count, kept for the process (threads start on first use)."""
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="codec-decode")
