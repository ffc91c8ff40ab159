"""Result tables: the Arrow schemas of ``requests.parquet``, ``servers.parquet``,
``steps.parquet`` (``task: generate``), ``profile.parquet`` and ``generations.parquet``, and the
row-group writer that fills them.

``TableWriter`` buffers appended columns and writes a Parquet row group every
``rows_per_group`` rows into ``<name>.part`` beside the table, renamed to the table's name when
the writer closes: a table is there whole or not at all. An exception (an interrupt included)
inside its ``with`` block discards the part file, so a killed run leaves no half-written table
(``write_table_atomic`` does the same for a table written at once). Row groups depend only on
the total number of rows appended (never on how appends were chunked), compression is fixed
(zstd level 3) and no timestamps are stored, so identical rows give byte-identical files.
Times are simulated seconds (float64, NaN for stages never reached).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PART_SUFFIX = ".part"  # a table being written; renamed when complete
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3

#: The stage times of a request, in lifecycle order (simulated seconds).
STAGE_TIMES = (
    "t_arrival_s",
    "t_head_start_s",
    "t_head_end_s",
    "t_uplink_start_s",
    "t_uplink_end_s",
    "t_server_enqueue_s",
    "t_server_start_s",
    "t_server_end_s",
    "t_done_s",
)

#: One row per request, exactly one whatever happened to it. ``replica_id`` is -1 and
#: ``batch_size`` 0 when never served; stage times are NaN for stages not reached; ``agreement``
#: is NaN unless completed. ``status`` and ``reason``:
#:
#: - "completed", reason "";
#: - "dropped": "queue_full" (the server queue refused it), "device_offline" (its device was
#:   offline when it arrived), "replica_failed" (its replica failed with on_failure: drop);
#: - "failed": its real compute raised ``ComputeFailed``; reason "head: " or "tail: " and the
#:   oracle's message.
#:
#: ``server_decode_s`` is the time spent decoding the request's IFs: decode-pool core-seconds
#: (``servers.decode.on: cpu``; the decode pool is not the accelerators, so this is not in
#: ``server_busy_s``) or its share of the accelerator's decode (``on: gpu``; part of
#: ``server_busy_s`` there). With the pool, ``t_uplink_end_s`` to ``t_server_enqueue_s`` is the
#: wait for a decode core plus the decode.
REQUESTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("request_id", pa.int64()),
        ("device_id", pa.int64()),
        ("group", pa.string()),
        ("model", pa.string()),
        ("split", pa.int32()),
        ("codec", pa.string()),
        ("input_id", pa.int64()),
        ("replica_id", pa.int32()),
        *((name, pa.float64()) for name in STAGE_TIMES),
        ("raw_bytes", pa.int64()),
        ("payload_bytes", pa.int64()),
        ("result_bytes", pa.int64()),
        ("batch_size", pa.int32()),
        ("server_busy_s", pa.float64()),
        ("server_decode_s", pa.float64()),
        ("device_energy_j", pa.float64()),
        ("radio_energy_j", pa.float64()),
        ("agreement", pa.float64()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)

#: One row per replica per time window of ``record.window_s``.
SERVERS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("replica_id", pa.int32()),
        ("window_start_s", pa.float64()),
        ("window_end_s", pa.float64()),
        ("busy_s", pa.float64()),
        ("batches", pa.int64()),
        ("requests", pa.int64()),
        ("dropped", pa.int64()),
        ("queue_len_max", pa.int64()),
    ]
)

#: What a real run measured, one row per distinct (model, split, codec, input_id, seq_len,
#: prompts): the replay oracle's source. ``codec`` is ``server.engine.jobs.codec_key`` of the full
#: config, ``codec_id`` its id; ``seq_len`` is 0 for models that ignore it (vision, encoders).
#: The wall columns are this machine's measured seconds, informational only (never simulated
#: time). ``prompts`` is the text LM inputs are windows of (``ModelSpec.prompts``;
#: ``lee-background`` for models that ignore it, and for files written before the column).
PROFILE_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("split", pa.int32()),
        ("codec", pa.string()),
        ("codec_id", pa.string()),
        ("input_id", pa.int64()),
        ("seq_len", pa.int32()),
        ("raw_bytes", pa.int64()),
        ("payload_bytes", pa.int64()),
        ("result_bytes", pa.int64()),
        ("agreement", pa.float64()),
        ("head_wall_s", pa.float64()),
        ("tail_wall_s", pa.float64()),
        ("prompts", pa.string()),
    ]
)

#: ``task: generate`` runs: a request is one generated sequence, and ``requests.parquet`` has
#: these columns after REQUESTS_SCHEMA's. There the stage columns cover the whole sequence:
#: head = the device's prefill, uplink = the prompt's IF, server start = its prefill step, server
#: end = its last step, done = its last token back on the device; ``payload_bytes``,
#: ``raw_bytes`` and ``result_bytes`` sum every transfer, ``server_busy_s`` every step's share,
#: ``batch_size`` is the largest running batch it was in, ``agreement`` the teacher-forced
#: next-token top-1 agreement with the unsplit model.
GENERATE_REQUEST_FIELDS = [
    ("new_tokens", pa.int32()),  # tokens the sequence asked for
    ("tokens_done", pa.int32()),  # tokens that reached the device
    ("ttft_s", pa.float64()),  # arrival -> first token back on the device
    ("tpot_s", pa.float64()),  # (last token - first token) / (new_tokens - 1); NaN if 1 token
    ("uplink_bits_per_token", pa.float64()),  # 8 * payload_bytes / new_tokens
    ("server_busy_s_per_token", pa.float64()),
    ("tokens_matching", pa.int32()),  # leading tokens equal to the unsplit model's greedy ones
]
GENERATE_REQUESTS_SCHEMA = pa.schema([*REQUESTS_SCHEMA, *GENERATE_REQUEST_FIELDS])

#: ``task: generate``: one row per generated token. Step 0 is the prefill: its input is the
#: prompt's IF (plus the codec stream's set-up) and it starts with the device's prefill; step
#: k >= 1 starts when token k - 1 is back on the device, which runs the head on it and sends its
#: IF. ``batch_size`` is the server step's running batch, ``server_busy_s`` this token's share.
STEPS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("request_id", pa.int64()),
        ("step", pa.int32()),
        ("device_id", pa.int64()),
        ("replica_id", pa.int32()),
        ("t_step_start_s", pa.float64()),
        ("t_uplink_end_s", pa.float64()),
        ("t_server_start_s", pa.float64()),
        ("t_server_end_s", pa.float64()),
        ("t_token_done_s", pa.float64()),  # NaN when the token never reached the device
        ("payload_bytes", pa.int64()),
        ("batch_size", pa.int32()),
        ("server_busy_s", pa.float64()),
    ]
)

#: ``task: generate`` runs add these to SERVERS_SCHEMA: ``batches`` there counts steps and
#: ``requests`` sequences admitted in the window.
GENERATE_SERVER_FIELDS = [
    ("tokens", pa.int64()),  # tokens produced in the window
    ("running_mean", pa.float64()),  # time-average running batch (sequences) in the window
    ("kv_used_max_bytes", pa.float64()),  # most KV-cache memory reserved in the window
]
GENERATE_SERVERS_SCHEMA = pa.schema([*SERVERS_SCHEMA, *GENERATE_SERVER_FIELDS])

#: What a real ``task: generate`` run measured, one row per distinct (model, split, codec,
#: input_id, prompt_tokens, new_tokens, prompts): ``server.engine.jobs.GenResult`` plus the wall
#: seconds the whole sequence took on this machine (informational only) and the text the prompt
#: is a window of (``ModelSpec.prompts``; ``lee-background`` for files written before it).
GENERATIONS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("split", pa.int32()),
        ("codec", pa.string()),
        ("codec_id", pa.string()),
        ("input_id", pa.int64()),
        ("prompt_tokens", pa.int32()),
        ("new_tokens", pa.int32()),
        ("prompt_raw_bytes", pa.int64()),
        ("prompt_payload_bytes", pa.int64()),
        ("setup_bytes", pa.int64()),
        ("step_raw_bytes", pa.int64()),
        ("step_payload_bytes", pa.list_(pa.int64())),
        ("token_bytes", pa.int64()),
        ("tokens_matching", pa.int32()),
        ("agreement", pa.float64()),
        ("wall_s", pa.float64()),
        ("prompts", pa.string()),
    ]
)

Columns = Mapping[str, "np.ndarray | Sequence[Any]"]


class RecordError(ValueError):
    """Appended columns do not fit the table's schema; the message names the column."""


