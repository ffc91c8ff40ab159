"""Server accelerator time per request, SLICER against fp16, at every split within a latency SLO.

Run: ``python -m benchmarks.server_time [--devices 40] [--duration-s 60]``.

SLICER's claim is that it lets devices take deeper splits, so that the server does less. For
each model this runs one real-compute sweep (the model and the codecs really run; every point
shares one in-process oracle, and all points see the same arrivals and link traces) of split x
codec for a fleet on LTE uplinks against one L4 whose 16 host cores decode IFs (the decode
pool, ``servers.decode``), and prints per point the p95 latency, the accelerator's busy time per
request (``server_busy_s_per_request``), the decode pool's core time per request and the uplink
bytes. Then, per model, the comparison the paper makes: the shallowest fp16 split that meets the
SLO (the conventional deployment) and the fp16 split with the least accelerator time within it,
against the SLICER split with the least accelerator time within the SLO, and their ratios.

* SmolLM2-135M (``task: infer``, 64-token prompts) on flagship phones, 1 s and 2 s SLOs.
* MobileNetV2 (ImageNet weights, 32 validation-style images) on Raspberry Pi 5 cameras, 0.3 s
  and 0.5 s SLOs.

Numbers are simulated seconds from the cost model and the fitted codec cost model, not wall
time; they do not depend on this machine's load.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.codec_rd import table

LLM = """
name: server-time-llm
seed: 1
seeds: shared
duration_s: {duration_s}
model: {{name: smollm2-135m, seq_len: 64, inputs: 8}}
codec: fp16
fleet:
  - {{name: phones, count: {devices}, hardware: flagship-phone, split: 4,
     arrivals: {{kind: poisson, rate_per_s: 0.2}},
     uplink: {{trace: synthetic:lte, delay_s: 0.02}}, downlink: {{bandwidth_mbps: 50}}}}
servers: {{replicas: 1, hardware: l4, batching: {{max_batch: 32, max_wait_s: 0.005}}}}
ray: {{enabled: false, parallel_sweep: false}}
sweep:
  fleet[0].split: [2, 4, 8, 12, 16, 20, 24, 28]
  codec: [fp16, {{id: slicer, max_nmse: 0.001}}]
"""
VISION = """
name: server-time-vision
seed: 5
seeds: shared
duration_s: {duration_s}
model: {{name: mobilenetv2, inputs: 32}}
codec: fp16
fleet:
  - {{name: cameras, count: {devices}, hardware: raspberry-pi-5, split: 4,
     arrivals: {{kind: periodic, period_s: 2.0, jitter_s: 0.2}},
     uplink: {{trace: synthetic:lte, delay_s: 0.02}}, downlink: {{bandwidth_mbps: 50}}}}
servers: {{replicas: 1, hardware: l4, batching: {{max_batch: 16, max_wait_s: 0.005}}}}
ray: {{enabled: false, parallel_sweep: false}}
sweep:
  fleet[0].split: [0, 2, 4, 7, 11, 14, 17]
  codec: [fp16, {{id: slicer, max_nmse: 0.01}}]
"""
#: (name, sweep, SLOs): each SLO gets its own comparison
MODELS = (("SmolLM2-135M", LLM, (1.0, 2.0)), ("MobileNetV2", VISION, (0.3, 0.5)))


@dataclass(frozen=True)
class Point:
    split: int
    codec: str
    p95_s: float
    accelerator_s: float  # per completed request
    decode_s: float  # decode-pool core seconds per completed request
    uplink_bytes: float

    def meets(self, slo_s: float) -> bool:
        return math.isfinite(self.p95_s) and self.p95_s <= slo_s


def sweep_points(text: str, out: Path) -> list[Point]:
    """Run the sweep in ``text`` into ``out``; one ``Point`` per sweep point."""
    from analysis.metrics import codec_label
    from fleet.run.runner import run
    from scenarios import loads

    points = []
    for result in run(loads(text), out, quiet=True):
        manifest = _manifest(result.path)
        scenario = manifest["scenario"]
        s = result.summary
        points.append(
            Point(
                split=int(scenario["fleet"][0]["split"]),
                codec=codec_label(scenario["codec"]),
                p95_s=float(s["p95_latency_s"] or math.nan),
                accelerator_s=float(s["server_busy_s_per_request"] or math.nan),
                decode_s=float(s["server_decode_s_per_request"] or math.nan),
                uplink_bytes=float(s["uplink_bytes_per_request"] or math.nan),
            )
        )
    return points


def _manifest(path: Path) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return data


def comparison(points: Sequence[Point], slo_s: float) -> list[list[Any]]:
    """Rows: fp16 shallowest and best split within the SLO, SLICER's best, and the ratios."""
    within = [p for p in points if p.meets(slo_s)]
    fp16 = sorted((p for p in within if p.codec == "fp16"), key=lambda p: p.split)
    slicer = [p for p in within if p.codec.startswith("slicer")]
    best_slicer = min(slicer, key=lambda p: p.accelerator_s, default=None)
    rows: list[list[Any]] = []
    picks = [
        ("fp16, shallowest split within the SLO", fp16[0] if fp16 else None),
        ("fp16, least accelerator time within the SLO", min(fp16, key=_accel, default=None)),
        ("SLICER, least accelerator time within the SLO", best_slicer),
    ]
    for what, p in picks:
        if p is None:
            rows.append([what, "none meets it", None, None, None])
            continue
        ratio = None
        if best_slicer is not None and p is not best_slicer:
            ratio = p.accelerator_s / best_slicer.accelerator_s
        rows.append([what, p.split, p.p95_s, p.accelerator_s * 1e3, ratio])
    return rows


def _accel(p: Point) -> float:
    return p.accelerator_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=40, help="devices per point")
    parser.add_argument("--duration-s", type=float, default=60.0, help="simulated s per point")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, template, slos in MODELS:
            text = template.format(devices=args.devices, duration_s=args.duration_s)
            points = sweep_points(text, Path(tmp) / name)
            print(f"\n{name}: one L4 with 16 decode cores, {args.devices} devices")
            headers = ["split", "codec", "p95 s", "accelerator ms/req", "decode core-ms/req"]
            headers.append("uplink kB/req")
            rows = [
                [
                    p.split,
                    p.codec,
                    p.p95_s,
                    p.accelerator_s * 1e3,
                    p.decode_s * 1e3,
                    p.uplink_bytes / 1e3,
                ]
                for p in points
            ]
            print(table(headers, rows))
            for slo_s in slos:
                print(f"\n{name}, p95 SLO {slo_s} s:")
                headers = ["deployment", "split", "p95 s", "accelerator ms/req", "x SLICER's"]
                print(table(headers, comparison(points, slo_s)))


if __name__ == "__main__":
    main()
