"""Adaptive split policies (``fleet.policy``): the decision rule on hand-set predictions, and
replayed runs where each request's head follows the link, its split recorded per request."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from fleet.core import Head
from fleet.policy import _GroupRule
from tests.fleet.simkit import scenario, simulate, write_profile


def _rule(**fields: Any) -> _GroupRule:
    rule = object.__new__(_GroupRule)
    defaults: dict[str, Any] = {
        "heads": (Head(4, "fp32", "k4", 0.0, 0.0, 0), Head(8, "fp32", "k8", 0.0, 0.0, 1)),
        "slo_s": 1.0,
        "prefer": "server_s",
        "budget_j": math.inf,
        "switch_s": 0.0,
        "active_w": 1.0,
        "radio_w": 0.0,
        "radio_j_per_mbit": 0.0,
        "payload_bytes": [1000.0, 3000.0],
        "fixed_s": [0.1, 0.2],
        "fixed_j": [0.1, 0.3],
        "server_s": [0.02, 0.01],
        "busy_s": [0.02, 0.01],
    }
    defaults.update(fields)
    for name, value in defaults.items():
        setattr(rule, name, value)
    return rule


def test_among_heads_that_meet_the_slo_the_preferred_cost_wins() -> None:
    fast = 100e6  # both meet 1 s: the deeper head's lower server time wins
    assert _rule().choose(fast, 0.0, -1) == 1
    assert _rule(prefer="uplink_bytes").choose(fast, 0.0, -1) == 0
    assert _rule(prefer="device_j").choose(fast, 0.0, -1) == 0


def test_server_s_ranks_by_accelerator_time_not_decode_pool_time() -> None:
    # head 0 needs no decode (0.01 s, all tail); head 1 decodes on a pool core (0.005 s) before
    # an equal tail: the accelerator time ties, so the lower predicted latency wins
    rule = _rule(server_s=[0.01, 0.015], busy_s=[0.01, 0.01], fixed_s=[0.1, 0.1])
    assert rule.choose(100e6, 0.0, -1) == 0
    rule = _rule(server_s=[0.01, 0.015], busy_s=[0.01, 0.01], payload_bytes=[30000.0, 1000.0])
    assert rule.choose(1e6, 0.0, -1) == 1  # 0.24 s vs 0.008 s of uplink: head 1


def test_when_no_head_meets_the_slo_the_fastest_predicted_wins() -> None:
    slow = 10e3  # 1000 B take 0.8 s, 3000 B 2.4 s
    assert _rule().choose(slow, 0.0, -1) == 0
    # the last response reported 0.5 s of server wait: neither meets 1 s, head 0 is faster
    assert _rule().choose(100e6, 0.9, -1) == 0


def test_the_energy_budget_and_the_switch_cost_count() -> None:
    assert _rule(budget_j=0.2).choose(100e6, 0.0, -1) == 0  # head 1 spends 0.3 J
    assert _rule(budget_j=0.01).choose(100e6, 0.0, -1) == 0  # none fits: the least energy
    # switching away from head 0 costs 0.85 s: head 1 no longer meets 1 s
    assert _rule(switch_s=0.85).choose(100e6, 0.0, 0) == 0


def _adaptive(tmp_path: Path, bandwidth_mbps: float, **policy: Any) -> list[dict[str, Any]]:
    write_profile(tmp_path / "a", split=4, payload_bytes=[1000])
    write_profile(tmp_path / "b", split=8, payload_bytes=[30000])
    s = scenario(
        tmp_path,
        requests_per_device=6,
        fleet0={
            "count": 2,
            "hardware": "flagship-phone",
            "uplink": {"bandwidth_mbps": bandwidth_mbps, "delay_s": 0.01},
            "policy": {"kind": "adaptive", "options": [{"split": 8}], "slo_s": 0.5, **policy},
        },
        servers={"hardware": "l4"},
    )
    output, rows = simulate(s)
    assert output.completed == 12
    assert any("chooses per request among 2 heads" in a for a in output.assumptions)
    return rows


def test_a_fast_link_takes_the_deeper_head_and_a_slow_one_the_smaller_payload(
    tmp_path: Path,
) -> None:
    fast = _adaptive(tmp_path, 100.0)
    assert {r["split"] for r in fast} == {8}
    assert {r["payload_bytes"] for r in fast} == {30000}
    slow = _adaptive(tmp_path, 0.2)  # 30 kB take 1.2 s on 0.2 Mbit/s, 1 kB 0.04 s
    # each device's first two requests start before its first transfer ends (1.2 s): they go
    # by the prior (2 Mbit/s, the deeper head); every later one by the measured 0.2 Mbit/s
    assert [r["split"] for r in slow] == [8] * 4 + [4] * 8
    assert all(r["payload_bytes"] == (1000 if r["split"] == 4 else 30000) for r in slow)


def test_a_static_policy_is_the_default_and_records_the_group_split(tmp_path: Path) -> None:
    write_profile(tmp_path, split=4)
    s = scenario(tmp_path, fleet0={"count": 2})
    assert s.fleet[0].policy == "static"
    _, rows = simulate(s)
    assert {r["split"] for r in rows} == {4}


def test_adaptive_policies_are_refused_for_generation(tmp_path: Path) -> None:
    from tests.fleet.simkit import write_generations

    write_generations(tmp_path)
    s = scenario(
        tmp_path,
        model={"task": "generate", "max_new_tokens": 3},
        fleet0={"policy": {"kind": "adaptive", "options": [{"split": 8}], "slo_s": 1.0}},
    )
    with pytest.raises(ValueError, match=r"fleet\[0\].policy: adaptive policies are for"):
        simulate(s)
