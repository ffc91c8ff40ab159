"""The replay oracle: answers head and tail jobs from rows a real run recorded, without torch.

A profile (``fleet.records.PROFILE_SCHEMA``) holds one row per (model, split, codec, input_id,
seq_len) measured by ``LocalOracle``. Rows are grouped by (model, split, codec key, seq_len)
and sorted by input id; job ``input_id`` i gets row ``i % len(group)``, so the simulator may
draw input ids freely. ``seq_len`` 0 in a profile means the model ignores it (vision,
encoders): such a group answers jobs of any ``seq_len``. Every answer is prebuilt at load time,
so a job costs one dict lookup and one list index.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fleet.oracle import (
    Done,
    HeadJob,
    HeadResult,
    OracleError,
    TailJob,
    TailResult,
    codec_key,
)
from fleet.records import PROFILE_SCHEMA, read_table

PROFILE_FILE = "profile.parquet"
GroupKey = tuple[str, int, str, int]  # (model, split, codec key, seq_len)
_KEY_COLUMNS = ("model", "split", "codec", "seq_len", "input_id")


class _Group:
    """One (model, split, codec, seq_len)'s answers, indexed by position in input-id order."""

    __slots__ = ("heads", "tails")

    def __init__(self, heads: list[Done[HeadResult]], tails: list[Done[TailResult]]) -> None:
        self.heads, self.tails = heads, tails


class ReplayOracle:
    """Serves recorded results; see the module docstring for how jobs map to rows."""

    def __init__(self, profiles: Sequence[str | Path]) -> None:
        if isinstance(profiles, str | Path):
            profiles = [profiles]
        files = sorted({f for p in profiles for f in find_profiles(p)})
        self.files = files
        self.table = _merge([read_table(f) for f in files], files)
        self._groups = _build_groups(self.table)
        self._lookup: dict[GroupKey, _Group] = {}
        self._head_calls = 0
        self._tail_calls = 0

    def submit_heads(self, jobs: Sequence[HeadJob]) -> list[Done[HeadResult]]:
        out = []
        for job in jobs:
            heads = self._group(job.model, job.split, job.codec, job.seq_len).heads
            out.append(heads[job.input_id % len(heads)])
        self._head_calls += len(jobs)
        return out

    def submit_tails(self, jobs: Sequence[TailJob]) -> list[Done[TailResult]]:
        out = []
        for job in jobs:
            tails = self._group(job.model, job.split, job.codec, job.seq_len).tails
            out.append(tails[job.input_id % len(tails)])
        self._tail_calls += len(jobs)
        return out

    def stats(self) -> dict[str, int]:
        return {"head_calls": self._head_calls, "tail_calls": self._tail_calls}

    def coverage(self) -> list[tuple[str, int, str, int]]:
        """Every (model, split, codec key, seq_len) the profiles answer, sorted."""
        return sorted(self._groups)

    def close(self) -> None:
        """Nothing to release: the profile lives in memory."""

    def _group(self, model: str, split: int, codec: str, seq_len: int) -> _Group:
        key = (model, split, codec, seq_len)
        group = self._lookup.get(key)
        if group is None:
            group = self._resolve(key)
            self._lookup[key] = group
        return group

    def _resolve(self, key: GroupKey) -> _Group:
        model, split, codec, seq_len = key
        with contextlib.suppress(ValueError, TypeError):  # not JSON: reported below as given
            codec = codec_key(json.loads(codec))
        for candidate in ((model, split, codec, seq_len), (model, split, codec, 0)):
            if candidate in self._groups:
                return self._groups[candidate]
        have = "\n  ".join(f"{c}" for c in self.coverage()) or "(nothing)"
        raise OracleError(
            f"the replay profile has no rows for model={model!r} split={split} codec={codec} "
            f"seq_len={seq_len}; it has (model, split, codec, seq_len):\n  {have}\n"
            f"record it with `slicer run SCENARIO --mode real` on a scenario covering that "
            f"split and codec, then replay from that run (profiles read: "
            f"{[str(f) for f in self.files]})"
        )


def find_profiles(path: str | Path) -> list[Path]:
    """The profile files under ``path``: the file itself, or every ``profile.parquet`` below a
    run or sweep directory, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(path.rglob(PROFILE_FILE))
        if found:
            return found
        raise OracleError(
            f"no {PROFILE_FILE} under {path}; replay needs a run recorded with `--mode real` "
            "(its run directory, a sweep directory of such runs, or the file itself)"
        )
    raise OracleError(f"replay profile {path} does not exist; give a profile.parquet or a run dir")


def _merge(tables: list[pa.Table], files: list[Path]) -> pa.Table:
    """One table of every profile row, sorted by key; a duplicate key keeps the row of the
    first file in path order."""
    if not tables:
        raise OracleError("ReplayOracle needs at least one profile path")
    checked = []
    for table, file in zip(tables, files, strict=True):
        missing = [n for n in PROFILE_SCHEMA.names if n not in table.column_names]
        if missing:
            raise OracleError(
                f"{file} is not a replay profile: it lacks columns {missing}; profiles are "
                "written by real runs (`slicer run SCENARIO --mode real`)"
            )
        checked.append(table.select(PROFILE_SCHEMA.names).cast(PROFILE_SCHEMA))
    merged = pa.concat_tables(checked)
    try:
        canonical = [codec_key(json.loads(c)) for c in merged.column("codec").to_pylist()]
    except (ValueError, TypeError) as exc:
        raise OracleError(
            f"a profile in {[str(f) for f in files]} has a codec that is not a JSON codec "
            f"config ({exc}); profiles store fleet.oracle.codec_key text"
        ) from exc
    merged = merged.set_column(
        PROFILE_SCHEMA.get_field_index("codec"), "codec", pa.array(canonical, pa.string())
    )
    order = pc.sort_indices(
        merged.append_column("_file_order", pa.array(np.arange(merged.num_rows))),
        sort_keys=[(k, "ascending") for k in (*_KEY_COLUMNS, "_file_order")],
    )
    merged = merged.take(order)
    keys = list(zip(*(merged.column(k).to_pylist() for k in _KEY_COLUMNS), strict=True))
    keep = [i for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
    return merged.take(pa.array(keep, pa.int64()))


def _build_groups(table: pa.Table) -> dict[GroupKey, _Group]:
    """Prebuilt ``Done`` answers per group; ``HeadResult.row`` is the row in ``table``."""
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    groups: dict[GroupKey, _Group] = {}
    for row in range(table.num_rows):
        key = (cols["model"][row], cols["split"][row], cols["codec"][row], cols["seq_len"][row])
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group([], [])
        head = HeadResult(cols["raw_bytes"][row], cols["payload_bytes"][row], None, row)
        group.heads.append(Done(head))
        group.tails.append(Done(TailResult(cols["agreement"][row], cols["result_bytes"][row])))
    return groups
