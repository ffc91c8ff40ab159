"""``model.prompts``: which Lee text causal-LM inputs and generation prompts are windows of,
end to end: LocalOracle inputs and memo keys, the ``prompts`` column, replay grouping (old
tables without the column read as lee-background), the actors' input counts, and a replayed
generate run that picks the lee-test rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import models
import server.engine.local_gen
from fleet.compute.replay import ReplayOracle
from fleet.compute.shards import ComputeActor, DeviceShard
from records.tables import GENERATIONS_SCHEMA, PROFILE_SCHEMA, read_table
from server.engine.jobs import DEFAULT_PROMPTS, GenJob, HeadJob, OracleError, TailJob, codec_key
from server.engine.local import LocalOracle
from server.engine.workers import ServerWorker
from tests.fleet.test_generate import smollm2
from tests.fleet.test_local_oracle import TinyLM

LM = "smollm2-135m"
FP32 = codec_key({"id": "fp32"})
TEST = "lee-test"
SEQ = 16


@pytest.fixture(scope="module")
def lm() -> Iterator[models.CausalSplitModel]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield smollm2()  # cached: loaded once for every module that uses it
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def oracle(lm: models.CausalSplitModel) -> LocalOracle:
    return LocalOracle({LM: lm})


def ids(oracle: LocalOracle, input_id: int, prompts: str = DEFAULT_PROMPTS) -> list[int]:
    """The token ids a split-0 head sends for ``input_id``: the input itself."""
    job = HeadJob(0, LM, 0, FP32, input_id, SEQ, prompts=prompts)
    payload = oracle.submit_heads([job])[0].result().payload
    assert payload is not None
    return np.frombuffer(payload, dtype=np.int32).tolist()


def test_lee_test_inputs_are_held_out_windows_and_keyed_apart(
    oracle: LocalOracle, lm: models.CausalSplitModel
) -> None:
    assert ids(oracle, 0) == lm.samples()[0].x[:SEQ].tolist()  # the default: as before
    held_out = lm.token_windows("test")
    assert ids(oracle, 0, TEST) == held_out[0].x[:SEQ].tolist() != ids(oracle, 0)
    count = oracle.input_count(LM, SEQ, TEST)
    assert count == len(held_out) != oracle.input_count(LM, SEQ)
    assert ids(oracle, count + 1, TEST) == held_out[1].x[:SEQ].tolist()  # ids wrap per corpus
    keys = {oracle.key(HeadJob(0, LM, 0, FP32, 1, SEQ, prompts=p)) for p in (DEFAULT_PROMPTS, TEST)}
    assert {k[-1] for k in keys} == {DEFAULT_PROMPTS, TEST} and len(keys) == 2
    with pytest.raises(OracleError, match=r"request 0: prompts must be one of .*'lee-nope'"):
        ids(oracle, 0, "lee-nope")


def test_generation_prompts_come_from_the_chosen_text(
    oracle: LocalOracle, lm: models.CausalSplitModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    real = server.engine.local_gen.reference_tokens

    def recorded(model: Any, prompt: torch.Tensor, new_tokens: int) -> list[int]:
        seen.append(prompt.tolist())
        return real(model, prompt, new_tokens)

    monkeypatch.setattr(server.engine.local_gen, "reference_tokens", recorded)
    jobs = [GenJob(0, LM, 0, FP32, 3, SEQ, 2, prompts=p) for p in (DEFAULT_PROMPTS, TEST)]
    results = [f.result() for f in oracle.submit_generations(jobs)]
    assert seen == [lm.samples()[3].x[:SEQ].tolist(), lm.token_windows("test")[3].x[:SEQ].tolist()]
    rows = oracle.generation_rows()
    mine = [i for i, n in enumerate(rows["input_id"]) if n == 3 and rows["new_tokens"][i] == 2]
    assert [rows["prompts"][i] for i in mine] == [DEFAULT_PROMPTS, TEST]
    assert len(results) == 2 and oracle.submit_generations(jobs[1:])[0].result() == results[1]


def test_profile_round_trip_keeps_the_text(oracle: LocalOracle, tmp_path: Path) -> None:
    for prompts in (DEFAULT_PROMPTS, TEST):
        for input_id in (0, 1):
            job = HeadJob(0, LM, 0, FP32, input_id, SEQ, prompts=prompts)
            head = oracle.submit_heads([job])[0].result()
            tail = TailJob(0, LM, 0, FP32, input_id, SEQ, head, prompts=prompts)
            oracle.submit_tails([tail])
    oracle.write_profile(tmp_path / "profile.parquet")
    table = read_table(tmp_path / "profile.parquet")
    assert table.schema.names == PROFILE_SCHEMA.names
    replay = ReplayOracle([tmp_path / "profile.parquet"])
    assert (LM, 0, FP32, SEQ, TEST) in replay.coverage()
    for prompts in (DEFAULT_PROMPTS, TEST):
        got = replay.submit_heads([HeadJob(0, LM, 0, FP32, 1, SEQ, prompts=prompts)])
        assert replay.table.column("prompts")[got[0].result().row].as_py() == prompts


def test_tables_without_the_column_replay_as_lee_background(tmp_path: Path) -> None:
    from tests.fleet.simkit import MODEL, fp32_key, write_generations, write_profile

    old = write_profile(tmp_path / "old", payload_bytes=[700, 800])
    pq.write_table(read_table(old).drop_columns(["prompts"]), old)
    gens = write_generations(tmp_path / "old")
    pq.write_table(read_table(gens).drop_columns(["prompts"]), gens)
    replay = ReplayOracle([tmp_path / "old"])
    assert replay.coverage() == [(MODEL, 4, fp32_key(), 8, DEFAULT_PROMPTS)]
    got = replay.submit_heads([HeadJob(0, MODEL, 4, fp32_key(), 1, 8)])
    assert got[0].result().payload_bytes == 800
    gen = replay.submit_generations([GenJob(0, MODEL, 4, fp32_key(), 0, 8, 3)])
    assert gen[0].result().prompt_payload_bytes == 100
    with pytest.raises(OracleError, match=r"seq_len=8 prompts=lee-test; it has"):
        replay.submit_heads([HeadJob(0, MODEL, 4, fp32_key(), 1, 8, prompts=TEST)])
    with pytest.raises(OracleError, match=r"new_tokens=3 prompts=lee-test; it has"):
        replay.submit_generations([GenJob(0, MODEL, 4, fp32_key(), 0, 8, 3, prompts=TEST)])


def test_models_without_lee_windows_ignore_or_refuse_prompts(tmp_path: Path) -> None:
    from tests.fleet.simkit import write_profile

    tiny = LocalOracle({"tiny-lm": TinyLM()})
    with pytest.raises(OracleError, match=r"tiny-lm: prompts 'lee-test' needs the model's"):
        tiny.submit_heads([HeadJob(0, "tiny-lm", 1, FP32, 0, 5, prompts=TEST)])
    # a seq_len-0 group (a vision model or an encoder) answers jobs of any prompts
    path = write_profile(tmp_path / "cnn", payload_bytes=[42], seq_len=0)
    table = read_table(path).set_column(0, "model", pa.array(["cnn"]))
    pq.write_table(table, path)
    job = HeadJob(0, "cnn", 4, table.column("codec")[0].as_py(), 0, 64, prompts=TEST)
    assert ReplayOracle([path]).submit_heads([job])[0].result().payload_bytes == 42


def test_actors_count_and_key_inputs_per_text(oracle: LocalOracle) -> None:
    shard, worker, both = (cls.__new__(cls) for cls in (DeviceShard, ServerWorker, ComputeActor))
    for actor in (shard, worker, both):
        actor._oracle = oracle  # the plain classes, sharing the loaded model (no Ray)
    count = oracle.input_count(LM, SEQ, TEST)
    assert shard.inputs(LM, SEQ, TEST) == (count, SEQ, TEST)
    assert shard.inputs(LM, SEQ)[2] == DEFAULT_PROMPTS
    assert worker.warm(LM, SEQ, TEST) == count == both.warm(LM, SEQ, TEST)
    empty = oracle.submit_heads([HeadJob(0, LM, 0, FP32, 0, SEQ)])[0].result()
    (got,) = both.tails([TailJob(0, LM, 0, FP32, 5, SEQ, empty, prompts=TEST)])
    assert not isinstance(got, str) and got[:2] == (1.0, 4)  # ids at split 0: lossless
    assert (LM, 0, FP32, 5, SEQ, 0, TEST) in oracle._heads  # its own head ran on lee-test
    assert (LM, 0, FP32, 5, SEQ, 0, DEFAULT_PROMPTS) not in oracle._heads


def test_a_replayed_generate_run_uses_the_lee_test_rows(tmp_path: Path) -> None:
    from fleet.run.runner import run_one
    from tests.fleet.simkit import write_generations
    from tests.fleet.test_sim_generate import _scenario

    path = write_generations(tmp_path / "real")
    background = read_table(path)
    held_out = background.set_column(
        GENERATIONS_SCHEMA.get_field_index("prompt_payload_bytes"),
        "prompt_payload_bytes",
        pa.array([1100, 1300], pa.int64()),
    ).set_column(GENERATIONS_SCHEMA.get_field_index("prompts"), "prompts", pa.array([TEST] * 2))
    pq.write_table(pa.concat_tables([background, held_out]), path)
    model = {"prompts": TEST, "inputs": 2}
    s = _scenario(replay_from=str(tmp_path / "real"), fleet0={"count": 6}, model=model)
    assert s.model.prompts == TEST
    run_one(s, tmp_path / "run", quiet=True)
    requests = read_table(tmp_path / "run" / "requests.parquet").to_pylist()
    by_input = {r["input_id"]: r["payload_bytes"] for r in requests}
    assert by_input == {0: 1100 + 20 + 50 + 60, 1: 1300 + 20 + 70 + 80}


def test_jobs_default_to_lee_background() -> None:
    for kind in (HeadJob, TailJob, GenJob):
        defaults = {f.name: f.default for f in dataclasses.fields(kind)}
        assert defaults["prompts"] == DEFAULT_PROMPTS == "lee-background", kind
