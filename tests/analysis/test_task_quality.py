"""Paired changes of accuracy on hand-made scores."""

from __future__ import annotations

import pytest

from analysis.task_quality import mean_change, paired_change, within


def test_no_change_has_a_zero_interval() -> None:
    change = paired_change([1, 0, 1, 1], [1, 0, 1, 1])
    assert (change.mean, change.low, change.high) == (0.0, 0.0, 0.0)
    assert (change.flips_to_wrong, change.flips_to_correct, change.examples) == (0, 0, 4)
    assert within(change, 1.0)


def test_paired_change_counts_flips_and_brackets_the_mean() -> None:
    unsplit = [1] * 50 + [0] * 50
    split = [1] * 40 + [0] * 10 + [1] * 5 + [0] * 45  # 10 lost, 5 gained
    change = paired_change(unsplit, split, seed=1)
    assert change.mean == pytest.approx(-0.05)
    assert change.low < -0.05 < change.high and change.high < 0.05
    assert (change.flips_to_wrong, change.flips_to_correct) == (10, 5)
    assert paired_change(unsplit, split, seed=1) == change  # seeded
    assert not within(change, 1.0)


def test_mean_change_weighs_tasks_equally() -> None:
    pairs = {"a": ([1, 1, 1, 1], [0, 1, 1, 1]), "b": ([0, 0], [0, 0])}
    change = mean_change(pairs)
    assert change.mean == pytest.approx(-0.125) and change.examples == 6
    assert change.low <= change.mean <= change.high <= 0


def test_mismatched_pairs_say_what_arrived() -> None:
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        paired_change([1, 0, 1], [1, 0])
