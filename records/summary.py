"""``summary.json``: a run's headline figures, computed from the tables it wrote.

Every figure that the tables hold comes from ``records.metrics`` (see its docstring for each
definition), so the summary, the report and the benchmarks read one number under one name.
``summarize_run`` reads ``requests.parquet``, ``servers.parquet`` and, for ``task: generate``,
``steps.parquet`` back from a run directory; ``summarize`` takes the same tables in memory.
Facts of the run that no table holds are passed in and written after the figures:
``replica_failures`` and ``replica_down_s`` (replica-seconds down), and ``facts`` (the
simulated ``sim_time_s``, ``events``, the oracle's ``oracle_*`` counters).

Values are plain Python ints and floats (NaN where a figure has no data; ``summary.json``
writes it as null), plus ``drops_by_reason`` and ``failures_by_reason`` (reason -> count).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from records import metrics
from records.metrics import STAGES as STAGES  # re-exported: summary.json's stage keys
from records.metrics import reason_counts as reason_counts
from records.tables import read_table

#: the facts of a run that the tables do not hold, written after the figures
RUN_FACTS = ("replica_failures", "replica_down_s", "sim_time_s", "events")
ORACLE_PREFIX = "oracle_"  # the oracle's counters: oracle_head_calls, oracle_head_memo_hits...


def summarize(
    requests: pa.Table,
    servers: pa.Table,
    steps: pa.Table | None = None,
    *,
    replicas: int,
    sim_time_s: float,
    decode_cores: int = 0,
    replica_failures: int | None = None,
    replica_down_s: float | None = None,
) -> dict[str, Any]:
    """The run's figures (``records.metrics.run_figures``; ``steps`` only for ``task:
    generate``), its counts by reason, then ``replica_failures`` and ``replica_down_s`` when
    given."""
    out: dict[str, Any] = metrics.run_figures(
        requests,
        servers,
        steps,
        replicas=replicas,
        sim_time_s=sim_time_s,
        decode_cores=decode_cores,
    )
    out.update(reason_counts(requests))
    if replica_failures is not None:
        out["replica_failures"] = int(replica_failures)
    if replica_down_s is not None:
        out["replica_down_s"] = float(replica_down_s)
    return out


def summarize_run(
    run_dir: Path,
    *,
    replicas: int,
    generate: bool,
    sim_time_s: float,
    decode_cores: int = 0,
    replica_failures: int | None = None,
    replica_down_s: float | None = None,
    facts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``summary.json``'s content for the run in ``run_dir``, from the Parquet files it wrote:
    ``summarize``, then ``sim_time_s`` and ``facts`` (events, oracle counters)."""
    out = summarize(
        read_table(run_dir / "requests.parquet"),
        read_table(run_dir / "servers.parquet"),
        read_table(run_dir / "steps.parquet") if generate else None,
        replicas=replicas,
        sim_time_s=sim_time_s,
        decode_cores=decode_cores,
        replica_failures=replica_failures,
        replica_down_s=replica_down_s,
    )
    out["sim_time_s"] = float(sim_time_s)
    out.update(facts or {})
    return out


def is_run_fact(key: str) -> bool:
    """Whether ``key`` of a summary is a fact of the run rather than a figure of its tables."""
    return key in RUN_FACTS or key.startswith(ORACLE_PREFIX)
