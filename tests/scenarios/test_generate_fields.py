"""``model.task: generate``: the fields it adds and what it refuses, at their field paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.run.check import check
from scenarios import Problem, ScenarioError, load

BASE = Path(__file__).with_name("base.yaml")
GENERATE = ["model.task=generate", "model.max_new_tokens=16"]


def _problems(*overrides: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as caught:
        check(load(BASE, overrides))
    return caught.value.problems


def test_a_generate_scenario_loads_and_checks() -> None:
    s = load(BASE, [*GENERATE, "servers.kv_cache_bytes=2e9"])
    assert s.model.task == "generate" and s.model.max_new_tokens == 16
    assert s.servers.kv_cache_bytes == 2e9
    check(s)


def test_max_new_tokens_belongs_to_generate() -> None:
    with pytest.raises(ScenarioError) as caught:
        load(BASE, ["model.max_new_tokens=16"])
    (problem,) = caught.value.problems
    assert problem.path == "model.max_new_tokens"
    assert "applies to task: generate" in problem.message


def test_kv_cache_bytes_belongs_to_generate() -> None:
    with pytest.raises(ScenarioError) as caught:
        load(BASE, ["servers.kv_cache_bytes=1e9"])
    assert caught.value.problems[0].path == "servers.kv_cache_bytes"


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("servers.failures={mtbf_s: 100, mttr_s: 5}", "servers.failures"),
        ("servers.service={kind: deterministic, mean_s: 0.01}", "servers.service"),
    ],
)
def test_generate_refuses_what_continuous_batching_does_not_model(override: str, path: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load(BASE, [*GENERATE, override])
    (problem,) = caught.value.problems
    assert problem.path == path and f"remove {path}" in problem.message


def test_generate_needs_a_server_tail() -> None:
    (problem,) = _problems(*GENERATE, "fleet[0].split=32")
    assert problem.path == "fleet[0].split"
    assert "use a split within 0..31" in problem.message


def test_generate_needs_a_causal_language_model() -> None:
    (problem,) = _problems(
        *GENERATE, "model.name=mobilenetv2", "fleet[0].split=1", "fleet[1].split=1"
    )
    assert problem.path == "model.task"
    assert "needs a causal language model" in problem.message
