"""Rate-distortion and speed of every codec on real intermediate features; prints tables.

Run: ``python -m benchmarks.codec_rd [--out DIR] [--quick]``. The IFs come from
``benchmarks.ifs`` (SmolLM2-135M residual stream, MiniLM hidden states, MobileNetV2 feature
maps; captured once, then cached). For every tensor and codec setting it reports bits per
element, the reference rate (an entropy-coded uniform scalar quantiser per row with its ideal
empirical entropy and no side information, at the same per-row NMSE), ratios vs fp32 and fp16,
NMSE (whole tensor and worst row), cosine, max abs error, encode/decode MB/s of fp32 input on one
core, and SLICER's entropy-coding overhead. Then the targets: the budget promise, the Pareto
front, the distance to the reference rate, throughput on >= 1 MB tensors against memcpy measured
in the same run, and the per-token case (one 576-value row). With ``--out DIR`` it also writes
``DIR/report.md`` (the printed tables), ``DIR/rd.json`` (one record per tensor and codec setting,
see ``rd_records``) and ``DIR/rate-distortion.png``/``.svg`` (``analysis.plots.rate_distortion``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import codec
from benchmarks.ifs import capture_ifs
from codec.base import distortion, row_nmse
from codec.reference import reference_bits_per_element

BUDGETS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
BASELINES: tuple[dict[str, Any], ...] = (
    {"id": "fp32"},
    {"id": "fp16"},
    {"id": "bf16"},
    {"id": "int8"},
    {"id": "blockwise8"},
    {"id": "zstd", "level": 3},
    {"id": "topk", "keep": 0.05},
    {"id": "topk", "keep": 0.2},
    {"id": "topk", "keep": 0.5},
    {"id": "rans", "bits": 3},
    {"id": "rans", "bits": 4},
    {"id": "rans", "bits": 6},
    {"id": "rans", "bits": 8},
    {"id": "jpeg", "quality": 30},
    {"id": "jpeg", "quality": 60},
    {"id": "jpeg", "quality": 90},
    {"id": "jpeg", "quality": 60, "format": "webp"},
)
PER_TOKEN_CONFIGS: tuple[dict[str, Any], ...] = (
    {"id": "slicer", "max_nmse": 0.01},
    {"id": "slicer", "max_nmse": 0.1},
    {"id": "slicer", "max_nmse": 0.01, "keep": 0.3, "blocks": 2},  # no per-payload search
)
TENSORS = (
    "smollm2-b02",
    "smollm2-b15",
    "smollm2-b27",
    "minilm-l3",
    "minilm-l6",
    "mobilenetv2-f04-chelsea",
    "mobilenetv2-f07-chelsea",
    "mobilenetv2-f14-chelsea",
    "mobilenetv2-f04-astronaut",
    "mobilenetv2-f07-astronaut",
    "mobilenetv2-f14-astronaut",
)


@dataclass
class Point:
    tensor: str
    label: str
    config: dict[str, Any]
    bits: float
    ref_bits: float
    nmse: float
    max_row_nmse: float
    cosine: float
    max_abs: float
    enc_mbps: float
    dec_mbps: float
    overhead_pct: float | None  # SLICER: coded bytes over empirical entropy + side info


def label(config: dict[str, Any]) -> str:
    params = ",".join(f"{k}={v}" for k, v in config.items() if k != "id")
    return f"{config['id']}({params})" if params else config["id"]


def median_time_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, x: np.ndarray, config: dict[str, Any], repeats: int) -> Point:
    c = codec.get_codec(config)
    tensor = torch.from_numpy(x)
    payload = c.encode(tensor)
    x_hat = c.decode(payload).numpy()
    nmse, worst, cosine, max_abs = distortion(x, x_hat)
    megabytes = x.nbytes / 1e6
    enc_s = median_time_s(lambda: c.encode(tensor), repeats)
    dec_s = median_time_s(lambda: c.decode(payload), repeats)
    overhead = None
    if config["id"] == "slicer":
        report = c.analyze(tensor)  # type: ignore[attr-defined]
        limit = report["entropy_bytes"] + report["model_bytes"]
        overhead = 100 * (report["coded_bytes"] - report["entropy_bytes"]) / limit
    ref_nmse = max(worst, 1e-7)
    return Point(
        tensor=name,
        label=label(config),
        config=config,
        bits=8 * len(payload) / x.size,
        ref_bits=reference_bits_per_element(x, ref_nmse) if worst < 1 else 0.0,
        nmse=nmse,
        max_row_nmse=worst,
        cosine=cosine,
        max_abs=max_abs,
        enc_mbps=megabytes / enc_s,
        dec_mbps=megabytes / dec_s,
        overhead_pct=overhead,
    )


def rd_records(points: Sequence[Point]) -> list[dict[str, Any]]:
    """The rate-distortion points as JSON-ready records (non-finite numbers become null):
    codec label and config, tensor, bits per element (and the reference rate), NMSE (whole
    tensor and worst row), cosine, max abs error, encode/decode MB/s of fp32 input, SLICER's
    entropy-coding overhead in percent (null for other codecs)."""

    def finite(value: float | None) -> float | None:
        return float(value) if value is not None and math.isfinite(value) else None

    return [
        {
            "codec": p.label,
            "config": p.config,
            "tensor": p.tensor,
            "bits_per_element": finite(p.bits),
            "reference_bits_per_element": finite(p.ref_bits),
            "nmse": finite(p.nmse),
            "max_row_nmse": finite(p.max_row_nmse),
            "cosine": finite(p.cosine),
            "max_abs_error": finite(p.max_abs),
            "encode_mb_per_s": finite(p.enc_mbps),
            "decode_mb_per_s": finite(p.dec_mbps),
            "ec_overhead_pct": finite(p.overhead_pct),
        }
        for p in points
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000 or abs(v) < 1e-3:
            return f"{v:.2e}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return "-" if v is None else str(v)


def rd_table(points: list[Point]) -> str:
    rows = [
        [
            p.tensor,
            p.label,
            p.bits,
            p.ref_bits,
            32 / p.bits,
            16 / p.bits,
            p.nmse,
            p.max_row_nmse,
            p.cosine,
            p.max_abs,
            p.enc_mbps,
            p.dec_mbps,
            p.overhead_pct,
        ]
        for p in points
    ]
    headers = [
        "tensor", "codec", "bits/el", "ref bits/el", "x vs fp32", "x vs fp16", "nmse",
        "max row nmse", "cosine", "max abs err", "enc MB/s", "dec MB/s", "ec overhead %",
    ]  # fmt: skip
    return table(headers, rows)


def targets_table(points: list[Point]) -> tuple[str, dict[str, int]]:
    """Per tensor and budget: promise kept, reference distance, Pareto status.

    A baseline beats SLICER when it has fewer bits at an equal or lower *worst-row* NMSE, the
    metric SLICER's budget promises (a whole-tensor NMSE would let a codec that keeps only the
    few massive activations of an LLM token look accurate while every other token is lost)."""
    rows = []
    tally = {"budget": 0, "pareto": 0, "reference": 0, "reference_checked": 0, "points": 0}
    for p in points:
        if p.config["id"] != "slicer":
            continue
        budget = p.config["max_nmse"]
        kept = p.max_row_nmse <= budget
        rivals = [
            q
            for q in points
            if q.tensor == p.tensor and q.config["id"] != "slicer"
            and q.max_row_nmse <= p.max_row_nmse and q.bits < p.bits
        ]  # fmt: skip
        limit = 1.10 * p.ref_bits + 0.1
        checked = budget >= 1e-2
        tally["points"] += 1
        tally["budget"] += kept
        tally["pareto"] += not rivals
        tally["reference_checked"] += checked
        tally["reference"] += checked and p.bits <= limit
        rows.append(
            [
                p.tensor,
                budget,
                p.max_row_nmse,
                "yes" if kept else "NO",
                p.bits,
                p.ref_bits,
                p.bits / p.ref_bits if p.ref_bits else None,
                limit,
                ("yes" if p.bits <= limit else "NO") if checked else "(n/a)",
                "yes" if not rivals else "NO: " + ", ".join(q.label for q in rivals),
            ]
        )
    headers = [
        "tensor", "max_nmse", "worst row nmse", "budget kept", "slicer bits/el",
        "ref bits/el", "ratio", "limit 1.1*ref+0.1", "within limit", "on Pareto front",
    ]  # fmt: skip
    return table(headers, rows), tally


def memcpy_gbps(nbytes: int = 64 * 2**20) -> float:
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    seconds = median_time_s(lambda: np.copyto(dst, src), 9)
    return nbytes / seconds / 1e9


def throughput_table(ifs: dict[str, np.ndarray], repeats: int) -> str:
    big = {
        "smollm2 3 depths [768,576]": np.concatenate(
            [ifs["smollm2-b02"], ifs["smollm2-b15"], ifs["smollm2-b27"]]
        ),
        "mobilenetv2 f04 x5 [120,56,56]": np.concatenate(
            [ifs[k] for k in sorted(ifs) if k.startswith("mobilenetv2-f04")]
        ),
    }
    configs: list[dict[str, Any]] = [
        {"id": "slicer", "max_nmse": 0.01},
        {"id": "slicer", "max_nmse": 0.01, "keep": 0.3, "blocks": 2},
        {"id": "fp16"},
        {"id": "blockwise8"},
        {"id": "zstd"},
        {"id": "rans", "bits": 6},
    ]
    rows = []
    for name, x in big.items():
        for config in configs:
            p = measure(name, x, config, repeats)
            rows.append([name, f"{x.nbytes / 1e6:.2f}", p.label, p.bits, p.enc_mbps, p.dec_mbps])
    headers = ["tensor", "MB fp32", "codec", "bits/el", "encode MB/s", "decode MB/s"]
    return table(headers, rows) + f"\n\nmemcpy in the same run: {memcpy_gbps():.1f} GB/s"


def per_token_table(ifs: dict[str, np.ndarray], tokens: int) -> str:
    rows = []
    for key in ("smollm2-b02", "smollm2-b15", "smollm2-b27"):
        hidden = ifs[key]
        for config in PER_TOKEN_CONFIGS:
            c = codec.get_codec(config)
            sizes, micros, worst, bits_ideal = [], [], 0.0, []
            for t in range(1, tokens + 1):
                x = torch.from_numpy(hidden[t])
                start = time.perf_counter()
                payload = c.encode(x)
                y = c.decode(payload)
                micros.append(1e6 * (time.perf_counter() - start))
                sizes.append(len(payload))
                worst = max(worst, float(row_nmse(x.numpy(), y.numpy()).max()))
                report = c.analyze(x)  # type: ignore[attr-defined]
                bits_ideal.append(report["entropy_bytes"])
            overhead = [s - i for s, i in zip(sizes, bits_ideal, strict=True)]
            rows.append(
                [
                    key,
                    label(config),
                    statistics.median(sizes),
                    statistics.median(overhead),
                    8 * statistics.median(sizes) / hidden.shape[1],
                    worst,
                    statistics.median(micros),
                ]
            )
    headers = [
        "tokens of", "codec", "payload bytes (median)", "overhead bytes (container+side)",
        "bits/el", "worst nmse", "encode+decode us (median)",
    ]  # fmt: skip
    return table(headers, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="also write report.md and rd.json here"
    )
    parser.add_argument("--quick", action="store_true", help="fewer tensors and repeats")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    repeats = 1 if args.quick else 3
    ifs = capture_ifs()
    names = TENSORS[::3] if args.quick else TENSORS
    configs = [{"id": "slicer", "max_nmse": b} for b in BUDGETS] + list(BASELINES)
    points = []
    for name in names:
        for config in configs:
            points.append(measure(name, ifs[name], config, repeats))
        print(f"measured {name}", flush=True)
    sections = [
        ("Rate-distortion on real IFs", rd_table(points)),
    ]
    targets, tally = targets_table(points)
    sections.append(("SLICER targets", targets))
    sections.append(
        (
            "Summary",
            f"budget kept: {tally['budget']}/{tally['points']}; on the Pareto front: "
            f"{tally['pareto']}/{tally['points']}; within 1.10*ref+0.1 (budgets 1e-2..1e-1): "
            f"{tally['reference']}/{tally['reference_checked']}",
        )
    )
    sections.append(("Throughput on >= 1 MB tensors (one core)", throughput_table(ifs, repeats)))
    sections.append(
        ("Per token (one 576-value row)", per_token_table(ifs, 10 if args.quick else 40))
    )
    text = "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(f"# Codec benchmark\n\n{text}\n")
        rows = rd_records(points)
        records = json.dumps(rows, indent=1, allow_nan=False)
        (args.out / "rd.json").write_text(records + "\n")
        from analysis.plots import rate_distortion, save

        figures = save(rate_distortion(rows), args.out / "rate-distortion")
        print(f"\nreport written to {args.out / 'report.md'}")
        print(f"rate-distortion points written to {args.out / 'rd.json'}, figure {figures[0]}")


if __name__ == "__main__":
    main()
