"""The local oracle with real models: bytes per split and codec, agreement with the unsplit
model, memo hits, input-id wrapping, determinism, and the replay profile it writes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import models
from fleet.compute.replay import ReplayOracle
from models.split import BlockProfile, Sample, SplitModel
from records.tables import read_table
from server.engine.jobs import (
    Done,
    HeadJob,
    HeadResult,
    OracleError,
    TailJob,
    TailResult,
    codec_key,
)
from server.engine.local import LocalOracle

FP32 = codec_key({"id": "fp32"})
SLICER = codec_key({"id": "slicer", "max_nmse": 0.01})
HEADER_BYTES = 64  # generous bound on the codec container around an fp32 body


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mobilenet() -> SplitModel:
    return models.load("mobilenetv2")


def run(
    oracle: LocalOracle, model: str, split: int, codec: str, input_id: int, seq_len: int = 64
) -> tuple[HeadResult, TailResult]:
    head = oracle.submit_heads([HeadJob(7, model, split, codec, input_id, seq_len)])[0]
    assert isinstance(head, Done)
    job = TailJob(7, model, split, codec, input_id, seq_len, head.result())
    tail = oracle.submit_tails([job])[0]
    assert isinstance(tail, Done)
    return head.result(), tail.result()


def test_vision_fp32_is_lossless_and_counts_float32_bytes(mobilenet: SplitModel) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    shapes = mobilenet.if_shapes()  # type: ignore[attr-defined]
    for split in (0, 7):
        head, tail = run(oracle, "mobilenetv2", split, FP32, 5)
        assert head.raw_bytes == 4 * int(np.prod(shapes[split]))
        assert head.raw_bytes < head.payload_bytes <= head.raw_bytes + HEADER_BYTES
        assert head.payload is not None and len(head.payload) == head.payload_bytes
        assert tail == TailResult(agreement=1.0, result_bytes=4)


def test_vision_slicer_shrinks_the_payload(mobilenet: SplitModel) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    head, tail = run(oracle, "mobilenetv2", 7, SLICER, 0)
    assert head.payload_bytes < head.raw_bytes / 4
    assert tail.result_bytes == 4 and tail.agreement in (0.0, 1.0)
    again = LocalOracle({"mobilenetv2": mobilenet})
    assert run(again, "mobilenetv2", 7, SLICER, 0)[0].payload == head.payload  # deterministic


def test_last_split_reports_the_answer(mobilenet: SplitModel) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    head, tail = run(oracle, "mobilenetv2", mobilenet.num_blocks, SLICER, 2)
    assert head.raw_bytes == head.payload_bytes == 4  # the int32 class id, no codec
    x = mobilenet.samples()[2].x[None]
    assert head.payload == np.int32(int(mobilenet(x).argmax())).tobytes()
    assert tail == TailResult(agreement=1.0, result_bytes=0)


def test_memo_and_input_id_wrapping(mobilenet: SplitModel) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    n = len(mobilenet.samples())
    first = run(oracle, "mobilenetv2", 12, FP32, 3)
    wrapped = run(oracle, "mobilenetv2", 12, FP32, 3 + 2 * n)
    assert wrapped[0] is first[0] and wrapped[1] is first[1]
    other = run(oracle, "mobilenetv2", 12, FP32, 4)
    assert other[0].payload != first[0].payload
    assert oracle.stats() == {
        "head_calls": 3,
        "head_memo_hits": 1,
        "tail_calls": 3,
        "tail_memo_hits": 1,
    }
    assert oracle.profile_rows()["input_id"] == [3, 4]


def test_tail_without_payload_computes_its_own_head(mobilenet: SplitModel) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    job = TailJob(1, "mobilenetv2", 9, FP32, 0, 64, HeadResult(1, 1))  # as if replayed
    assert oracle.submit_tails([job])[0].result().agreement == 1.0
    assert oracle.stats()["head_calls"] == 0 and oracle.stats()["tail_calls"] == 1


def test_profile_round_trips_through_replay(mobilenet: SplitModel, tmp_path: Path) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    done = {
        (s, c, i): run(oracle, "mobilenetv2", s, c, i)
        for s in (3, 8)
        for c in (SLICER, FP32)
        for i in (1, 0)
    }
    oracle.submit_heads([HeadJob(0, "mobilenetv2", 5, FP32, 0, 64)])  # no tail: not profiled
    oracle.close()  # the memo outlives close
    oracle.write_profile(tmp_path / "profile.parquet")
    table = read_table(tmp_path / "profile.parquet")
    keys = list(
        zip(*(table.column(c).to_pylist() for c in ("split", "codec", "input_id")), strict=True)
    )
    assert keys == sorted(done)
    assert set(table.column("codec_id").to_pylist()) == {"fp32", "slicer"}
    assert set(table.column("seq_len").to_pylist()) == {0}  # vision ignores seq_len
    replay = ReplayOracle([tmp_path])
    for (split, codec, input_id), (head, tail) in done.items():
        # the profile holds inputs 0 and 1, so replay wraps input ids modulo 2
        got = run_replay(replay, "mobilenetv2", split, codec, input_id + 2, seq_len=128)
        assert (got[0].raw_bytes, got[0].payload_bytes) == (head.raw_bytes, head.payload_bytes)
        assert got[1] == tail


def run_replay(
    oracle: ReplayOracle, model: str, split: int, codec: str, input_id: int, seq_len: int
) -> tuple[HeadResult, TailResult]:
    head = oracle.submit_heads([HeadJob(0, model, split, codec, input_id, seq_len)])[0].result()
    job = TailJob(0, model, split, codec, input_id, seq_len, head)
    return head, oracle.submit_tails([job])[0].result()


def test_bad_jobs_are_oracle_errors(mobilenet: SplitModel) -> None:
    oracle = LocalOracle({"mobilenetv2": mobilenet})
    with pytest.raises(OracleError, match="unknown model 'no-such-model'"):
        oracle.submit_heads([HeadJob(0, "no-such-model", 1, FP32, 0, 64)])
    with pytest.raises(OracleError, match=r"split must be an integer in 0\.\.20"):
        oracle.submit_heads([HeadJob(0, "mobilenetv2", 21, FP32, 0, 64)])
    with pytest.raises(OracleError, match="not a valid codec config"):
        oracle.submit_heads([HeadJob(0, "mobilenetv2", 1, '{"id": "nope"}', 0, 64)])
    with pytest.raises(OracleError, match="step must be 0"):
        oracle.submit_heads([HeadJob(0, "mobilenetv2", 1, FP32, 0, 64, step=2)])


class TinyLM(SplitModel):
    """A two-block 'language model' with inputs of uneven lengths: embed one-hot, then a fixed
    permutation as the logits (next token = id + 1 mod vocab)."""

    name, task, pretrained = "tiny-lm", "causal-lm", True
    vocab = 11

    @property
    def blocks(self) -> tuple[str, ...]:
        return ("embed", "lm_head")

    def head(self, x: Any, split: int) -> Any:
        h = x
        if split >= 1:
            h = torch.nn.functional.one_hot(x, self.vocab).float()
        return h.roll(1, dims=-1) if split == 2 else h

    def tail(self, h: Any, split: int) -> torch.Tensor:
        if split == 0:
            h = torch.nn.functional.one_hot(h, self.vocab).float()
        return h if split == 2 else h.roll(1, dims=-1)

    def block_profiles(
        self, seq_len: int = 1, batch: int = 1, context_len: int | None = None
    ) -> list[BlockProfile]:
        return []  # costs are not what this test double is for

    def samples(self) -> Sequence[Sample]:
        lengths = (3, 8, 5, 10)
        return [Sample(i, torch.arange(n) % self.vocab) for i, n in enumerate(lengths)]


def test_language_model_inputs_are_long_enough_and_cut_to_seq_len() -> None:
    oracle = LocalOracle({"tiny-lm": TinyLM()})
    head, tail = run(oracle, "tiny-lm", 1, FP32, 0, seq_len=5)  # eligible: samples 1, 2, 3
    assert head.raw_bytes == 4 * 5 * TinyLM.vocab and tail == TailResult(1.0, 4)
    ids, _ = run(oracle, "tiny-lm", 0, FP32, 1, seq_len=5)
    assert ids.raw_bytes == ids.payload_bytes == 4 * 5  # int32 ids, no codec
    assert run(oracle, "tiny-lm", 0, FP32, 4, seq_len=5)[0] is ids  # 4 % 3 == 1
    last, tail = run(oracle, "tiny-lm", 2, FP32, 0, seq_len=5)
    assert last.payload == np.int32(5).tobytes()  # next token after ids 0..4
    assert tail == TailResult(1.0, 0)
    assert oracle.profile_rows()["seq_len"] == [5, 5, 5]
    with pytest.raises(OracleError, match=r"the longest has 10.*lower model\.seq_len"):
        oracle.submit_heads([HeadJob(0, "tiny-lm", 1, FP32, 0, 11)])


class OverflowLM(TinyLM):
    """Its IF after the first block is not finite: lossy codecs refuse it."""

    def head(self, x: Any, split: int) -> Any:
        h = super().head(x, split)
        return h / 0.0 if split == 1 else h


def test_a_codec_that_refuses_the_if_is_an_oracle_error() -> None:
    oracle = LocalOracle({"tiny-lm": OverflowLM()})
    with pytest.raises(OracleError, match=r"tiny-lm split 1 input 0: codec .*slicer.* cannot"):
        oracle.submit_heads([HeadJob(0, "tiny-lm", 1, SLICER, 0, 4)])
    assert run(oracle, "tiny-lm", 1, FP32, 0, seq_len=4)[0].raw_bytes == 4 * 4 * TinyLM.vocab


def test_sentence_encoder_sends_hidden_states_and_compares_embeddings() -> None:
    oracle = LocalOracle()
    encoder = oracle._model("minilm-l6")
    tokens = int(encoder.samples()[4].x.numel())
    ids, tail = run(oracle, "minilm-l6", 0, SLICER, 4)
    assert ids.raw_bytes == ids.payload_bytes == 4 * tokens
    assert tail == TailResult(1.0, 4 * 384)
    head, tail = run(oracle, "minilm-l6", 3, FP32, 4)
    assert head.raw_bytes == 4 * tokens * 384
    assert tail.agreement == pytest.approx(1.0, abs=1e-6)
    head, tail = run(oracle, "minilm-l6", 3, SLICER, 4)
    assert head.payload_bytes < head.raw_bytes / 4 and 0.9 < tail.agreement <= 1.0
    head, tail = run(oracle, "minilm-l6", encoder.num_blocks, SLICER, 4)
    assert head.payload_bytes == 4 * 384 and tail.result_bytes == 0
    assert tail.agreement == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow  # about 3.5 s: loads SmolLM2 (the tiny LM above covers the same rules)
def test_smollm2_split_through_slicer() -> None:
    oracle = LocalOracle()
    head, tail = run(oracle, "smollm2-135m", 0, SLICER, 3, seq_len=16)
    assert head.raw_bytes == head.payload_bytes == 64 and tail == TailResult(1.0, 4)
    head, tail = run(oracle, "smollm2-135m", 10, FP32, 3, seq_len=16)
    assert head.raw_bytes == 4 * 16 * 576 and tail.agreement == 1.0
    head, tail = run(oracle, "smollm2-135m", 10, SLICER, 3, seq_len=16)
    assert head.payload_bytes < head.raw_bytes / 4
    assert tail.agreement in {k / 16 for k in range(17)}
    with pytest.raises(OracleError, match="the longest has 128"):
        oracle.submit_heads([HeadJob(0, "smollm2-135m", 1, FP32, 0, 129)])


def test_the_device_is_a_parameter_and_cuda_needs_a_gpu(mobilenet: SplitModel) -> None:
    on_cpu = LocalOracle({"mobilenetv2": mobilenet}, device="auto" if not _cuda() else "cpu")
    assert on_cpu.device == "cpu"
    head, tail = run(on_cpu, "mobilenetv2", 11, SLICER, 3)
    assert (head, tail) == run(
        LocalOracle({"mobilenetv2": mobilenet}), "mobilenetv2", 11, SLICER, 3
    )
    if not _cuda():
        with pytest.raises(OracleError, match="no CUDA GPU"):
            LocalOracle(device="cuda")
    with pytest.raises(OracleError, match="device must be"):
        LocalOracle(device="tpu")


def _cuda() -> bool:
    return torch.cuda.is_available()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tails_on_the_gpu_agree_with_the_cpu() -> None:
    cpu, gpu = LocalOracle(), LocalOracle(device="cuda")
    for split, codec in ((4, FP32), (11, SLICER)):
        head_cpu, tail_cpu = run(cpu, "mobilenetv2", split, codec, 5)
        head_gpu, tail_gpu = run(gpu, "mobilenetv2", split, codec, 5)
        assert head_gpu.raw_bytes == head_cpu.raw_bytes
        assert tail_gpu.agreement == tail_cpu.agreement  # top-1 class, same image