class TableWriter:
    """Append columns, get a Parquet file of ``schema`` written one row group at a time.

    ``append`` takes every column of the schema (by name, equal lengths); ``close`` writes the
    rest (an empty table with the schema when nothing was appended) and renames the part file
    to ``path``; ``abort`` discards it. Use as a context manager: an exception aborts.
    """

    def __init__(self, path: str | Path, schema: pa.Schema, rows_per_group: int = 65536) -> None:
        if isinstance(rows_per_group, bool) or not isinstance(rows_per_group, int):
            raise RecordError(f"rows_per_group must be an integer >= 1, got {rows_per_group!r}")
        if rows_per_group < 1:
            raise RecordError(f"rows_per_group must be an integer >= 1, got {rows_per_group}")
        self.path = Path(path)
        self.schema = schema
        self.rows_per_group = rows_per_group
        self.rows_written = 0
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._closed = False
        if not self.path.parent.is_dir():
            raise RecordError(
                f"cannot write {self.path}: folder {self.path.parent} does not exist; create "
                "the run directory first"
            )
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self._writer = pq.ParquetWriter(
            self.part_path,
            schema,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
        )

    def append(self, columns: Columns) -> None:
        """Buffer rows given as one array or sequence per column; write full row groups."""
        if self._closed:
            raise RecordError(f"{self.path}: append after close; open a new TableWriter")
        batch = _to_batch(columns, self.schema, self.path)
        if batch.num_rows == 0:
            return
        self._buffer.append(batch)
        self._buffered += batch.num_rows
        while self._buffered >= self.rows_per_group:
            self._write_rows(self.rows_per_group)

    def close(self) -> None:
        """Write what is buffered, finish the file and give it its name; closing twice (or
        after ``abort``) does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._buffered:
                self._write_rows(self._buffered)
            self._writer.close()
        except BaseException:
            self._discard()
            raise
        self.part_path.replace(self.path)

    def abort(self) -> None:
        """Drop the table: nothing is left at ``path`` or at the part file."""
        if self._closed:
            return
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        self.part_path.unlink(missing_ok=True)

    def _write_rows(self, count: int) -> None:
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        # one contiguous chunk per column: pages then never depend on how appends were cut
        self._writer.write_table(table.slice(0, count).combine_chunks(), row_group_size=count)
        rest = table.slice(count)
        self._buffer = rest.to_batches() if rest.num_rows else []
        self._buffered = rest.num_rows
        self.rows_written += count

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_table_atomic(table: pa.Table, path: str | Path) -> None:
    """``table`` as a zstd Parquet file at ``path`` (pyarrow's default level), written to a part
    file and renamed."""
    path = Path(path)
    part = path.with_name(path.name + PART_SUFFIX)
    try:
        pq.write_table(table, part, compression=COMPRESSION)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(path)


def _to_batch(columns: Columns, schema: pa.Schema, path: Path) -> pa.RecordBatch:
    """Columns as a record batch of ``schema``; errors name the column and what was expected."""
    if not isinstance(columns, Mapping):
        raise RecordError(
            f"{path.name}: append takes a mapping of column name -> values, "
            f"got {type(columns).__name__}"
        )
    expected = schema.names
    missing = [n for n in expected if n not in columns]
    extra = sorted(str(n) for n in columns if n not in expected)
    if missing or extra:
        raise RecordError(
            f"{path.name}: columns do not match the schema: missing {missing}, unexpected "
            f"{extra}; give exactly {expected}"
        )
    lengths = {name: len(columns[name]) for name in expected}
    if len(set(lengths.values())) > 1:
        raise RecordError(f"{path.name}: columns must have equal lengths, got {lengths}")
    arrays = []
    for field in schema:
        values = columns[field.name]
        try:  # infer, then a safe cast: 0.5 into an int column is an error, never a 0
            array = values if isinstance(values, pa.Array) else pa.array(values)
            arrays.append(array.cast(field.type))
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise RecordError(
                f"{path.name}: column {field.name!r} must hold {field.type} values ({exc})"
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def read_table(path: str | Path) -> pa.Table:
    """A Parquet file written by ``TableWriter`` (or any Parquet file) as an Arrow table."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no result table at {path}; check the run directory")
    return pq.read_table(path)
