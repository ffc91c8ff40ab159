"""The simulator against queueing theory, in long runs: mean queueing delay within 3%.

Run: ``python -m benchmarks.sim_validation [--requests 400000]``.

M/M/1, M/M/c (shared queue, Erlang C) and M/D/1 (Pollaczek-Khinchine) at several loads: Poisson
arrivals from a fleet of ideal devices over ideal links, service drawn from the scenario's
``service`` override, replayed from a one-row profile so no model runs. Each row prints the
measured mean wait, the closed form and the relative error; three seeds per case, median error.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks.codec_rd import table
from fleet.run.runner import run_one
from server.queueing import md1_wait_s, mm1_wait_s, mmc_wait_s
from tests.fleet.simkit import scenario, write_profile

CASES = [  # name, total rate per s, service kind, replicas
    ("M/M/1", 0.5, "exponential", 1),
    ("M/M/1", 0.8, "exponential", 1),
    ("M/M/4", 3.0, "exponential", 4),
    ("M/M/16", 14.0, "exponential", 16),
    ("M/D/1", 0.5, "deterministic", 1),
    ("M/D/1", 0.8, "deterministic", 1),
]


def mean_wait_s(tmp: Path, rate: float, kind: str, replicas: int, n: int, seed: int) -> float:
    profile = write_profile(tmp / "profile")
    s = scenario(
        profile,
        seed=seed,
        requests_per_device=None,
        duration_s=n / rate,
        fleet0={"count": 100, "arrivals": {"kind": "poisson", "rate_per_s": rate / 100}},
        servers={"replicas": replicas, "service": {"kind": kind, "mean_s": 1.0}},
    )
    path = run_one(s, tmp / f"run-{rate}-{kind}-{replicas}-{seed}", quiet=True).path
    t = pq.read_table(path / "requests.parquet", columns=["t_server_start_s", "t_server_enqueue_s"])
    waits = t.column(0).to_numpy() - t.column(1).to_numpy()
    return float(np.mean(waits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400_000, help="per run")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rate, kind, replicas in CASES:
            if kind == "deterministic":
                theory = md1_wait_s(rate, 1.0)
            elif replicas == 1:
                theory = mm1_wait_s(rate, 1.0)
            else:
                theory = mmc_wait_s(rate, 1.0, replicas)
            waits = [
                mean_wait_s(Path(tmp), rate, kind, replicas, args.requests, seed)
                for seed in (1, 2, 3)
            ]
            errors = [abs(w - theory) / theory for w in waits]
            error = statistics.median(errors)
            rho = rate / replicas
            verdict = "ok" if error <= 0.03 else "MISS"
            rows.append([name, rho, statistics.median(waits), theory, f"{error:.2%}", verdict])
    print(table(["queue", "utilisation", "mean wait s", "theory s", "error", "<= 3%"], rows))


if __name__ == "__main__":
    main()
