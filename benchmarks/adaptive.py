"""Adaptive split policy against the best static split, on variable uplinks.

A fleet of phones runs SmolLM2-135M split with fp16 or SLICER after block 4, 16 or 28 (the
quickstart's calibration, replayed) against a fixed server pool. Per uplink trace it runs every
static (split, codec) and one ``policy: {kind: adaptive}`` group holding all six heads, over
several seeds, and prints per policy: p95 latency, SLO attainment, accelerator busy seconds and
device energy per request (mean over seeds, with a 95% t-interval). The best static is the one
with the highest mean SLO attainment (ties: less server time): what ``slicer plan`` recommends
at this replica count when any static meets the SLO, else the least bad. Every figure comes
from ``records.metrics``.

Traces: ``synthetic:lte`` by default, plus files given with ``--trace FORMAT:PATH`` (Mahimahi
``.up`` files or Pensieve cooked traces, e.g. from ``../shared/traces``)::

    python -m benchmarks.adaptive --calibration results/quickstart/calibration \\
        --trace mahimahi:../shared/traces/mahimahi/ATT-LTE-driving.up \\
        --trace pensieve:../shared/traces/pensieve-fcc/trace_909_http---www.yahoo.com_0

Without ``--calibration`` it runs ``scenarios/quickstart-calibration.yaml`` first (real compute,
about a minute on 2 cores) into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SLICER = {"id": "slicer", "max_nmse": 0.001}
HEADS = [(4, "fp16"), (16, "fp16"), (28, "fp16"), (4, SLICER), (16, SLICER), (28, SLICER)]
_T95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def scenario(trace: str, calibration: str, policy: Any, split: int, codec: Any, args: Any) -> Any:
    from scenarios import Scenario

    kind, _, path = trace.partition(":")
    uplink: dict[str, Any] = {"trace": trace, "delay_s": 0.02}
    if kind in ("mahimahi", "pensieve"):
        uplink = {"trace": f"file:{path}", "format": kind, "delay_s": 0.02}
    return Scenario.model_validate(
        {
            "name": "adaptive-bench",
            "seed": 0,
            "duration_s": args.duration_s,
            "mode": "replay",
            "replay_from": calibration,
            "model": {"name": "smollm2-135m", "seq_len": 64, "inputs": 8},
            "codec": codec,
            "fleet": [
                {
                    "name": "phones",
                    "count": args.devices,
                    "hardware": "flagship-phone",
                    "split": split,
                    "arrivals": {"kind": "poisson", "rate_per_s": args.rate_per_s},
                    "uplink": uplink,
                    "downlink": {"bandwidth_mbps": 50, "delay_s": 0.02},
                    "radio": "lte",
                    "policy": policy,
                }
            ],
            "servers": {
                "replicas": args.replicas,
                "hardware": "l4",
                "batching": {"max_batch": 32, "max_wait_s": 0.005},
                "routing": "least-loaded",
            },
            "ray": {"enabled": False, "parallel_sweep": False},
        }
    )


def measure(s: Any, seed: int, slo_s: float, out: Path) -> dict[str, float]:
    from fleet.run.point import run_one
    from records import metrics
    from records.tables import read_table

    point = s.model_copy(update={"seed": seed})
    from fleet.run import rundir

    where = out / rundir.run_id(point)
    summary = rundir.complete(where, rundir.run_id(point))
    if summary is None:
        rundir.clear_unfinished(where)
        summary = run_one(point, where, quiet=True).summary
    requests = read_table(where / "requests.parquet")
    return {
        "p95_latency_s": float(summary["p95_latency_s"]),
        "slo_attainment": metrics.slo_attainment(requests, slo_s),
        "server_s": float(summary["server_busy_s_per_request"]),
        "device_j": float(summary["device_energy_j_per_request"]),
    }


def _interval(values: list[float]) -> str:
    x = np.array(values, dtype=float)
    if len(x) < 2:
        return f"{x.mean():.4g}"
    half = _T95.get(len(x), 1.96) * x.std(ddof=1) / math.sqrt(len(x))
    return f"{x.mean():.4g} ± {half:.2g}"


def run_trace(trace: str, calibration: str, args: Any, out: Path) -> list[list[Any]]:
    rows: list[tuple[str, dict[str, list[float]]]] = []
    adaptive = {
        "kind": "adaptive",
        "options": [{"split": sp, "codec": c} for sp, c in HEADS[1:]],
        "slo_s": args.slo_s,
    }
    runs = [(f"static {sp} {_name(c)}", "static", sp, c) for sp, c in HEADS]
    runs.append(("adaptive (6 heads)", adaptive, HEADS[0][0], HEADS[0][1]))
    for label, policy, split, codec in runs:
        s = scenario(trace, calibration, policy, split, codec, args)
        got: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            for k, v in measure(s, seed, args.slo_s, out).items():
                got.setdefault(k, []).append(v)
        rows.append((label, got))
    statics = [r for r in rows if r[0].startswith("static")]
    best = max(statics, key=lambda r: (np.mean(r[1]["slo_attainment"]), -np.mean(r[1]["server_s"])))
    table = []
    for label, got in rows:
        mark = " (best static)" if label == best[0] else ""
        keys = ("p95_latency_s", "slo_attainment", "server_s", "device_j")
        table.append([trace, label + mark, *(_interval(got[k]) for k in keys)])
    return table


def _name(codec: Any) -> str:
    return codec if isinstance(codec, str) else "slicer"


def main(argv: list[str] | None = None) -> None:
    from cli.tables import table

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calibration", default=None, help="a quickstart calibration directory")
    p.add_argument("--trace", action="append", default=None, help="synthetic:NAME or FORMAT:PATH")
    p.add_argument("--slo-s", type=float, default=1.0)
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--rate-per-s", type=float, default=0.1)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--duration-s", type=float, default=120.0)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default=None, help="where runs go (default: a temporary directory)")
    args = p.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="adaptive-bench-"))
    calibration = args.calibration or _calibrate(out)
    rows = []
    for trace in args.trace or ["synthetic:lte"]:
        rows += run_trace(trace, calibration, args, out)
    heads = ["uplink", "policy", "p95 latency s", f"SLO {args.slo_s} s attained"]
    print(table([*heads, "server busy s/req", "device J/req"], rows))
    print(
        f"\n{args.devices} phones, Poisson {args.rate_per_s}/s each, {args.duration_s:.0f} s, "
        f"{args.replicas} L4 replica(s); mean over {args.seeds} seeds ± 95% t-interval"
    )


def _calibrate(out: Path) -> str:
    import scenarios
    from fleet.run.runner import run

    target = out / "calibration"
    run(scenarios.load("scenarios/quickstart-calibration.yaml"), target, quiet=True)
    return str(target.resolve())


if __name__ == "__main__":
    main()
