"""The codec cost model: the fit recovers known terms, weighs calls by relative error, and the
YAML file round-trips; bad input is refused with a message."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from models.codec_cost import CallCost, CallTime, CodecCosts, fit, relative_errors

TRUE = CallCost(fixed_s=20e-6, per_element_s=2e-9, per_payload_byte_s=1e-9)
SIZES = [(576, 300), (4608, 2000), (36864, 15000), (1_048_320, 400_000)]


def _calls(cost: CallCost) -> list[CallTime]:
    return [CallTime(n, b, cost.seconds(n, b)) for n, b in SIZES]


def test_fit_recovers_exact_terms() -> None:
    got = fit(_calls(TRUE))
    assert got.fixed_s == pytest.approx(TRUE.fixed_s, rel=1e-6)
    assert got.per_element_s == pytest.approx(TRUE.per_element_s, rel=1e-6)
    assert got.per_payload_byte_s == pytest.approx(TRUE.per_payload_byte_s, rel=1e-6)
    assert max(abs(e) for e in relative_errors(got, _calls(TRUE))) < 1e-9


def test_fit_weighs_small_calls_like_large_ones() -> None:
    """A 2x outlier on the 4 MB call must not wreck the one-token prediction."""
    calls = _calls(TRUE)
    calls[-1] = CallTime(calls[-1].elements, calls[-1].payload_bytes, 2 * calls[-1].seconds)
    got = fit(calls)
    assert got.seconds(576, 300) == pytest.approx(TRUE.seconds(576, 300), rel=0.5)


def test_fit_terms_are_never_negative() -> None:
    calls = [CallTime(n, b, 1e-3) for n, b in SIZES]  # flat: all fixed cost
    got = fit(calls)
    assert min(got.fixed_s, got.per_element_s, got.per_payload_byte_s) >= 0
    assert got.fixed_s == pytest.approx(1e-3, rel=0.01)


def test_fit_refuses_too_few_or_bad_calls() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        fit(_calls(TRUE)[:2])
    with pytest.raises(ValueError, match="positive"):
        fit([*_calls(TRUE)[:3], CallTime(10, 10, 0.0)])


def test_costs_round_trip_through_yaml(tmp_path: Path) -> None:
    costs = CodecCosts({'{"id":"fp16"}': {"encode": TRUE, "decode": TRUE}}, machine="m")
    back = CodecCosts.read(costs.write(tmp_path / "c" / "costs.yaml"))
    assert back.machine == "m" and back.keys == ['{"id":"fp16"}']
    assert back.get('{"id":"fp16"}', "decode") == TRUE
    assert back.seconds('{"id":"fp16"}', "encode", 576, 300) == TRUE.seconds(576, 300)
    assert math.isnan(back.seconds('{"id":"zstd"}', "encode", 576, 300))


def test_a_file_that_is_not_a_cost_file_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("just: text\n")
    with pytest.raises(ValueError, match="calibrate-codecs"):
        CodecCosts.read(path)
    with pytest.raises(ValueError, match="missing"):
        CodecCosts({"k": {"encode": TRUE}})


def test_fit_finds_where_the_working_set_spills_out_of_cache() -> None:
    spilling = CallCost(20e-6, 2e-9, 0.0, spill_elements=2.0**17, per_spilled_element_s=4e-9)
    sizes = [576, 4608, 36864, 65536, 147456, 589824, 1_048_320]
    calls = [CallTime(n, n, spilling.seconds(n, n)) for n in sizes]
    got = fit(calls)
    assert got.spill_elements == 2.0**17
    assert max(abs(e) for e in relative_errors(got, calls)) < 1e-6
    plain = fit([CallTime(n, n, TRUE.seconds(n, n)) for n in sizes])
    assert plain.spill_elements == math.inf  # no spill term where it does not help


def test_per_size_corrections_follow_what_the_terms_cannot(tmp_path: Path) -> None:
    # a search that costs more at one middle size than the sizes around it
    calls = [CallTime(n, n // 2, 1e-5 + 1e-9 * n) for n in (576, 4608, 36864, 147456, 589824)]
    calls[1] = CallTime(4608, 2304, 5e-3)
    cost = fit(calls)
    assert max(abs(e) for e in relative_errors(cost, calls)) < 1e-9  # exact where measured
    between = cost.seconds(12_000, 6_000)
    assert cost.terms_s(12_000, 6_000) < between < 5e-3  # interpolated, in log elements
    written = CodecCosts({"k": {"encode": cost, "decode": cost}}).write(tmp_path / "c.yaml")
    back = CodecCosts.read(written)
    assert back.get("k", "decode") == cost
