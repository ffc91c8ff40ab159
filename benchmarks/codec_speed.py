"""SLICER's speed on one core beside zstd, against the targets of issue 14; prints one table.

Run: ``python -m benchmarks.codec_speed [--repeats N] [--frames N]``. The tensor is SmolLM2-135M's
residual stream after blocks 2, 15 and 27 on 256 Lee-corpus tokens, stacked to [768, 576]
float32 (1.77 MB; ``benchmarks.ifs``: read from its cache when present, else the SmolLM2 part is
captured, about 10 s offline). Every figure is the median of ``--repeats`` runs in this process:

* SLICER encode and decode MB/s of float32 (``codec.encode``/``codec.decode``, container and CRC
  included) at ``max_nmse`` 0.01, once with a fixed setting (``keep`` 0.3, ``blocks`` 2: no
  search) and once with the default ``auto`` setting;
* zstd (level 3, the ``zstandard`` library alone) decompressing the same tensor's float16 bytes,
  as MB/s of those bytes; ``x zstd`` is zstd's decode time over SLICER's for the same tensor;
* the per-token stream frame: ``codec.open_encoder`` on the first 64 tokens of block 15, then one
  ``[1, 576]`` frame per later token encoded and decoded (``max_nmse`` 1e-3), in microseconds
  (encode+decode per frame, and each half's own median);
* batched decode (``codec.decode_batch``): 64 fixed-setting payloads of 64 consecutive rows each
  ([64, 576], 147 KB of float32, at 64 different offsets), decoded with 1 thread and with 2, the
  two timed alternately so both see the same machine load; the row gives the speed-up, and the
  CPU seconds the process used per wall second of the 2-thread runs (near 2 when both threads
  ran their compiled kernels at once; near 1 when only one core was free or the GIL was held).

Encode and decode are timed twice: wall clock (``perf_counter``, what the targets name) and
the calling thread's CPU time (``thread_time``), which on a shared machine leaves out the time
other processes held the core (it still pays for their cache and memory traffic). The header
prints the load average, the container format version and the payload sizes.

To compare two versions of the codec in one run of the same machine, copy this file into a
worktree of the other version and run it there right after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import zstandard

import codec
from benchmarks.codec_rd import median_time_s
from codec import bitstream

FIXED: dict[str, Any] = {"id": "slicer", "max_nmse": 0.01, "keep": 0.3, "blocks": 2}
AUTO: dict[str, Any] = {"id": "slicer", "max_nmse": 0.01}
FRAME: dict[str, Any] = {"id": "slicer", "max_nmse": 1e-3}
PREFILL_TOKENS = 64
TARGET_DECODE_MBPS = 500.0
TARGET_ZSTD_RATIO = 0.25
TARGET_ENCODE_FIXED_MBPS = 200.0
TARGET_ENCODE_AUTO_MBPS = 100.0
TARGET_FRAME_US = 100.0
TARGET_BATCH_SPEEDUP = 1.7
BATCH_PAYLOADS = 64
BATCH_ROWS = 64


def smollm2_tensors() -> dict[str, np.ndarray]:
    """The three SmolLM2 IFs, [256, 576] float32 each (cache first, else captured)."""
    from benchmarks.ifs import CACHE_FILE, capture_smollm2, default_cache_dir

    path = default_cache_dir() / CACHE_FILE
    if path.is_file():
        with np.load(path) as npz:
            return {k: npz[k] for k in ("smollm2-b02", "smollm2-b15", "smollm2-b27")}
    return capture_smollm2()


def median_s(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: numba compiles, caches fill
    return median_time_s(fn, repeats)


def median_cpu_s(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU time of the calling thread per call (after a warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def slicer_mbps(config: dict[str, Any], x: np.ndarray, repeats: int) -> dict[str, float]:
    """Encode and decode MB/s of float32 ``x`` (wall and thread CPU time), bits per element and
    payload bytes."""
    c = codec.get_codec(config)
    tensor = torch.from_numpy(x)
    payload = c.encode(tensor)
    megabytes = x.nbytes / 1e6
    return {
        "enc": megabytes / median_s(lambda: c.encode(tensor), repeats),
        "dec": megabytes / median_s(lambda: c.decode(payload), repeats),
        "enc_cpu": megabytes / median_cpu_s(lambda: c.encode(tensor), repeats),
        "dec_cpu": megabytes / median_cpu_s(lambda: c.decode(payload), repeats),
        "bits": 8 * len(payload) / x.size,
        "bytes": len(payload),
    }


def zstd_decode_s(x: np.ndarray, repeats: int) -> tuple[float, float]:
    """Median (wall, thread CPU) seconds of zstd-3 decompressing ``x``'s float16 bytes."""
    raw = x.astype(np.float16).tobytes()
    frame = zstandard.ZstdCompressor(level=3).compress(raw)
    dctx = zstandard.ZstdDecompressor()
    return median_s(lambda: dctx.decompress(frame), repeats), median_cpu_s(
        lambda: dctx.decompress(frame), repeats
    )


