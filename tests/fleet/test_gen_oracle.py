"""The generation path of the oracles (``task: generate``): LocalOracle results per split and
codec, memo and shared references, errors, the generations table round-tripped through the
ReplayOracle, and the RayOracle giving the LocalOracle's results."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

import codec
import models
import server.engine.local_gen
from codec.stream import open_encoder
from fleet.compute.replay import ReplayOracle
from models.split import BlockProfile, Sample, SplitModel
from records.tables import GENERATIONS_SCHEMA, read_table
from server.engine.generate import reference_tokens
from server.engine.jobs import (
    ComputeFailed,
    Done,
    GenJob,
    GenResult,
    HeadJob,
    OracleError,
    codec_key,
)
from server.engine.local import LocalOracle
from tests.fleet.test_generate import smollm2

LM = "smollm2-135m"
FP32 = codec_key({"id": "fp32"})
FP16 = codec_key({"id": "fp16"})
SLICER = codec_key({"id": "slicer", "max_nmse": 0.01})
PROMPT, NEW = 16, 4
D = 576  # SmolLM2-135M hidden size


@pytest.fixture(scope="module")
def lm() -> Iterator[models.CausalSplitModel]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the actors: equal bits in and out of Ray
    yield smollm2()  # loaded once for every test module that uses it
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def oracle(lm: models.CausalSplitModel) -> LocalOracle:
    """One oracle shared by the tests that only read results: each sequence runs once."""
    return LocalOracle({LM: lm})


def job(split: int, key: str, input_id: int = 0, **kw: Any) -> GenJob:
    return GenJob(kw.get("request_id", 0), kw.get("model", LM), split, key, input_id,
                  kw.get("prompt_tokens", PROMPT), kw.get("new_tokens", NEW))  # fmt: skip


def gen(oracle: Any, *jobs: GenJob) -> list[GenResult]:
    return [f.result() for f in oracle.submit_generations(jobs)]


def test_split_zero_sends_ids_and_equals_the_unsplit_model(oracle: LocalOracle) -> None:
    (got,) = gen(oracle, job(0, SLICER))  # token ids skip the codec
    assert got == GenResult(
        prompt_raw_bytes=4 * PROMPT,
        prompt_payload_bytes=4 * PROMPT,
        setup_bytes=0,
        step_raw_bytes=4,
        step_payload_bytes=(4,) * (NEW - 1),
        token_bytes=4,
        tokens_matching=NEW,
        agreement=1.0,
    )


def test_fp32_is_lossless_and_steps_are_stream_frames(
    oracle: LocalOracle, lm: models.CausalSplitModel
) -> None:
    (got,) = gen(oracle, job(8, FP32))
    assert (got.tokens_matching, got.agreement, got.token_bytes) == (NEW, 1.0, 4)
    fp32 = codec.get_codec({"id": "fp32"})
    with torch.inference_mode():
        prefill = lm.head(lm.samples()[0].x[:PROMPT], 8)  # input 0: the first window, cut
    stream = open_encoder(fp32, prefill)
    frame_bytes = len(stream.encode(prefill[:1]))
    assert (got.prompt_raw_bytes, got.step_raw_bytes) == (4 * D * PROMPT, 4 * D)
    assert got.prompt_payload_bytes == len(fp32.encode(prefill))
    assert got.setup_bytes == len(stream.setup) > 0
    assert got.step_payload_bytes == (frame_bytes,) * (NEW - 1)
    assert 4 * D < frame_bytes < 4 * D + 8  # codes and a check, no container header


def test_slicer_frames_are_smaller_than_fp16_frames(
    oracle: LocalOracle, lm: models.CausalSplitModel
) -> None:
    slicer, fp16 = gen(oracle, job(8, SLICER), job(8, FP16))
    assert len(slicer.step_payload_bytes) == len(fp16.step_payload_bytes) == NEW - 1
    assert all(
        s < f for s, f in zip(slicer.step_payload_bytes, fp16.step_payload_bytes, strict=True)
    )
    assert max(slicer.step_payload_bytes) < D  # under 1 byte a value; fp16 takes 2
    assert slicer.prompt_payload_bytes < fp16.prompt_payload_bytes
    assert 0.0 <= slicer.agreement <= 1.0 and 0 <= slicer.tokens_matching <= NEW
    assert slicer.setup_bytes > fp16.setup_bytes > 0  # the calibrated setting travels once
    again = gen(LocalOracle({LM: lm}), job(8, SLICER))[0]  # deterministic
    assert again == slicer


def test_memo_wraps_input_ids_and_shares_the_reference(
    lm: models.CausalSplitModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = reference_tokens

    def counted(model: Any, prompt: torch.Tensor, new_tokens: int) -> list[int]:
        calls.append(new_tokens)
        return real(model, prompt, new_tokens)

    monkeypatch.setattr(server.engine.local_gen, "reference_tokens", counted)
    oracle = LocalOracle({LM: lm})
    n = len(lm.samples())  # every window is long enough for the prompt
    first = oracle.submit_generations([job(0, FP32, 3), job(0, FP32, 3 + n)])
    assert all(isinstance(f, Done) for f in first)
    assert first[0].result() is first[1].result()
    gen(oracle, job(1, FP32, 3))  # another split: the unsplit reference is reused
    assert calls == [NEW]
    assert oracle.stats() == {
        "head_calls": 0,
        "head_memo_hits": 0,
        "tail_calls": 0,
        "tail_memo_hits": 0,
        "gen_calls": 3,
        "gen_memo_hits": 1,
    }
    assert oracle.generation_rows()["split"] == [0, 1]
    assert oracle.run_generation(job(1, FP32, 3))[0] is gen(oracle, job(1, FP32, 3))[0]


class Vision(SplitModel):
    """Not a causal LM: generation has no rules for it."""

    name, task, pretrained = "tiny-cnn", "image-classification", True

    @property
    def blocks(self) -> tuple[str, ...]:
        return ("conv",)

    def head(self, x: Any, split: int) -> Any:
        return x

    def tail(self, h: Any, split: int) -> torch.Tensor:
        return torch.as_tensor(h)

    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        return []

    def samples(self) -> Sequence[Sample]:
        return [Sample(0, torch.zeros(3, 4, 4))]


def test_bad_generation_jobs_are_oracle_errors(lm: models.CausalSplitModel) -> None:
    oracle = LocalOracle({LM: lm, "tiny-cnn": Vision()})
    last = lm.num_blocks
    cases = [
        (job(2, FP32, model="tiny-cnn"), "tiny-cnn is a image-classification model.*causal LM"),
        (job(last, FP32), f"generate needs a server tail; use a split below {last}"),
        (job(last + 1, FP32), rf"split must be an integer in 0\.\.{last}"),
        (job(8, FP32, prompt_tokens=129), r"longest has 128.*lower the prompt \(prompt_tokens\)"),
        (job(8, FP32, new_tokens=0), "new_tokens must be an integer >= 1, got 0"),
        (job(8, FP32, prompt_tokens=0), "prompt_tokens must be an integer >= 1, got 0"),
        (job(8, '{"id": "nope"}'), "not a valid codec config"),
    ]
    for bad, message in cases:
        with pytest.raises(OracleError, match=message):
            oracle.submit_generations([bad])
    assert oracle.generation_rows()["model"] == []


def test_generations_round_trip_through_replay(oracle: LocalOracle, tmp_path: Path) -> None:
    jobs = [job(s, c, i) for s, c in ((8, SLICER), (0, FP32)) for i in (1, 0)]
    want = gen(oracle, *jobs)
    path = tmp_path / "run" / "generations.parquet"
    path.parent.mkdir()
    oracle.write_generations(path)
    table = read_table(path)
    assert table.schema.names == GENERATIONS_SCHEMA.names
    keys = list(
        zip(*(table.column(c).to_pylist() for c in ("split", "codec", "input_id")), strict=True)
    )
    assert keys == sorted(keys) and (8, SLICER, 1) in keys and (0, FP32, 0) in keys
    replay = ReplayOracle([path.parent])  # a run directory with generations only
    got = gen(replay, *jobs)
    assert [dataclasses.replace(g, row=-1) for g in got] == want
    assert all(g.row >= 0 for g in got) and replay.stats()["gen_calls"] == len(jobs)
    assert replay.files == [] and replay.generation_files == [path]
    with pytest.raises(OracleError, match=r"(?s)no rows for model='smollm2-135m'.*\(nothing\)"):
        replay.submit_heads([HeadJob(0, LM, 8, SLICER, 0, PROMPT)])
    oracle.write_profile(path.with_name("profile.parquet"))  # a profile file: its sibling too
    beside = ReplayOracle([path.with_name("profile.parquet")])
    assert beside.generation_files == [path]
    assert gen(beside, *jobs) == got


def test_replay_wraps_input_ids_and_names_what_is_missing(
    oracle: LocalOracle, tmp_path: Path
) -> None:
    want = gen(oracle, job(0, FP32, 0), job(0, FP32, 1))
    oracle.write_generations(tmp_path / "generations.parquet")
    replay = ReplayOracle([tmp_path / "generations.parquet"])
    wrapped = gen(replay, *(job(0, FP32, i) for i in (2, 3, 5)))  # the group holds inputs 0, 1
    assert [dataclasses.replace(g, row=-1) for g in wrapped] == [want[0], want[1], want[1]]
    loose = '{ "id": "fp32" }'  # codec text is matched canonically
    assert gen(replay, job(0, loose, 0))[0] == wrapped[0]
    with pytest.raises(OracleError) as info:
        replay.submit_generations([job(8, FP32, 0, new_tokens=9)])
    message = str(info.value)
    assert f"no generations for model='{LM}' split=8" in message
    assert f"prompt_tokens={PROMPT} new_tokens=9" in message
    assert f"('{LM}', 0, '{FP32}', {PROMPT}, {NEW}, 'lee-background')" in message
    assert "prompts=lee-background;" in message and "--mode real" in message


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    from fleet.compute import cluster

    cluster.connect(None)
    yield
    cluster.shutdown()


@pytest.mark.slow
def test_ray_generations_equal_local_ones(
    ray_local: None, oracle: LocalOracle, lm: models.CausalSplitModel
) -> None:
    from fleet.compute.ray_oracle import RayOracle
    from scenarios.schema import RaySpec

    jobs = [job(8, SLICER, 1), job(0, FP32, 2, prompt_tokens=20)]  # 20: asked of an actor
    ray = RayOracle(RaySpec(device_shards=2), [(LM, PROMPT)])
    try:
        ray.prefetch(jobs[:1])
        got = gen(ray, *jobs, jobs[0])
        with pytest.raises(ComputeFailed, match="use a split below"):
            ray.submit_generations([job(lm.num_blocks, FP32)])[0].result()
        with pytest.raises(OracleError, match="unknown model 'no-such-lm'"):
            ray.submit_generations([job(8, FP32, model="no-such-lm")])
        rows = ray.generation_rows()
        stats = ray.stats()
    finally:
        ray.close()
    want = gen(oracle, *jobs)
    assert got == [*want, want[0]]
    assert stats["gen_calls"] == 4 and stats["gen_memo_hits"] == 2  # the prefetched one too
    everything = oracle.generation_rows()
    keys = ("model", "split", "codec", "input_id", "prompt_tokens", "new_tokens")
    mine = set(zip(*(rows[k] for k in keys), strict=True))
    assert len(mine) == 2  # the failed job left no row
    chosen = [
        i for i, k in enumerate(zip(*(everything[k] for k in keys), strict=True)) if k in mine
    ]
    for name in GENERATIONS_SCHEMA.names:
        if name != "wall_s":
            assert rows[name] == [everything[name][i] for i in chosen], name
