"""Paired statistics of task accuracy through a split against the unsplit model: the one
definition of the change, its 95% interval, and the mean change over several tasks, used by
``slicer eval --tasks`` and ``benchmarks/llm_tasks.py``.

Each example is scored both ways (1 correct, 0 wrong), so the change is the mean of the paired
differences ``split - unsplit``. Its interval is a seeded paired bootstrap (examples resampled
with their pair kept together, percentile interval); over tasks, the mean of the per-task
changes with a stratified bootstrap (each task resampled within itself). Changes are in
accuracy units (0.01 = 1 point). Pure numpy; no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedChange:
    """Mean of ``split - unsplit`` over paired examples, with its bootstrap interval."""

    mean: float
    low: float
    high: float
    examples: int
    flips_to_correct: int  # wrong unsplit, right through the split
    flips_to_wrong: int  # right unsplit, wrong through the split


def _pair(unsplit: Sequence[float], split: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(unsplit, dtype=np.float64), np.asarray(split, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"paired scores need two equal non-empty 1-D arrays, got {a.shape} and {b.shape}"
        )
    return a, b


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def paired_change(
    unsplit: Sequence[float], split: Sequence[float], *, seed: int = 0
) -> PairedChange:
    """The paired change of one task (a zero-width interval when no example changes)."""
    a, b = _pair(unsplit, split)
    diff = b - a
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, diff.size, size=(RESAMPLES, diff.size))
    low, high = _interval(diff[picks].mean(axis=1))
    return PairedChange(
        float(diff.mean()),
        low,
        high,
        int(diff.size),
        int((a < b).sum()),
        int((a > b).sum()),
    )


def mean_change(
    pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, seed: int = 0
) -> PairedChange:
    """The mean over tasks of each task's paired change (tasks weigh equally), with a
    stratified paired bootstrap interval."""
    if not pairs:
        raise ValueError("mean_change needs at least one task")
    rng = np.random.default_rng(seed)
    means, boot = [], np.zeros(RESAMPLES)
    up = down = count = 0
    for unsplit, split in pairs.values():
        a, b = _pair(unsplit, split)
        diff = b - a
        means.append(diff.mean())
        boot += diff[rng.integers(0, diff.size, size=(RESAMPLES, diff.size))].mean(axis=1)
        up, down, count = up + int((a < b).sum()), down + int((a > b).sum()), count + diff.size
    low, high = _interval(boot / len(pairs))
    return PairedChange(float(np.mean(means)), low, high, count, up, down)


def within(change: PairedChange, points: float) -> bool:
    """Whether the whole interval lies within ``points`` accuracy points of no change."""
    return -points / 100 <= change.low and change.high <= points / 100
