"""Bandwidth traces: piecewise-constant link capacity that loops forever, and the cursor on it.

A ``Trace`` holds ``rate_bps[i]`` on ``[times_s[i], times_s[i+1])``, the last step until
``period_s``, then repeats. ``transfer_s``/``transfer_end_s`` integrate it exactly (bisect on
precomputed cumulative bits, whole periods skipped arithmetically) in about a microsecond.
``constant`` builds the one-step trace; the file readers live in ``fleet.network.trace_files``,
the seeded synthetic presets in ``fleet.network.trace_synthetic``, and
``fleet.network.trace_source.load_link_trace`` maps a scenario ``LinkSpec`` onto them (all
three import this module, never the other way round).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class TraceError(ValueError):
    """A trace file, format, column or parameter is wrong; the message says where and the fix."""


@dataclass(frozen=True, eq=False)
class Trace:
    """Piecewise-constant bandwidth that loops forever: rate_bps[i] holds on [times_s[i],
    times_s[i+1]), the last step until period_s; then it repeats. Arrays are read-only copies."""

    name: str
    times_s: FloatArray
    rate_bps: FloatArray
    period_s: float
    _times: list[float] = field(init=False, repr=False)
    _rates: list[float] = field(init=False, repr=False)
    _cum_bits: list[float] = field(init=False, repr=False)  # bits sent before step i
    _end_bits: list[float] = field(init=False, repr=False)  # bits sent by the end of step i
    _period_bits: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        times = np.array(self.times_s, dtype=np.float64)
        rates = np.array(self.rate_bps, dtype=np.float64)
        period = float(self.period_s)
        where = f"trace {self.name!r}"
        if times.ndim != 1 or rates.shape != times.shape or times.size == 0:
            raise TraceError(
                f"{where}: times_s and rate_bps must be 1-D arrays of one equal, non-zero "
                f"length, got shapes {times.shape} and {rates.shape}"
            )
        if times[0] != 0.0 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise TraceError(
                f"{where}: times_s must start at 0.0 and be finite, strictly increasing"
            )
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise TraceError(f"{where}: rate_bps must be finite and >= 0")
        if not math.isfinite(period) or period <= times[-1]:
            raise TraceError(
                f"{where}: period_s must be finite and after the last step start "
                f"{float(times[-1])!r}, got {period!r}"
            )
        step_bits = rates * np.diff(np.append(times, period))
        end_bits = np.cumsum(step_bits)
        if end_bits[-1] <= 0:
            raise TraceError(f"{where}: every rate is zero, so nothing could ever be sent")
        times.setflags(write=False)
        rates.setflags(write=False)
        for name, value in (
            ("times_s", times),
            ("rate_bps", rates),
            ("period_s", period),
            ("_times", times.tolist()),
            ("_rates", rates.tolist()),
            ("_cum_bits", [0.0, *end_bits[:-1].tolist()]),
            ("_end_bits", end_bits.tolist()),
            ("_period_bits", float(end_bits[-1])),
        ):
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (
            self.name == other.name
            and self.period_s == other.period_s
            and np.array_equal(self.times_s, other.times_s)
            and np.array_equal(self.rate_bps, other.rate_bps)
        )

    __hash__ = None  # type: ignore[assignment]

    def mean_bps(self) -> float:
        """The time-average rate over one period."""
        return self._period_bits / self.period_s

    def _locate(self, t_s: float) -> tuple[float, float, int]:
        """(loops, time into the period, step index) of ``t_s``."""
        loops, u = divmod(t_s, self.period_s)
        if u >= self.period_s:  # divmod rounding just below a period boundary
            loops, u = loops + 1.0, 0.0
        return loops, u, bisect_right(self._times, u) - 1

    def rate_at(self, t_s: float) -> float:
        """The rate in force at ``t_s`` (looping)."""
        return self._rates[self._locate(t_s)[2]]

    def next_change_s(self, t_s: float) -> float:
        """The first step boundary strictly after ``t_s`` (looping); inf for a one-step trace."""
        if len(self._times) == 1:
            return math.inf
        cursor = self.cursor(t_s)
        return cursor.end_s

    def cursor(self, t_s: float) -> TraceCursor:
        """A cursor on the step in force at ``t_s``, to walk the steps forward one by one."""
        loops, _, i = self._locate(t_s)
        cursor = TraceCursor(self, int(loops), i)
        while cursor.end_s <= t_s:  # rounding at a boundary
            cursor.advance()
        return cursor

    def transfer_s(self, start_s: float, nbytes: float) -> float:
        """Seconds until the last bit of ``nbytes`` sent from ``start_s`` at full capacity is
        delivered. Exact integration over steps and loops; zero-rate steps just wait."""
        bits = nbytes * 8.0
        if not bits > 0.0:
            if bits == 0.0:
                return 0.0
            raise ValueError(f"nbytes must be a finite number >= 0, got {nbytes!r}")
        rates = self._rates
        if len(rates) == 1:
            return bits / rates[0]
        times = self._times
        period = self.period_s
        u = start_s % period
        if u >= period:
            u = 0.0
        i = bisect_right(times, u) - 1
        rate = rates[i]
        step_end = times[i + 1] if i + 1 < len(times) else period
        if rate > 0.0 and bits <= (step_end - u) * rate:
            return bits / rate
        if bits == math.inf:
            raise ValueError(f"nbytes must be a finite number >= 0, got {nbytes!r}")
        period_bits = self._period_bits
        target = self._cum_bits[i] + rate * (u - times[i]) + bits  # bits since this period began
        whole, rest = divmod(target, period_bits)
        if rest <= 0.0:  # ends exactly at a period's end: the last bit left in the earlier period
            whole, rest = whole - 1.0, period_bits
        j = bisect_left(self._end_bits, rest)  # the step with cum < rest <= end: its rate is > 0
        if j == len(times):
            j -= 1
        return (whole * period - u) + times[j] + (rest - self._cum_bits[j]) / rates[j]

    def transfer_end_s(self, start_s: float, nbytes: float) -> float:
        """When the last bit of ``nbytes`` sent from ``start_s`` arrives (see ``transfer_s``)."""
        return start_s + self.transfer_s(start_s, nbytes)

    def scaled(self, factor: float) -> Trace:
        """The same trace with every rate multiplied by ``factor`` (> 0)."""
        if not (math.isfinite(factor) and factor > 0):
            raise TraceError(f"trace {self.name!r}: scale must be finite and > 0, got {factor!r}")
        if factor == 1.0:
            return self
        return Trace(f"{self.name}*{factor:g}", self.times_s, self.rate_bps * factor, self.period_s)


class TraceCursor:
    """The step of a trace in force, walked forward: ``start_s``/``end_s`` in absolute trace time
    (loops included; -inf/inf for a one-step trace), ``rate_bps`` on it. ``advance`` moves on."""

    __slots__ = ("_loop", "_step", "_trace", "end_s", "rate_bps", "start_s")

    def __init__(self, trace: Trace, loop: int, step: int) -> None:
        self._trace = trace
        self._loop = loop
        self._step = step
        self.start_s = 0.0
        self.end_s = 0.0
        self.rate_bps = 0.0
        self._load()

    def _load(self) -> None:
        times = self._trace._times
        period = self._trace.period_s
        base = self._loop * period
        self.start_s = base + times[self._step]
        if len(times) == 1:  # a constant trace never changes
            self.start_s, self.end_s = -math.inf, math.inf
        elif self._step + 1 < len(times):
            self.end_s = base + times[self._step + 1]
        else:  # computed as the next loop's first start, so the two agree exactly
            self.end_s = (self._loop + 1) * period + times[0]
        self.rate_bps = self._trace._rates[self._step]

    def advance(self) -> None:
        self._step += 1
        if self._step == len(self._trace._times):
            self._loop, self._step = self._loop + 1, 0
        self._load()


def constant(bandwidth_bps: float) -> Trace:
    """A link of fixed bandwidth (one step; offsets and ``next_change_s`` do not matter)."""
    if not (math.isfinite(bandwidth_bps) and bandwidth_bps > 0):
        raise TraceError(f"constant bandwidth must be finite and > 0 bit/s, got {bandwidth_bps!r}")
    return Trace(f"constant:{bandwidth_bps:g}bps", np.zeros(1), np.full(1, bandwidth_bps), 1.0)
