"""Golden digests of the tables the shortened bundled scenarios write, so a refactor that
changes what the simulator computes fails loudly.

A digest is the SHA-256 of a table's Arrow IPC stream with ``run_id`` dropped (it hashes the
resolved scenario, which names this test's temporary paths). ``requests``, ``servers`` and
``steps`` are covered: every simulated time, byte count, replica choice and status. Run with
``SLICER_UPDATE_GOLDEN=1`` to record the digests after an intended change of behaviour, and
say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "bundled_runs.json"
TABLES = ("requests", "servers", "steps")


def table_digest(path: Path) -> str:
    """SHA-256 of the Parquet table at ``path`` without its ``run_id`` column."""
    table = pq.read_table(path)
    if "run_id" in table.column_names:
        table = table.drop_columns(["run_id"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def run_digests(paths: Sequence[Path]) -> dict[str, str]:
    """``{"<point>/<table>": digest}`` for every run directory in ``paths`` (in order)."""
    digests: dict[str, str] = {}
    for index, path in enumerate(paths):
        for name in TABLES:
            file = path / f"{name}.parquet"
            if file.is_file():
                digests[f"{index}/{name}"] = table_digest(file)
    return digests


def check(key: str, paths: Sequence[Path]) -> None:
    """Compare the digests of ``paths`` with the recorded ones under ``key`` (or record them)."""
    found = run_digests(paths)
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("SLICER_UPDATE_GOLDEN") == "1":
        recorded[key] = found
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        return
    assert key in recorded, f"no golden digests for {key}; record with SLICER_UPDATE_GOLDEN=1"
    assert found == recorded[key], f"{key}: the tables differ from the recorded run"
