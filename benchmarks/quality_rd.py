"""Task quality against uplink bytes for every pretrained model, split depth and codec.

Run: ``python -m benchmarks.quality_rd [--quick] [--out DIR] [--models a,b]``. For each
pretrained model, three split depths and each codec (SLICER at several budgets, every
baseline), it prints payload bytes per sample (per token for the LM), the ratio against fp32 and
fp16, and the change of each quality metric against the same split uncompressed. Then the best
setting per model under the target (>= 10x less uplink than fp32 and at most 1 point of quality
loss; at most 2% relative perplexity increase for the LM), and once, controls showing that the
metrics can fail (shuffled text for the LM, random weights for a vision model).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import codec
import models
from benchmarks.codec_rd import table
from models.mobilenetv2 import build_mobilenetv2
from models.quality import QualityReport, evaluate
from models.vision import MobileNetV2Split

SPLITS = {
    "smollm2-135m": (3, 16, 28),
    "minilm-l6": (2, 4, 6),
    "mobilenetv2": (4, 7, 14),
    "efficientnet-lite0": (4, 7, 12),
}
SLICER_BUDGETS = (0.003, 0.01, 0.03, 0.1)
#: Samples per metric where the full set would take too long on 2 cores: the LM gets 8 held-out
#: windows of 128 tokens (1,024 scored positions) and 80 of the 200 labelled sentences.
LIMITS = {"smollm2-135m": 8}
BASELINES: tuple[dict[str, Any], ...] = (
    {"id": "fp16"},
    {"id": "bf16"},
    {"id": "int8"},
    {"id": "blockwise8"},
    {"id": "zstd"},
    {"id": "topk", "keep": 0.2},
    {"id": "rans", "bits": 4},
    {"id": "rans", "bits": 6},
    {"id": "jpeg", "quality": 90},
)


def label(config: dict[str, Any] | None) -> str:
    if config is None:
        return "fp32"
    params = ",".join(f"{k}={v}" for k, v in config.items() if k != "id" and v != "auto")
    params = params.replace(",granularity=row", "").replace("granularity=row", "")
    return f"{config['id']}({params})" if params else config["id"]


def loss_points(report: QualityReport, task: str) -> float:
    """Quality lost against the uncompressed split: relative perplexity increase in percent for
    the LM, percentage points of the main metric otherwise (worst metric where there are two)."""
    if task == "causal-lm":
        base = report.uncompressed["perplexity"]
        return 100 * (report.metrics["perplexity"] - base) / base
    losses = [
        100 * (report.uncompressed[name] - report.metrics[name])
        for name in report.metrics
        if name != "kl_divergence"
    ]
    return max(losses)


def run_model(name: str, limit: int | None) -> tuple[list[list[object]], list[list[object]]]:
    model = models.load(name)
    configs: list[dict[str, Any] | None] = [None]
    configs += [{"id": "slicer", "max_nmse": b} for b in SLICER_BUDGETS]
    configs += [
        c for c in BASELINES if not (c["id"] == "jpeg" and model.task != "image-classification")
    ]
    rows, hits = [], []
    memo: dict[Any, Any] = {}  # unsplit outputs and head features, shared by every codec
    for split in SPLITS[name]:
        base: dict[str, float] | None = None
        for config in configs:
            chosen = codec.get_codec(config) if config is not None else None
            start = time.perf_counter()
            report = evaluate(model, split, chosen, limit=limit, uncompressed=base, memo=memo)
            base = report.uncompressed
            loss = loss_points(report, model.task)
            ratio = report.raw_bytes / report.payload_bytes
            metrics = ", ".join(
                f"{k}={v:.4g} ({v - report.uncompressed[k]:+.3g})"
                for k, v in report.metrics.items()
            )
            rows.append(
                [name, split, label(config), report.payload_bytes, ratio, ratio / 2, loss, metrics,
                 time.perf_counter() - start]
            )  # fmt: skip
            if (
                config is not None
                and config["id"] == "slicer"
                and ratio >= 10
                and loss <= (2.0 if model.task == "causal-lm" else 1.0)
            ):
                hits.append([name, split, label(config), report.payload_bytes, ratio, loss])
        print(f"measured {name} split {split}", flush=True)
    return rows, hits


def controls(limit: int | None) -> list[list[object]]:
    """Show the metrics can fail: shuffled LM input, and a random-weight vision model."""
    from models.quality import _kl

    rows: list[list[object]] = []
    lm = models.load("smollm2-135m")
    windows = lm.token_windows("test")[: limit or 16]  # type: ignore[attr-defined]
    with torch.inference_mode():
        nll, n, nll_shuf = 0.0, 0, 0.0
        gen = torch.Generator().manual_seed(0)
        for w in windows:
            for ids, is_shuffled in (
                (w.x, False),
                (w.x[torch.randperm(w.x.numel(), generator=gen)], True),
            ):
                logits = lm(ids[None])[0]
                loss = float(
                    torch.nn.functional.cross_entropy(logits[:-1], ids[1:], reduction="sum")
                )
                if is_shuffled:
                    nll_shuf += loss
                else:
                    nll += loss
                    n += ids.numel() - 1
        rows.append(
            ["smollm2-135m", "perplexity, held-out text", f"{torch.tensor(nll / n).exp():.2f}"]
        )
        rows.append(
            [
                "smollm2-135m",
                "perplexity, same tokens shuffled",
                f"{torch.tensor(nll_shuf / n).exp():.2f}",
            ]
        )
        vision = models.load("mobilenetv2")
        torch.manual_seed(0)
        random_net = MobileNetV2Split(build_mobilenetv2())  # random init: the control
        random_net.pretrained = False
        agree, kl = 0.0, 0.0
        samples = list(vision.samples())
        for s in samples:
            ref, out = vision(s.x[None]), random_net(s.x[None])
            agree += float(ref.argmax() == out.argmax())
            kl += float(_kl(ref, out)[0])
        rows.append(
            ["mobilenetv2", "top-1 agreement of a random-init copy", f"{agree / len(samples):.3f}"]
        )
        rows.append(["mobilenetv2", "KL of a random-init copy", f"{kl / len(samples):.3f}"])
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples per metric")
    parser.add_argument("--models", default=",".join(SPLITS), help="comma-separated names")
    parser.add_argument("--out", type=Path, default=None, help="also write report.md here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    all_rows, all_hits = [], []
    for name in args.models.split(","):
        limit = 4 if args.quick else LIMITS.get(name)
        rows, hits = run_model(name, limit)
        all_rows += rows
        all_hits += hits
    headers = [
        "model", "split", "codec", "bytes/sample (LM: /token)", "x vs fp32", "x vs fp16",
        "loss (pts; LM: % ppl)", "metrics (change vs uncompressed split)", "eval s",
    ]  # fmt: skip
    best = []
    for name in args.models.split(","):
        mine = [h for h in all_hits if h[0] == name]
        if mine:
            best.append(max(mine, key=lambda h: h[4]))
        else:
            best.append([name, "-", "no SLICER setting meets the target", "-", "-", "-"])
    sections = [
        ("Quality against uplink bytes", table(headers, all_rows)),
        ("Best SLICER setting per model within the target (>= 10x vs fp32, <= 1 pt; LM <= 2% ppl)",
         table(["model", "split", "codec", "bytes/sample", "x vs fp32", "loss"], best)),
        ("Controls: the metrics can fail", table(["model", "control", "value"], controls(limit))),
    ]  # fmt: skip
    text = "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(f"# Quality benchmark\n\n{text}\n")


if __name__ == "__main__":
    main()
