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
ADAPTIVE = "adaptive (6 heads)"
EQUAL_COST = 1.05  # a static "costs the same" at up to 5% more server busy time per request
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
                    "hardware": args.hardware,
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
    """One seed's figures, plus the share of requests each head ran (``share <split> <codec>``)."""
    from fleet.run import rundir
    from fleet.run.point import run_one
    from records import metrics
    from records.tables import read_table

    point = s.model_copy(update={"seed": seed})
    where = out / rundir.run_id(point)
    summary = rundir.complete(where, rundir.run_id(point))
    if summary is None:
        rundir.clear_unfinished(where)
        summary = run_one(point, where, quiet=True).summary
    requests = read_table(where / "requests.parquet")
    got = {
        "p95_latency_s": float(summary["p95_latency_s"]),
        "slo_attainment": metrics.slo_attainment(requests, slo_s),
        "server_s": float(summary["server_busy_s_per_request"]),
        "device_j": float(summary["device_energy_j_per_request"]),
    }
    heads = list(zip(requests["split"].to_pylist(), requests["codec"].to_pylist(), strict=True))
    for head in sorted(set(heads)):
        got[f"share {head[0]} {head[1]}"] = heads.count(head) / len(heads)
    return got


def _interval(values: list[float]) -> str:
    x = np.array(values, dtype=float)
    if len(x) < 2:
        return f"{x.mean():.4g}"
    half = _T95.get(len(x), 1.96) * x.std(ddof=1) / math.sqrt(len(x))
    return f"{x.mean():.4g} ± {half:.2g}"


Runs = dict[str, dict[str, list[float]]]


def run_trace(trace: str, calibration: str, args: Any, out: Path) -> tuple[list[list[Any]], str]:
    """The table rows of one trace (every static head and the adaptive group) and its verdict."""
    adaptive = {
        "kind": "adaptive",
        "options": [{"split": sp, "codec": c} for sp, c in HEADS[1:]],
        "slo_s": args.slo_s,
    }
    runs = [(f"static {sp} {_name(c)}", "static", sp, c) for sp, c in HEADS]
    runs.append((ADAPTIVE, adaptive, HEADS[0][0], HEADS[0][1]))
    got: Runs = {}
    for label, policy, split, codec in runs:
        s = scenario(trace, calibration, policy, split, codec, args)
        got[label] = {}
        for seed in range(args.seeds):
            for k, v in measure(s, seed, args.slo_s, out).items():
                got[label].setdefault(k, []).append(v)
    best = _best_static(got, math.inf)
    table = []
    for label, figures in got.items():
        mark = " (best static)" if label == best else ""
        keys = ("p95_latency_s", "slo_attainment", "server_s", "device_j")
        table.append([trace, label + mark, *(_interval(figures[k]) for k in keys)])
    return table, verdict(trace, got)


def _best_static(got: Runs, max_server_s: float) -> str | None:
    """The static with the highest mean SLO attainment (ties: less server time) among those
    whose mean server busy time per request is at most ``max_server_s``."""
    statics = [
        (label, f)
        for label, f in got.items()
        if label.startswith("static") and np.mean(f["server_s"]) <= max_server_s
    ]
    if not statics:
        return None
    best = max(statics, key=lambda r: (np.mean(r[1]["slo_attainment"]), -np.mean(r[1]["server_s"])))
    return best[0]


def _static_mix(statics: Runs, server_s: float) -> tuple[str, np.ndarray] | None:
    """The best fleet of two static heads (a share of the devices on each) whose mean server
    time is ``server_s``: its label and its SLO attainment per seed (linear in the shares)."""
    cost = {k: float(np.mean(v["server_s"])) for k, v in statics.items()}
    best: tuple[str, np.ndarray] | None = None
    for lo in statics:
        for hi in statics:
            if not cost[lo] < server_s <= cost[hi]:
                continue
            share = (server_s - cost[lo]) / (cost[hi] - cost[lo])
            if not 0.01 <= share <= 0.99:  # one static alone: the comparison above
                continue
            y = (1 - share) * np.array(statics[lo]["slo_attainment"]) + share * np.array(
                statics[hi]["slo_attainment"]
            )
            if best is None or y.mean() > best[1].mean():
                best = (f"a static mix ({1 - share:.0%} {lo}, {share:.0%} {hi})", y)
    return best


