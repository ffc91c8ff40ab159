"""The replay oracle: answers head, tail and generation jobs from rows a real run recorded,
without torch.

A profile (``records.tables.PROFILE_SCHEMA``) holds one row per (model, split, codec, input_id,
seq_len, prompts) measured by ``LocalOracle``. Rows are grouped by (model, split, codec key,
seq_len, prompts) and sorted by input id; job ``input_id`` i gets row ``i % len(group)``, so
the simulator may draw input ids freely. ``seq_len`` 0 in a profile means the model ignores
it and ``prompts`` too (vision, encoders): such a group answers jobs of any ``seq_len`` and
any ``prompts``.

Generations (``GENERATIONS_SCHEMA``, ``task: generate`` runs) work the same way: rows are
grouped by (model, split, codec key, prompt_tokens, new_tokens, prompts), sorted by input id,
and job ``input_id`` i gets row ``i % len(group)``. A table written before the ``prompts``
column existed is read as ``prompts: lee-background`` (the only text there was then).

A path may hold profiles, generation tables or both: a file is read with its sibling of the
other kind if there is one; a run or sweep directory gives every ``profile.parquet`` and
``generations.parquet`` below it. Every answer is prebuilt at load time, so a job costs one
dict lookup and one list index.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from records.tables import GENERATIONS_SCHEMA, PROFILE_SCHEMA, read_table
from server.engine.jobs import (
    DEFAULT_PROMPTS,
    Done,
    GenJob,
    GenResult,
    HeadJob,
    HeadResult,
    OracleError,
    TailJob,
    TailResult,
    codec_key,
)

PROFILE_FILE = "profile.parquet"
GENERATIONS_FILE = "generations.parquet"
GroupKey = tuple[str, int, str, int, str]  # (model, split, codec key, seq_len, prompts)
# (model, split, codec key, prompt_tokens, new_tokens, prompts)
GenGroupKey = tuple[str, int, str, int, int, str]
_KEY_COLUMNS = ("model", "split", "codec", "seq_len", "prompts", "input_id")
_GEN_KEY_COLUMNS = ("model", "split", "codec", "prompt_tokens", "new_tokens", "prompts", "input_id")
_RECORD = "record it with `slicer run SCENARIO --mode real`"


class _Group:
    """One (model, split, codec, seq_len, prompts)'s answers, indexed by position in input-id
    order."""

    __slots__ = ("heads", "tails")

    def __init__(self, heads: list[Done[HeadResult]], tails: list[Done[TailResult]]) -> None:
        self.heads, self.tails = heads, tails


class ReplayOracle:
    """Serves recorded results; see the module docstring for how jobs map to rows."""

    def __init__(self, profiles: Sequence[str | Path]) -> None:
        if isinstance(profiles, str | Path):
            profiles = [profiles]
        if not profiles:
            raise OracleError("ReplayOracle needs at least one profile path")
        found = [find_tables(p) for p in profiles]
        self.files = sorted({f for tables, _ in found for f in tables})
        self.generation_files = sorted({f for _, tables in found for f in tables})
        self.table = _merge(self.files, PROFILE_SCHEMA, _KEY_COLUMNS, "a replay profile")
        self.generations = _merge(
            self.generation_files, GENERATIONS_SCHEMA, _GEN_KEY_COLUMNS, "a generations table"
        )
        self._groups = _build_groups(self.table)
        self._gen_groups = _build_gen_groups(self.generations)
        self._lookup: dict[GroupKey, _Group] = {}
        self._gen_lookup: dict[GenGroupKey, list[Done[GenResult]]] = {}
        self._head_calls = 0
        self._tail_calls = 0
        self._gen_calls = 0

    def submit_heads(self, jobs: Sequence[HeadJob]) -> list[Done[HeadResult]]:
        out = []
        for job in jobs:
            heads = self._group(job.model, job.split, job.codec, job.seq_len, job.prompts).heads
            out.append(heads[job.input_id % len(heads)])
        self._head_calls += len(jobs)
        return out

    def submit_tails(self, jobs: Sequence[TailJob]) -> list[Done[TailResult]]:
        out = []
        for job in jobs:
            tails = self._group(job.model, job.split, job.codec, job.seq_len, job.prompts).tails
            out.append(tails[job.input_id % len(tails)])
        self._tail_calls += len(jobs)
        return out

    def submit_generations(self, jobs: Sequence[GenJob]) -> list[Done[GenResult]]:
        out = []
        for job in jobs:
            lengths = (job.prompt_tokens, job.new_tokens)
            key = (job.model, job.split, job.codec, *lengths, job.prompts)
            group = self._gen_lookup.get(key)
            if group is None:
                group = self._gen_lookup[key] = self._resolve_generations(key)
            out.append(group[job.input_id % len(group)])
        self._gen_calls += len(jobs)
        return out

    works_ahead = False  # answers are prebuilt

    def prefetch(self, jobs: Sequence[HeadJob | GenJob]) -> None:
        """Nothing: every answer is prebuilt at load time and costs one lookup."""

    def stats(self) -> dict[str, int]:
        """Jobs answered; ``gen_calls`` only once a generation job was submitted."""
        gens = {"gen_calls": self._gen_calls} if self._gen_calls else {}
        return {"head_calls": self._head_calls, "tail_calls": self._tail_calls, **gens}

    def coverage(self) -> list[GroupKey]:
        """Every (model, split, codec key, seq_len, prompts) the profiles answer, sorted."""
        return sorted(self._groups)

    def generation_coverage(self) -> list[GenGroupKey]:
        """Every (model, split, codec key, prompt_tokens, new_tokens, prompts) the generation
        tables answer, sorted."""
        return sorted(self._gen_groups)

    def close(self) -> None:
        """Nothing to release: the profile lives in memory."""

    def _group(self, model: str, split: int, codec: str, seq_len: int, prompts: str) -> _Group:
        key = (model, split, codec, seq_len, prompts)
        group = self._lookup.get(key)
        if group is None:
            group = self._resolve(key)
            self._lookup[key] = group
        return group

    def _resolve(self, key: GroupKey) -> _Group:
        model, split, codec, seq_len, prompts = key
        codec = _canonical(codec)
        candidates = [(model, split, codec, seq_len, prompts), (model, split, codec, 0, prompts)]
        candidates.append((model, split, codec, 0, DEFAULT_PROMPTS))  # a model ignoring both
        for candidate in candidates:
            if candidate in self._groups:
                return self._groups[candidate]
        have = "\n  ".join(f"{c}" for c in self.coverage()) or "(nothing)"
        raise OracleError(
            f"the replay profile has no rows for model={model!r} split={split} codec={codec} "
            f"seq_len={seq_len} prompts={prompts}; it has (model, split, codec, seq_len, "
            f"prompts):\n  {have}\n"
            f"{_RECORD} on a scenario covering that split and codec, then replay from that run "
            f"(profiles read: {[str(f) for f in self.files]})"
        )

    def _resolve_generations(self, key: GenGroupKey) -> list[Done[GenResult]]:
        model, split, codec, prompt_tokens, new_tokens, prompts = key
        codec = _canonical(codec)
        group = self._gen_groups.get((model, split, codec, prompt_tokens, new_tokens, prompts))
        if group is not None:
            return group
        have = "\n  ".join(f"{c}" for c in self.generation_coverage()) or "(nothing)"
        raise OracleError(
            f"the replay profile has no generations for model={model!r} split={split} "
            f"codec={codec} prompt_tokens={prompt_tokens} new_tokens={new_tokens} "
            f"prompts={prompts}; it has (model, split, codec, prompt_tokens, new_tokens, "
            f"prompts):\n  {have}\n{_RECORD} on a task: generate scenario covering that split, "
            "codec, those lengths and prompts, then replay from that run (generation tables "
            f"read: {[str(f) for f in self.generation_files]})"
        )


def find_tables(path: str | Path) -> tuple[list[Path], list[Path]]:
    """(profiles, generation tables) at ``path``: a file with its sibling of the other kind
    if there is one, or every ``profile.parquet`` and ``generations.parquet`` below a run or
    sweep directory, sorted."""
    path = Path(path)
    if path.is_file():
        if path.name == GENERATIONS_FILE:
            sibling = path.with_name(PROFILE_FILE)
            return ([sibling] if sibling.is_file() else []), [path]
        sibling = path.with_name(GENERATIONS_FILE)
        return [path], ([sibling] if sibling.is_file() else [])
    if path.is_dir():
        profiles, generations = (
            sorted(path.rglob(PROFILE_FILE)),
            sorted(path.rglob(GENERATIONS_FILE)),
        )
        if profiles or generations:
            return profiles, generations
        raise OracleError(
            f"no {PROFILE_FILE} under {path} (nor any {GENERATIONS_FILE}); replay needs a run "
            "recorded with `--mode real` (its run directory, a sweep directory of such runs, "
            "or the file itself)"
        )
    raise OracleError(
        f"replay profile {path} does not exist; give a {PROFILE_FILE}, a {GENERATIONS_FILE} "
        "or a run directory"
    )


def _canonical(codec: str) -> str:
    with contextlib.suppress(ValueError, TypeError):  # not JSON: reported as given
        return codec_key(json.loads(codec))
    return codec


def _merge(files: list[Path], schema: pa.Schema, keys: Sequence[str], what: str) -> pa.Table:
    """One table of every row of ``files``, sorted by ``keys``; a duplicate key keeps the row
    of the first file in path order; a file without the ``prompts`` column (written before it
    existed) reads as ``lee-background``. No files: an empty table."""
    checked = []
    for file in files:
        table = read_table(file)
        if "prompts" in schema.names and "prompts" not in table.column_names:
            table = table.append_column("prompts", pa.array([DEFAULT_PROMPTS] * table.num_rows))
        missing = [n for n in schema.names if n not in table.column_names]
        if missing:
            raise OracleError(
                f"{file} is not {what}: it lacks columns {missing}; these tables are written "
                "by real runs (`slicer run SCENARIO --mode real`)"
            )
        checked.append(table.select(schema.names).cast(schema))
    merged = pa.concat_tables(checked) if checked else schema.empty_table()
    try:
        canonical = [codec_key(json.loads(c)) for c in merged.column("codec").to_pylist()]
    except (ValueError, TypeError) as exc:
        raise OracleError(
            f"a table in {[str(f) for f in files]} has a codec that is not a JSON codec "
            f"config ({exc}); profiles store server.engine.jobs.codec_key text"
        ) from exc
    merged = merged.set_column(
        schema.get_field_index("codec"), "codec", pa.array(canonical, pa.string())
    )
    order = pc.sort_indices(
        merged.append_column("_file_order", pa.array(np.arange(merged.num_rows))),
        sort_keys=[(k, "ascending") for k in (*keys, "_file_order")],
    )
    merged = merged.take(order)
    rows = list(zip(*(merged.column(k).to_pylist() for k in keys), strict=True))
    keep = [i for i, k in enumerate(rows) if i == 0 or k != rows[i - 1]]
    return merged.take(pa.array(keep, pa.int64()))


def _build_groups(table: pa.Table) -> dict[GroupKey, _Group]:
    """Prebuilt ``Done`` answers per group; ``HeadResult.row`` is the row in ``table``."""
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    groups: dict[GroupKey, _Group] = {}
    for row in range(table.num_rows):
        key = (
            cols["model"][row],
            cols["split"][row],
            cols["codec"][row],
            cols["seq_len"][row],
            cols["prompts"][row],
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group([], [])
        head = HeadResult(cols["raw_bytes"][row], cols["payload_bytes"][row], None, row)
        group.heads.append(Done(head))
        group.tails.append(Done(TailResult(cols["agreement"][row], cols["result_bytes"][row])))
    return groups


def _build_gen_groups(table: pa.Table) -> dict[GenGroupKey, list[Done[GenResult]]]:
    """Prebuilt ``Done`` answers per group; ``GenResult.row`` is the row in ``table``."""
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    groups: dict[GenGroupKey, list[Done[GenResult]]] = {}
    for row in range(table.num_rows):
        key = (
            cols["model"][row],
            cols["split"][row],
            cols["codec"][row],
            cols["prompt_tokens"][row],
            cols["new_tokens"][row],
            cols["prompts"][row],
        )
        result = GenResult(
            prompt_raw_bytes=cols["prompt_raw_bytes"][row],
            prompt_payload_bytes=cols["prompt_payload_bytes"][row],
            setup_bytes=cols["setup_bytes"][row],
            step_raw_bytes=cols["step_raw_bytes"][row],
            step_payload_bytes=tuple(cols["step_payload_bytes"][row]),
            token_bytes=cols["token_bytes"][row],
            tokens_matching=cols["tokens_matching"][row],
            agreement=cols["agreement"][row],
            row=row,
        )
        groups.setdefault(key, []).append(Done(result))
    return groups
