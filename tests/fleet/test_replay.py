"""The replay oracle on small hand-written profiles: row choice, grouping, merging files,
the seq_len-0 wildcard, and errors that say what is missing."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.compute.replay import ReplayOracle
from records.tables import PROFILE_SCHEMA, TableWriter
from server.engine.jobs import Done, HeadJob, HeadResult, OracleError, TailJob, codec_key

SLICER = codec_key({"id": "slicer", "max_nmse": 0.01})
FP32 = codec_key({"id": "fp32"})
BG = "lee-background"


def row(
    model: str, split: int, codec: str, input_id: int, seq_len: int, payload_bytes: int, **kw: Any
) -> dict[str, Any]:
    return {
        "model": model,
        "split": split,
        "codec": codec,
        "codec_id": "x",
        "input_id": input_id,
        "seq_len": seq_len,
        "raw_bytes": kw.get("raw_bytes", 1000),
        "payload_bytes": payload_bytes,
        "result_bytes": kw.get("result_bytes", 4),
        "agreement": kw.get("agreement", 1.0),
        "head_wall_s": 0.01,
        "tail_wall_s": 0.02,
        "prompts": kw.get("prompts", "lee-background"),
    }


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with TableWriter(path, PROFILE_SCHEMA) as writer:
        writer.append({name: [r[name] for r in rows] for name in PROFILE_SCHEMA.names})
    return path


def head(model: str, split: int, codec: str, input_id: int, seq_len: int = 64) -> HeadJob:
    return HeadJob(0, model, split, codec, input_id, seq_len)


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    return write(
        tmp_path / "run" / "profile.parquet",
        [  # written out of order on purpose
            row("lm", 4, SLICER, 2, 64, 302, agreement=0.5),
            row("lm", 4, SLICER, 0, 64, 300, agreement=0.75),
            row("lm", 4, SLICER, 1, 64, 301, agreement=1.0, result_bytes=8),
            row("lm", 4, SLICER, 0, 32, 150),
            row("lm", 4, FP32, 0, 64, 1011, raw_bytes=1000),
            row("cnn", 7, SLICER, 0, 0, 50),
            row("cnn", 7, SLICER, 1, 0, 51),
        ],
    )


def test_rows_are_picked_by_input_id_modulo_the_group(profile: Path) -> None:
    oracle = ReplayOracle([profile])
    jobs = [head("lm", 4, SLICER, i) for i in (0, 1, 2, 3, 7)]
    results = [f.result() for f in oracle.submit_heads(jobs)]
    assert [r.payload_bytes for r in results] == [300, 301, 302, 300, 301]
    assert all(r.payload is None and r.raw_bytes == 1000 for r in results)
    assert results[0].row == results[3].row != results[1].row
    tails = oracle.submit_tails([TailJob(0, "lm", 4, SLICER, i, 64, results[0]) for i in (1, 5)])
    assert [(t.result().agreement, t.result().result_bytes) for t in tails] == [(1.0, 8), (0.5, 4)]
    assert all(isinstance(f, Done) for f in tails)
    assert oracle.stats() == {"head_calls": 5, "tail_calls": 2}


def test_groups_keep_codecs_and_seq_lens_apart(profile: Path) -> None:
    oracle = ReplayOracle([profile])
    assert oracle.coverage() == [
        ("cnn", 7, SLICER, 0, BG),
        ("lm", 4, FP32, 64, BG),
        ("lm", 4, SLICER, 32, BG),
        ("lm", 4, SLICER, 64, BG),
    ]
    got = oracle.submit_heads([head("lm", 4, FP32, 5), head("lm", 4, SLICER, 5, seq_len=32)])
    assert [f.result().payload_bytes for f in got] == [1011, 150]


def test_seq_len_zero_answers_any_seq_len(profile: Path) -> None:
    oracle = ReplayOracle([profile])
    got = oracle.submit_heads([head("cnn", 7, SLICER, 1, seq_len=s) for s in (1, 64, 512)])
    assert [f.result().payload_bytes for f in got] == [51, 51, 51]


def test_codec_text_is_matched_canonically(tmp_path: Path) -> None:
    loose = '{ "max_nmse": 0.01,  "id": "slicer" }'
    path = write(tmp_path / "p.parquet", [row("cnn", 2, loose, 0, 0, 9)])
    oracle = ReplayOracle([path])
    assert oracle.coverage() == [("cnn", 2, SLICER, 0, BG)]
    assert oracle.submit_heads([head("cnn", 2, SLICER, 0)])[0].result().payload_bytes == 9
    assert oracle.submit_heads([head("cnn", 2, loose, 0)])[0].result().payload_bytes == 9


def test_sweep_directories_merge_and_drop_duplicates(tmp_path: Path) -> None:
    write(tmp_path / "sweep" / "a" / "profile.parquet", [row("cnn", 1, FP32, 1, 0, 11)])
    write(
        tmp_path / "sweep" / "b" / "profile.parquet",
        [row("cnn", 1, FP32, 0, 0, 10), row("cnn", 1, FP32, 1, 0, 99)],  # input 1 again
    )
    (tmp_path / "sweep" / "c").mkdir()  # a run without a profile is skipped
    for order in ([tmp_path / "sweep"], [tmp_path / "sweep" / "b", tmp_path / "sweep" / "a"]):
        oracle = ReplayOracle(order)
        assert oracle.table.num_rows == 2
        got = oracle.submit_heads([head("cnn", 1, FP32, i) for i in (0, 1)])
        assert [f.result().payload_bytes for f in got] == [10, 11]  # a/ comes first by path


def test_missing_group_says_what_exists_and_how_to_record_it(profile: Path) -> None:
    oracle = ReplayOracle([str(profile.parent)])
    with pytest.raises(OracleError) as info:
        oracle.submit_heads([head("lm", 5, SLICER, 0)])
    message = str(info.value)
    assert "model='lm' split=5" in message and "seq_len=64" in message
    assert "('lm', 4, " in message and "--mode real" in message
    with pytest.raises(OracleError, match="split=4 codec="):
        oracle.submit_tails([TailJob(0, "lm", 4, SLICER, 0, 16, HeadResult(1000, 300))])


def test_paths_without_profiles_are_errors(tmp_path: Path) -> None:
    with pytest.raises(OracleError, match="does not exist"):
        ReplayOracle([tmp_path / "nothing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(OracleError, match=r"no profile\.parquet under"):
        ReplayOracle([tmp_path / "empty"])
    with pytest.raises(OracleError, match="at least one"):
        ReplayOracle([])
    bad = tmp_path / "bad.parquet"
    with TableWriter(bad, PROFILE_SCHEMA.remove(PROFILE_SCHEMA.get_field_index("agreement"))):
        pass
    with pytest.raises(OracleError, match=r"lacks columns \['agreement'\]"):
        ReplayOracle([bad])


def test_many_jobs_are_fast(profile: Path) -> None:
    oracle = ReplayOracle([profile])
    jobs = [head("lm", 4, SLICER, i) for i in range(100_000)]
    start = time.perf_counter()
    futures = oracle.submit_heads(jobs)
    elapsed_s = time.perf_counter() - start
    assert len(futures) == 100_000 and futures[-1].result().payload_bytes == 300
    assert elapsed_s < (2.0 if sys.gettrace() is None else 20.0)  # ~0.05 s on a laptop core
