"""``slicer calibrate`` (a hardware entry fitted to timed blocks) and ``slicer
calibrate-codecs`` (the codec cost model fitted to timed codec calls)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from cli.tables import table as _table


def cmd_calibrate(args: argparse.Namespace) -> int:
    import models
    from models.calibrate import calibrate

    model = models.load(args.model)
    workloads = _calibration_workloads(model, args.batch)
    first, *more = workloads
    report = calibrate(
        model,
        first.x,
        args.name,
        seq_len=first.seq_len,
        batch=first.batch,
        more=more,
        repeats=args.repeats,
        threads=args.threads,
    )
    rows = [
        [block, workload, measured * 1e3, predicted * 1e3, 100 * err, bound]
        for block, workload, measured, predicted, err, bound in report.rows()
    ]
    headers = ["block", "workload", "measured ms", "predicted ms", "rel err %", "bound"]
    print(_table(headers, rows))
    spec = report.spec
    print(
        f"\nfitted {spec.name!r}: efficiency compute {spec.efficiency_compute:.3f}, memory "
        f"{spec.efficiency_memory:.3f}, per-block overhead {spec.block_overhead_s * 1e6:.1f} us, "
        f"per-call overhead {spec.call_overhead_s * 1e6:.1f} us; median relative error "
        f"{100 * report.median_relative_error:.1f}% over {len(rows)} block timings"
    )
    out = args.out or f"results/calibration/{args.name}-{model.name.replace(':', '_')}.yaml"
    print(f"hardware entry written to {report.write_yaml(out)}")
    return 0


def cmd_calibrate_codecs(args: argparse.Namespace) -> int:
    import platform

    from analysis.metrics import codec_label
    from fleet.run.codec_calibration import SETTINGS, calibrate_codecs

    settings = args.codec or list(SETTINGS)
    score = math.nan if args.cpu_score is None else args.cpu_score
    if not (math.isnan(score) or (math.isfinite(score) and score > 0)):
        print(
            f"error: --cpu-score must be a positive number, got {args.cpu_score}", file=sys.stderr
        )
        return 2
    costs, fits = calibrate_codecs(
        settings,
        repeats=args.repeats,
        machine=platform.node(),
        cpu_core_score=score,
        ifs=args.ifs,
    )
    rows, worst = [], []
    for f in fits:
        label = codec_label(f.config)
        rows += [[label, *row] for row in f.rows()]
        worst.append(max(abs(row[-1]) for row in f.rows()))
    headers = ["codec", "call", "elements", "payload B", "measured us", "predicted us", "err %"]
    print(_table(headers, rows))
    print(
        f"\n{len(fits)} settings; worst relative error per call {max(worst):.1f}% "
        f"(median over settings {sorted(worst)[len(worst) // 2]:.1f}%)"
    )
    out = args.out or "results/calibration/codec-costs.yaml"
    print(f"codec costs written to {costs.write(out)}")
    return 0


def _calibration_workloads(model: Any, batch: int) -> list[Any]:
    """What to time: a prefill and a one-token step for LMs, a batch of inputs otherwise."""
    import torch

    from models.calibrate import Workload

    samples = list(model.samples())
    if model.task == "causal-lm":
        ids = samples[0].x[None]
        return [Workload(ids, seq_len=ids.shape[1]), Workload(ids[:, :1], seq_len=1)]
    if model.task == "sentence-embedding":
        texts = [s.text for s in samples[:batch]]
        tokens = model.tokenize(texts)
        return [Workload(tokens, seq_len=tokens.x.shape[1], batch=len(texts))]
    images = torch.stack([s.x for s in samples[:batch]])
    return [Workload(images, batch=images.shape[0])]