def frame_us(hidden: np.ndarray, frames: int, repeats: int) -> tuple[float, float, float]:
    """Median encode+decode, encode and decode time of one [1, d] stream frame, in us."""
    c = codec.get_codec(FRAME)
    encoder = codec.open_encoder(c, torch.from_numpy(hidden[:PREFILL_TOKENS]))
    decoder = codec.open_decoder(c, encoder.setup)
    steps = [torch.from_numpy(hidden[t : t + 1]) for t in range(PREFILL_TOKENS, len(hidden))]
    steps = steps[:frames]
    decoder.decode(encoder.encode(steps[0]))
    both, enc, dec = [], [], []
    for _ in range(repeats):
        for step in steps:
            start = time.perf_counter()
            frame = encoder.encode(step)
            middle = time.perf_counter()
            decoder.decode(frame)
            end = time.perf_counter()
            both.append(end - start)
            enc.append(middle - start)
            dec.append(end - middle)
    both_us, enc_us, dec_us = (1e6 * statistics.median(t) for t in (both, enc, dec))
    return both_us, enc_us, dec_us


def batch_speedup(x: np.ndarray, repeats: int) -> tuple[float, float, float, float]:
    """(one-thread ms, two-thread ms, speed-up, CPU seconds per wall second of the 2-thread
    runs) of ``decode_batch`` on 64 payloads."""
    c = codec.get_codec(FIXED)
    span = len(x) - BATCH_ROWS
    starts = [(i * 11) % span for i in range(BATCH_PAYLOADS)]
    payloads = [c.encode(x[s : s + BATCH_ROWS]) for s in starts]
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu_two, wall_two = 0.0, 0.0
    for threads in (1, 2):
        codec.decode_batch(payloads, c, threads=threads)  # warm-up: pool threads start
    for _ in range(repeats):
        for threads in (1, 2):
            cpu, start = time.process_time(), time.perf_counter()
            codec.decode_batch(payloads, c, threads=threads)
            times[threads].append(time.perf_counter() - start)
            if threads == 2:
                cpu_two += time.process_time() - cpu
                wall_two += times[2][-1]
    one, two = (statistics.median(times[t]) for t in (1, 2))
    return 1e3 * one, 1e3 * two, one / two, cpu_two / wall_two