def verdict(trace: str, got: Runs) -> str:
    """Adaptive against the best static at equal server cost (at most 5% more server busy time
    than the adaptive group's), paired by seed, and why when it cannot win: a static head with
    both the highest attainment and the least server time leaves adaptation nothing to gain."""
    mine = got[ADAPTIVE]
    rival = _best_static(got, EQUAL_COST * float(np.mean(mine["server_s"])))
    if rival is None:
        return f"{trace}: every static head needs more server time than the adaptive group"
    x = np.array(mine["slo_attainment"]) - np.array(got[rival]["slo_attainment"])
    half = _T95.get(len(x), 1.96) * x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else math.nan
    word = "beats" if x.mean() - half > 0 else "loses to" if x.mean() + half < 0 else "ties"
    line = (
        f"{trace}: adaptive {word} {rival} (the best static at equal server cost) on SLO "
        f"attainment by {x.mean():+.4f} ± {half:.2g} (paired by seed)"
    )
    statics = {k: v for k, v in got.items() if k.startswith("static")}
    mix = _static_mix(statics, float(np.mean(mine["server_s"])))
    if mix is not None:
        y = np.array(mine["slo_attainment"]) - mix[1]
        h = _T95.get(len(y), 1.96) * y.std(ddof=1) / math.sqrt(len(y)) if len(y) > 1 else math.nan
        line += f"; against {mix[0]} at its server time: {y.mean():+.4f} ± {h:.2g}"
    least = min(np.mean(v["server_s"]) for v in statics.values())
    top = max(np.mean(v["slo_attainment"]) for v in statics.values())
    dominant = [
        k
        for k, v in statics.items()
        if np.mean(v["server_s"]) <= EQUAL_COST * least and np.mean(v["slo_attainment"]) >= top
    ]
    if dominant:
        share = sum(
            float(np.mean(mine.get("share " + k.removeprefix("static "), [0.0]))) for k in dominant
        )
        line += (
            f"; {' and '.join(dominant)} {'has' if len(dominant) == 1 else 'have'} the highest "
            "attainment at the least server time of the statics, so adaptation can at best tie "
            f"(it ran {share:.0%} of the requests there); every other choice is an estimation "
            "error"
        )
    return line


def _name(codec: Any) -> str:
    return codec if isinstance(codec, str) else "slicer"


def main(argv: list[str] | None = None) -> None:
    from cli.tables import table

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calibration", default=None, help="a quickstart calibration directory")
    p.add_argument("--trace", action="append", default=None, help="synthetic:NAME or FORMAT:PATH")
    p.add_argument("--slo-s", type=float, default=1.0)
    p.add_argument("--hardware", default="flagship-phone", help="the devices' hardware entry")
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--rate-per-s", type=float, default=0.1)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--duration-s", type=float, default=120.0)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default=None, help="where runs go (default: a temporary directory)")
    args = p.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="adaptive-bench-"))
    calibration = args.calibration or _calibrate(out)
    rows, verdicts = [], []
    for trace in args.trace or ["synthetic:lte"]:
        got, line = run_trace(trace, calibration, args, out)
        rows += got
        verdicts.append(line)
    heads = ["uplink", "policy", "p95 latency s", f"SLO {args.slo_s} s attained"]
    print(table([*heads, "server busy s/req", "device J/req"], rows))
    print(
        f"\n{args.devices} phones, Poisson {args.rate_per_s}/s each, {args.duration_s:.0f} s, "
        f"{args.replicas} L4 replica(s), {args.hardware}; mean over {args.seeds} seeds ± 95% "
        "t-interval\n"
    )
    print("\n".join(verdicts))


def _calibrate(out: Path) -> str:
    import scenarios
    from fleet.run.runner import run

    target = out / "calibration"
    run(scenarios.load("scenarios/quickstart-calibration.yaml"), target, quiet=True)
    return str(target.resolve())


if __name__ == "__main__":
    main()
