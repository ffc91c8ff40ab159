"""Result tables: schema column order, row groups, byte-identical files, clear append errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from records.tables import (
    PROFILE_SCHEMA,
    REQUESTS_SCHEMA,
    SERVERS_SCHEMA,
    RecordError,
    TableWriter,
    read_table,
)

TIMES = [
    "t_arrival_s",
    "t_head_start_s",
    "t_head_end_s",
    "t_uplink_start_s",
    "t_uplink_end_s",
    "t_server_enqueue_s",
    "t_server_start_s",
    "t_server_end_s",
    "t_done_s",
]


def test_requests_schema_columns_in_order() -> None:
    head = ["run_id", "request_id", "device_id", "group", "model", "split", "codec", "input_id"]
    tail = ["raw_bytes", "payload_bytes", "result_bytes", "batch_size", "server_busy_s"]
    tail += [
        "server_decode_s",
        "device_energy_j",
        "radio_energy_j",
        "agreement",
        "status",
        "reason",
    ]
    assert REQUESTS_SCHEMA.names == [*head, "replica_id", *TIMES, *tail]
    types = dict(zip(REQUESTS_SCHEMA.names, REQUESTS_SCHEMA.types, strict=True))
    assert types["split"] == pa.int32() and types["replica_id"] == pa.int32()
    assert types["batch_size"] == pa.int32() and types["payload_bytes"] == pa.int64()
    assert all(types[t] == pa.float64() for t in TIMES)
    assert types["status"] == pa.string() and types["agreement"] == pa.float64()


def test_servers_and_profile_schemas() -> None:
    assert SERVERS_SCHEMA.names == [
        "run_id",
        "replica_id",
        "window_start_s",
        "window_end_s",
        "busy_s",
        "batches",
        "requests",
        "dropped",
        "queue_len_max",
    ]
    assert PROFILE_SCHEMA.names == [
        "model",
        "split",
        "codec",
        "codec_id",
        "input_id",
        "seq_len",
        "raw_bytes",
        "payload_bytes",
        "result_bytes",
        "agreement",
        "head_wall_s",
        "tail_wall_s",
        "prompts",
    ]
    assert PROFILE_SCHEMA.field("seq_len").type == pa.int32()


def servers(n: int, start: int = 0) -> dict[str, Any]:
    ids = np.arange(start, start + n)
    return {
        "run_id": ["r1"] * n,
        "replica_id": (ids % 3).astype(np.int32),
        "window_start_s": ids.astype(np.float64),
        "window_end_s": ids + 1.0,
        "busy_s": ids * 0.25,
        "batches": ids,
        "requests": 2 * ids,
        "dropped": np.zeros(n, dtype=np.int64),
        "queue_len_max": [int(i) % 5 for i in ids],
    }


def test_round_trip_and_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "servers.parquet"
    with TableWriter(path, SERVERS_SCHEMA, rows_per_group=3) as writer:
        writer.append(servers(2))
        assert writer.rows_written == 0  # still buffered
        writer.append(servers(2, start=2))
        assert writer.rows_written == 3  # one full group is on disk already
        writer.append(servers(3, start=4))
        assert writer.rows_written == 6
    assert writer.rows_written == 7
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 1]
    table = read_table(path)
    assert table.schema == SERVERS_SCHEMA
    assert table.column("batches").to_pylist() == list(range(7))
    assert table.column("busy_s").to_pylist() == [i * 0.25 for i in range(7)]


def test_identical_rows_give_identical_bytes_whatever_the_chunking(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.parquet" for i in range(3)]
    for path in paths[:2]:
        with TableWriter(path, SERVERS_SCHEMA, rows_per_group=4) as writer:
            writer.append(servers(10))
    with TableWriter(paths[2], SERVERS_SCHEMA, rows_per_group=4) as writer:
        for i in range(10):
            writer.append(servers(1, start=i))
    first = paths[0].read_bytes()
    assert paths[1].read_bytes() == first
    assert paths[2].read_bytes() == first
    codec = pq.ParquetFile(paths[0]).metadata.row_group(0).column(0).compression
    assert codec == "ZSTD"


def test_nothing_appended_writes_an_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "requests.parquet"
    TableWriter(path, REQUESTS_SCHEMA).close()
    table = read_table(path)
    assert table.num_rows == 0 and table.schema == REQUESTS_SCHEMA


def test_an_exception_inside_the_block_leaves_no_half_written_table(tmp_path: Path) -> None:
    path = tmp_path / "servers.parquet"
    with pytest.raises(KeyboardInterrupt), TableWriter(path, SERVERS_SCHEMA, 2) as writer:
        writer.append(servers(5))  # two row groups already written to the part file
        assert writer.part_path.exists() and not path.exists()
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_table_appears_whole_at_its_name_only_when_closed(tmp_path: Path) -> None:
    path = tmp_path / "servers.parquet"
    with TableWriter(path, SERVERS_SCHEMA, rows_per_group=2) as writer:
        writer.append(servers(5))
        assert not path.exists()
    assert read_table(path).num_rows == 5
    assert [p.name for p in tmp_path.iterdir()] == ["servers.parquet"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("busy_s"), "missing ['busy_s']"),
        (lambda c: c.update(busy_ms=[1.0, 2.0]), "unexpected ['busy_ms']"),
        (lambda c: c.update(batches=[1]), "equal lengths"),
        (lambda c: c.update(batches=["a", "b"]), "'batches' must hold int64"),
        (lambda c: c.update(requests=[0.5, 1.0]), "'requests' must hold int64"),
    ],
)
def test_bad_columns_are_named(tmp_path: Path, change: Any, message: str) -> None:
    columns = servers(2)
    change(columns)
    with TableWriter(tmp_path / "s.parquet", SERVERS_SCHEMA) as writer:
        with pytest.raises(RecordError) as info:
            writer.append(columns)
        assert message in str(info.value)


def test_misuse_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="does not exist"):
        TableWriter(tmp_path / "missing" / "s.parquet", SERVERS_SCHEMA)
    with pytest.raises(RecordError, match="rows_per_group"):
        TableWriter(tmp_path / "s.parquet", SERVERS_SCHEMA, rows_per_group=0)
    writer = TableWriter(tmp_path / "s.parquet", SERVERS_SCHEMA)
    writer.close()
    writer.close()  # twice is fine
    with pytest.raises(RecordError, match="after close"):
        writer.append(servers(1))
    with (
        TableWriter(tmp_path / "t.parquet", SERVERS_SCHEMA) as other,
        pytest.raises(RecordError, match="mapping"),
    ):
        other.append([1, 2])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no result table"):
        read_table(tmp_path / "nope.parquet")
