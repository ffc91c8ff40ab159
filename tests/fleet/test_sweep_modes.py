"""A sweep writes the same ``sweep.parquet`` whether its points run in turn, sharing one oracle,
or in parallel as Ray tasks, each with its own: every figure and every oracle counter is the
point's own (a replayed sweep whose points repeat a fleet size, so the counters would show any
carry-over from the points before)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from fleet.run.runner import run
from tests.fleet.simkit import scenario, write_profile

COUNTS = [2, 5, 2, 5]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    from fleet.compute import cluster

    cluster.connect(None)
    yield
    cluster.shutdown()


def _sweep(profile: Path, out: Path, *, parallel: bool) -> list[dict[str, Any]]:
    s = scenario(
        profile,
        name="modes",
        requests_per_device=3,
        ray={"parallel_sweep": parallel},
        fleet0={"arrivals": {"kind": "poisson", "rate_per_s": 2.0}},
        sweep={"fleet[0].count": COUNTS},
    )
    results = run(s, out, quiet=True)
    assert [r.error for r in results] == [None] * len(COUNTS)
    rows: list[dict[str, Any]] = pq.read_table(out / "sweep.parquet").to_pylist()
    return rows


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def test_serial_and_parallel_sweeps_write_equal_sweep_tables(
    tmp_path: Path, ray_local: None
) -> None:
    write_profile(tmp_path / "profile", payload_bytes=[800, 1600])
    serial = _sweep(tmp_path / "profile", tmp_path / "serial", parallel=False)
    parallel = _sweep(tmp_path / "profile", tmp_path / "parallel", parallel=True)
    assert [r["requests"] for r in serial] == [3 * n for n in COUNTS]
    # each point counts its own calls: one head and one tail per request, never the sum so far
    assert [r["oracle_head_calls"] for r in serial] == [3 * n for n in COUNTS]
    assert [r["oracle_tail_calls"] for r in serial] == [3 * n for n in COUNTS]
    assert list(serial[0]) == list(parallel[0])  # same columns, in the same order
    for left, right in zip(serial, parallel, strict=True):
        differ = [k for k in left if not _same(left[k], right[k])]
        assert not differ, f"{left['point']}: {differ}"
