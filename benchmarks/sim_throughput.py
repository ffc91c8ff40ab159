"""Simulator speed: simulated requests per wall second and peak memory with the ReplayOracle.

Run: ``python -m benchmarks.sim_throughput [--profile PATH] [--sizes 100,1000,10000,100000]``.

First a small real run records a profile (SmolLM2-135M split 8, SLICER at NMSE 0.01, on a few
devices with the LocalOracle), unless ``--profile`` names one. Then each fleet size runs in its
own process (so peak memory is that run's alone): flagship phones on synthetic LTE uplinks,
each sending 5 requests at random, against H100 replicas (one per 100 devices) with dynamic
batching and a shared queue. Wall time counts the simulation and writing its Parquet files,
not start-up. Targets: >= 20,000 requests per wall second, wall time linear in requests, and
100,000 devices in under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.codec_rd import table

REQUESTS_PER_DEVICE = 5


def scenario(devices: int, profile: str | None, mode: str) -> dict[str, Any]:
    return {
        "name": f"throughput-{devices}",
        "seed": 3,
        "requests_per_device": REQUESTS_PER_DEVICE,
        "mode": mode,
        "replay_from": profile,
        "model": {"name": "smollm2-135m", "seq_len": 64},
        "codec": {"id": "slicer", "max_nmse": 0.01},
        "fleet": [
            {
                "name": "phones",
                "count": devices,
                "hardware": "flagship-phone",
                "split": 8,
                "arrivals": {"kind": "poisson", "rate_per_s": 0.2},
                "uplink": {"trace": "synthetic:lte"},
                "downlink": {"bandwidth_mbps": 50.0},
            }
        ],
        "servers": {
            "replicas": max(1, devices // 100),
            "hardware": "h100-sxm",
            "batching": {"max_batch": 16, "max_wait_s": 0.005},
        },
    }


def record_profile(out: Path) -> Path:
    from fleet.run.runner import run_one
    from scenarios import Scenario

    s = Scenario.model_validate(scenario(4, None, "real") | {"requests_per_device": 8})
    print("recording a profile with a small real run ...", file=sys.stderr)
    return run_one(s, out / "real", quiet=True).path / "profile.parquet"


def child(devices: int, profile: str, out: Path) -> dict[str, Any]:
    from fleet.run.runner import run_one
    from scenarios import Scenario

    s = Scenario.model_validate(scenario(devices, profile, "replay"))
    start = time.perf_counter()
    result = run_one(s, out, quiet=True)
    wall_s = time.perf_counter() - start
    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"requests": result.summary["requests"], "wall_s": wall_s, "peak_bytes": peak_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=None, help="a profile.parquet or run directory")
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.profile, Path(args.out))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        profile = args.profile or str(record_profile(Path(tmp)))
        rows = []
        for devices in (int(x) for x in args.sizes.split(",")):
            command = [sys.executable, "-m", "benchmarks.sim_throughput", "--child", str(devices)]
            command += ["--profile", profile, "--out", str(Path(tmp) / f"replay-{devices}")]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            m = json.loads(done.stdout.strip().splitlines()[-1])
            rate = m["requests"] / m["wall_s"]
            rows.append(
                [
                    devices,
                    m["requests"],
                    round(m["wall_s"], 2),
                    round(rate),
                    round(1e6 / rate, 1),
                    round(m["peak_bytes"] / 2**20),
                ]
            )
            print(f"{devices} devices done", file=sys.stderr)
    headers = ["devices", "requests", "wall s", "requests/s", "us/request", "peak MB"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
