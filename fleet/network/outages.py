"""Outage processes: windows of zero link capacity in simulated time, asked for in order.

An ``Outages`` object answers ``next_window(t_s)``: the (start_s, end_s) of the first outage that
ends after ``t_s``, or (inf, inf). ``FixedOutages`` holds given windows, the same for every link
that shares the object; ``RandomOutages`` draws alternating exponential gaps and outages as time
goes by from the link's own generator; ``first_outages`` draws the first window of many links at
once. The links that obey them live in ``fleet.network.links``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

MAX_WINDOWS_PER_LINK = 10_000_000  # random windows one link may draw in a run


class Outages(Protocol):
    def next_window(self, t_s: float) -> tuple[float, float]:
        """(start_s, end_s) of the first outage that ends after ``t_s``; (inf, inf) if none."""
        ...


class FixedOutages:
    """Given outage windows [start_s, end_s): sorted, not overlapping. Stateless, so one object
    serves every link of a group or cell, asked in any order."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, windows: Sequence[tuple[float, float]]) -> None:
        previous_end_s = 0.0
        for index, (start_s, end_s) in enumerate(windows):
            if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
                raise ValueError(
                    f"outage window {index} must have finite 0 <= start_s < end_s, "
                    f"got ({start_s!r}, {end_s!r})"
                )
            if start_s < previous_end_s:
                raise ValueError(
                    f"outage window {index} starts at {start_s!r}, before the previous one ends "
                    f"at {previous_end_s!r}; sort the windows and merge overlapping ones"
                )
            previous_end_s = end_s
        self._starts = [float(w[0]) for w in windows] + [math.inf]  # inf: the sentinel "none"
        self._ends = [float(w[1]) for w in windows] + [math.inf]

    def next_window(self, t_s: float) -> tuple[float, float]:
        i = bisect_right(self._ends, t_s)
        return self._starts[i], self._ends[i]


class RandomOutages:
    """Alternating exponential gaps (mean ``mean_gap_s``) and outages (mean ``mean_s``) from
    time 0, starting inside an outage with probability mean_s / (mean_gap_s + mean_s) (the
    stationary state). Windows are drawn one at a time as asked for and forgotten once passed,
    so a link holds two floats; asking about an earlier time than before is an error, and so is
    a link that would draw more than ``MAX_WINDOWS_PER_LINK`` windows (never a hang).

    ``rng`` is a generator, or a function that makes one, called only when a window after
    ``first`` is needed: with ``first`` drawn for a whole group by ``first_outages``, a device
    that never gets past its first outage costs no generator at all."""

    __slots__ = ("_asked_s", "_drawn", "_end_s", "_mean_gap_s", "_mean_s", "_rng", "_start_s")

    def __init__(
        self,
        mean_gap_s: float,
        mean_s: float,
        rng: np.random.Generator | Callable[[], np.random.Generator],
        first: tuple[float, float] | None = None,
    ) -> None:
        for name, value in (("mean_gap_s", mean_gap_s), ("mean_s", mean_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"random outages: {name} must be finite and > 0, got {value!r}")
        self._mean_gap_s, self._mean_s, self._rng = mean_gap_s, mean_s, rng
        self._asked_s = 0.0
        self._drawn = 0
        if first is None:
            starts, ends = first_outages(mean_gap_s, mean_s, 1, self._generator())
            first = float(starts[0]), float(ends[0])
        self._start_s, self._end_s = first

    def _generator(self) -> np.random.Generator:
        rng = self._rng
        if not isinstance(rng, np.random.Generator):
            rng = self._rng = rng()
        return rng

    def next_window(self, t_s: float) -> tuple[float, float]:
        if t_s < self._asked_s:
            raise ValueError(
                f"random outages are drawn forward in time: asked about {t_s!r} after "
                f"{self._asked_s!r}"
            )
        self._asked_s = t_s
        if self._end_s <= t_s:
            ahead = (t_s - self._end_s) / (self._mean_gap_s + self._mean_s)
            if self._drawn + ahead > MAX_WINDOWS_PER_LINK:
                raise self._too_many(t_s)
            rng = self._generator()
            drawn = 0
            while self._end_s <= t_s:
                self._start_s = self._end_s + float(rng.exponential(self._mean_gap_s))
                self._end_s = self._start_s + float(rng.exponential(self._mean_s))
                drawn += 1
                if self._drawn + drawn > MAX_WINDOWS_PER_LINK:
                    raise self._too_many(t_s)
            self._drawn += drawn
        return self._start_s, self._end_s

    def _too_many(self, t_s: float) -> ValueError:
        return ValueError(
            f"random outages: more than {MAX_WINDOWS_PER_LINK:,} outage windows on one link by "
            f"t={t_s:.6g} s (mean_gap_s {self._mean_gap_s:g} + mean_s {self._mean_s:g}); make "
            "them larger"
        )


def first_outages(
    mean_gap_s: float, mean_s: float, count: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The first (start_s, end_s) outage of ``count`` links with random outages, vectorised:
    from time 0 with P = mean_s / (mean_gap_s + mean_s), else after an exponential gap."""
    down = rng.random(count) < mean_s / (mean_gap_s + mean_s)
    gap_s = rng.exponential(mean_gap_s, count)
    starts = np.where(down, 0.0, gap_s)
    return starts, starts + rng.exponential(mean_s, count)
