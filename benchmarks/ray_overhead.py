"""Real compute on Ray: orchestration overhead, start-up, memory, and sweep speed-up.

Run: ``python -m benchmarks.ray_overhead [--sizes 50,200,500] [--splits 4,16,28] [--quick]``.

1. Overhead: SmolLM2-135M (64-token inputs, SLICER at NMSE 0.01) at three split points for
   fleets of 50, 200 and 500 phones, two requests each, real heads and tails on a fresh actor
   pool per row. ``overhead = wall / (compute / workers)``: ``wall`` is the simulation's wall
   time (after the pool has started and loaded its models), ``compute`` the heads' and tails'
   own wall time summed over every job that really ran (memo hits excluded), ``workers`` the
   CPUs the actors can use at once, ``min(actors, CPUs)``. Target: at most 1.25.
2. Start-up and memory: actor count, pool start-up seconds, and the peak resident memory of
   the driver plus every Ray process, sampled every 0.2 s, for the bundled real scenario
   (``scenarios/phones-vs-pis.yaml``). Target: under 4 GB.
3. Sweep speed-up: a replayed sweep of 8 points on a local two-node cluster (one CPU per node)
   against one node with one CPU, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.codec_rd import table

ROOT = Path(__file__).resolve().parents[1]


def scenario(devices: int, split: int, **ray: Any) -> Any:
    from scenarios import Scenario

    return Scenario.model_validate(
        {
            "name": f"ray-overhead-{devices}-{split}",
            "seed": 5,
            "requests_per_device": 2,
            "model": {"name": "smollm2-135m", "seq_len": 64},
            "codec": {"id": "slicer", "max_nmse": 0.01},
            "fleet": [
                {
                    "name": "phones",
                    "count": devices,
                    "hardware": "flagship-phone",
                    "split": split,
                    "arrivals": {"kind": "poisson", "rate_per_s": 0.5},
                    "uplink": {"trace": "synthetic:lte"},
                }
            ],
            "servers": {"replicas": 4, "hardware": "h100-sxm", "batching": {"max_batch": 8}},
            "ray": ray,
        }
    )


class MemorySampler:
    """Peak resident memory of this process plus every Ray process, sampled in a thread."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.peak_bytes = 0
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, total_rss_bytes())
            time.sleep(self._every_s)


def total_rss_bytes() -> int:
    """RSS of this process, its children and every process whose command line names Ray."""
    total = 0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
        if int(entry.name) == me or ppid == me or b"ray" in cmdline:
            rss = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
            if rss is not None:
                total += int(rss.split()[1]) * 1024
    return total


def overhead_row(devices: int, split: int) -> list[Any]:
    from fleet.compute import cluster
    from fleet.compute.ray_oracle import RayOracle
    from fleet.sim import Simulation
    from server.engine.jobs import full_codec_key

    s = scenario(devices, split)
    start = time.perf_counter()
    oracle = RayOracle(s.ray, [(s.model.name, s.model.seq_len)])
    startup_s = time.perf_counter() - start
    actors = len({id(a) for a in [*oracle.shards, *oracle.workers]})
    workers = min(actors, cluster.cpus())
    keys = [full_codec_key(s.codec_for(g).config()) for g in s.fleet]
    sim = Simulation(s, oracle, run_id="bench", codec_keys=keys, sink=lambda columns: None)
    start = time.perf_counter()
    out = sim.run()
    wall_s = time.perf_counter() - start
    compute_s = sum(w for _, w in oracle._head_done.values())
    compute_s += sum(w for _, w in oracle._tail_done.values())
    stats = oracle.stats()
    oracle.close()
    ideal_s = compute_s / workers
    return [
        split,
        devices,
        out.requests,
        len(oracle._head_done),
        stats["ray_calls"],
        actors,
        round(startup_s, 1),
        round(wall_s, 2),
        round(compute_s, 2),
        round(wall_s / ideal_s, 2),
    ]


def default_scenario_memory(out: Path) -> list[Any]:
    with MemorySampler() as sampler:
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                *("-m", "cli.main", "run", "scenarios/phones-vs-pis.yaml"),
                *("--out", str(out), "--quiet"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall_s = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the default scenario failed:\n{done.stderr[-2000:]}")
    return ["phones-vs-pis (real, Ray)", round(wall_s, 1), round(sampler.peak_bytes / 2**30, 2)]


SWEEP_CHILD = """
import json, sys, time
from pathlib import Path
import ray
from ray.cluster_utils import Cluster
from fleet.run.runner import run
from scenarios import load

nodes, profile, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
for _ in range(nodes - 1):
    c.add_node(num_cpus=1)
c.wait_for_nodes()
ray.init(address=c.address, include_dashboard=False, logging_level="WARNING")
s = load("scenarios/phones-vs-pis.yaml", [
    "mode=replay", f"replay_from={profile}", "duration_s=600",
    "sweep.fleet[0].count=[500, 1000, 1500, 2000]", "sweep.servers.replicas=[4, 8]",
])
start = time.perf_counter()
run(s, out, quiet=True)
print(json.dumps({"wall_s": time.perf_counter() - start}))
ray.shutdown(); c.shutdown()
"""


def sweep_speedup(profile: str) -> list[list[Any]]:
    rows = []
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in (1, 2):
            done = subprocess.run(
                [sys.executable, "-c", SWEEP_CHILD, str(nodes), profile, f"{tmp}/sweep-{nodes}"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"the sweep on {nodes} node(s) failed:\n{done.stderr[-2000:]}")
            walls[nodes] = json.loads(done.stdout.strip().splitlines()[-1])["wall_s"]
            rows.append([nodes, 8, round(walls[nodes], 1), round(walls[1] / walls[nodes], 2)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--splits", default="4,16,28")
    args = parser.parse_args()
    from fleet.compute import cluster

    cluster.connect(None)
    rows = [
        overhead_row(devices, split)
        for split in (int(x) for x in args.splits.split(","))
        for devices in (int(x) for x in args.sizes.split(","))
    ]
    cpus = cluster.cpus()
    cluster.shutdown()
    headers = ["split", "devices", "requests", "jobs run", "ray calls", "actors", "start-up s"]
    headers += ["wall s", "compute s", "overhead"]
    print(f"Overhead (target <= 1.25), {cpus} CPUs:")
    print(table(headers, rows))
    with tempfile.TemporaryDirectory() as tmp:
        memory = default_scenario_memory(Path(tmp) / "real")
        print("\nMemory of the default scenario (target < 4 GB):")
        print(table(["scenario", "wall s", "peak GB"], [memory]))
        speedup = sweep_speedup(str(Path(tmp) / "real"))
    print("\nReplayed sweep of 8 points, one CPU per node (its real profile from the run above):")
    print(table(["nodes", "points", "wall s", "speed-up"], speedup))


if __name__ == "__main__":
    main()