def row(what: str, value: float, unit: str, target: float, higher_is_better: bool) -> list[str]:
    met = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    shown = f"{value:.3f}" if unit == "x" else f"{value:,.1f}"
    return [what, f"{shown} {unit}", f"{sign} {target:g} {unit}", "met" if met else "MISSED"]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [list(headers), *rows]) for i in range(len(headers))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7, help="runs per median (default 7)")
    parser.add_argument("--frames", type=int, default=64, help="token frames per repeat")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ifs = smollm2_tensors()
    x = np.ascontiguousarray(np.concatenate(list(ifs.values())), dtype=np.float32)
    mb = x.nbytes / 1e6
    load_before = os.getloadavg()[0]
    fixed = slicer_mbps(FIXED, x, args.repeats)
    auto = slicer_mbps(AUTO, x, args.repeats)
    zstd_s, zstd_cpu_s = zstd_decode_s(x, args.repeats)
    zstd_mbps = x.size * 2 / 1e6 / zstd_s
    ratio_fixed, ratio_auto = (zstd_s / (mb / r["dec"]) for r in (fixed, auto))
    ratio_cpu = zstd_cpu_s / (mb / fixed["dec_cpu"])
    us, enc_us, dec_us = frame_us(ifs["smollm2-b15"], args.frames, max(1, args.repeats // 2))
    one_ms, two_ms, speedup, cpu_per_wall = batch_speedup(x, args.repeats)
    cpu = "  same, thread CPU time"
    rows = [
        row("SLICER encode, fixed (keep 0.3, blocks 2)", fixed["enc"], "MB/s", 200.0, True),
        row(cpu, fixed["enc_cpu"], "MB/s", TARGET_ENCODE_FIXED_MBPS, True),
        row("SLICER encode, auto", auto["enc"], "MB/s", TARGET_ENCODE_AUTO_MBPS, True),
        row(cpu, auto["enc_cpu"], "MB/s", TARGET_ENCODE_AUTO_MBPS, True),
        row("SLICER decode, fixed-setting payload", fixed["dec"], "MB/s", TARGET_DECODE_MBPS, True),
        row(cpu, fixed["dec_cpu"], "MB/s", TARGET_DECODE_MBPS, True),
        row("SLICER decode, auto-setting payload", auto["dec"], "MB/s", TARGET_DECODE_MBPS, True),
        row(cpu, auto["dec_cpu"], "MB/s", TARGET_DECODE_MBPS, True),
        ["zstd-3 decode of the fp16 bytes", f"{zstd_mbps:,.1f} MB/s", "(reference)", ""],
        row("SLICER decode / zstd decode, fixed", ratio_fixed, "x", TARGET_ZSTD_RATIO, True),
        row("SLICER decode / zstd decode, auto", ratio_auto, "x", TARGET_ZSTD_RATIO, True),
        row(cpu + " (fixed)", ratio_cpu, "x", TARGET_ZSTD_RATIO, True),
        row("stream frame 1x576 (max_nmse 1e-3) enc+dec", us, "us", TARGET_FRAME_US, False),
        ["  of which encode / decode (medians)", f"{enc_us:,.1f} / {dec_us:,.1f} us", "", ""],
        [
            "decode_batch 64 x [64, 576]: 1 thread / 2 threads",
            f"{one_ms:,.1f} / {two_ms:,.1f} ms",
            "(measured side by side)",
            "",
        ],
        row("decode_batch speed-up, 2 threads over 1", speedup, "x", TARGET_BATCH_SPEEDUP, True),
        ["  CPU s per wall s, 2-thread runs", f"{cpu_per_wall:.2f}", "(2.0: both cores)", ""],
    ]
    print(
        f"tensor: SmolLM2-135M blocks 2/15/27 stacked, {list(x.shape)} float32, {mb:.2f} MB; "
        f"max_nmse 0.01; {fixed['bits']:.2f} bits/el fixed, {auto['bits']:.2f} auto; "
        f"medians of {args.repeats} runs, one thread (torch too) except decode_batch's 2\n"
        f"container format version {bitstream.FORMAT_VERSION}; payloads {fixed['bytes']:,} B "
        f"fixed, {auto['bytes']:,} B auto; load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end, on {os.cpu_count()} cores\n"
    )
    print(table(["measure", "value", "target (issue 14)", ""], rows))


if __name__ == "__main__":
    main()
