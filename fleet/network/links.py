"""Network links: a device's own FIFO link, and a cell's link shared by processor sharing.

``Link`` is one direction of one device's own link. It is plain arithmetic on a ``Trace`` (no
simpy): a transfer starts when the sender is ready and the previous transfer's last bit has left,
takes the trace's exact integration time, and arrives ``delay_s`` later; the next transfer may
start as soon as the last bit has left (propagation does not hold the link). Each device sees
the trace from its own ``offset_s`` (``device_offsets``), so devices sharing one trace are not in
lockstep. An ideal link (trace None) takes no time and has no delay.

``SharedLink`` is one direction of a shared cell: all transfers in flight get an equal share of
the trace's capacity (processor sharing). It keeps the per-flow service V(t) = integral of
capacity / flows: a flow of b bits started when V = v finishes when V = v + b, so flows wait in
one heap keyed by (finish V, start order) and the link needs one pending simpy event: the next
completion or capacity change, whichever is first. Every send or wake bumps a generation
counter; a woken event of an older generation does nothing. Flows that finish at one instant
call back in start order; ``on_arrive(t_start_s, t_arrive_s)`` runs at ``t_arrive_s``, from a
simpy event callback.

Outages are windows of zero capacity in simulated time (``fleet.network.outages``). A transfer
in progress pauses during an outage and resumes after it; one that becomes ready inside an outage
starts (its ``t_start_s``) at once and waits. ``OutageLink`` is a ``Link`` with outages: still
arithmetic, O(log n) per send plus one step per outage the transfer crosses; a plain ``Link``
pays nothing for the feature. ``SharedLink(outages=...)`` treats an outage as a capacity step to
zero.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from fleet.network.outages import Outages
from fleet.network.traces import Trace, TraceCursor

OnArrive = Callable[[float, float], None]
# A flow is done when its finish V is within this relative margin of V (float rounding).
_FINISH_RTOL = 1e-12


class Link:
    """One direction of one device's own link: FIFO, one transfer at a time."""

    __slots__ = ("_delay_s", "_free_s", "_offset_s", "_trace")

    def __init__(self, trace: Trace | None, offset_s: float, delay_s: float) -> None:
        if not (math.isfinite(delay_s) and delay_s >= 0):
            raise ValueError(f"link delay_s must be finite and >= 0, got {delay_s!r}")
        if not (math.isfinite(offset_s) and offset_s >= 0):
            raise ValueError(f"link offset_s must be finite and >= 0, got {offset_s!r}")
        self._trace = trace
        self._offset_s = offset_s
        self._delay_s = 0.0 if trace is None else delay_s
        self._free_s = 0.0  # when the last bit of the previous transfer left

    @property
    def free_s(self) -> float:
        """When the link can start the next transfer."""
        return self._free_s

    def send(self, ready_s: float, nbytes: float) -> tuple[float, float]:
        """Queue ``nbytes`` ready at ``ready_s``; returns (t_start_s, t_arrive_s)."""
        trace = self._trace
        if trace is None:
            return ready_s, ready_s
        start_s = ready_s if ready_s > self._free_s else self._free_s
        end_s = start_s + trace.transfer_s(start_s + self._offset_s, nbytes)
        self._free_s = end_s
        return start_s, end_s + self._delay_s


class SharedLink:
    """One direction of a shared cell: all concurrent transfers share the trace's capacity equally
    (processor sharing), event-driven on a simpy Environment."""

    def __init__(
        self,
        env: simpy.Environment,
        trace: Trace,
        delay_s: float,
        offset_s: float = 0.0,
        outages: Outages | None = None,
    ) -> None:
        if not (math.isfinite(delay_s) and delay_s >= 0):
            raise ValueError(f"shared link delay_s must be finite and >= 0, got {delay_s!r}")
        if not math.isfinite(offset_s):
            raise ValueError(f"shared link offset_s must be finite, got {offset_s!r}")
        self._env = env
        self._trace = trace
        self._delay_s = delay_s
        self._offset_s = offset_s
        self._outages = outages
        # (finish V in bits, start order, t_start_s, on_arrive) of every flow in transfer
        self._flows: list[tuple[float, int, float, OnArrive]] = []
        self._order = 0
        self._v_bits = 0.0  # service each flow got since the link last became busy
        self._t_s = 0.0  # the simulated time _v_bits is up to date with
        self._cursor: TraceCursor | _GatedCursor | None = None  # the step in force at _t_s
        self._generation = 0

    @property
    def active(self) -> int:
        """Transfers in progress (their last bit has not left yet)."""
        return len(self._flows)

    def send(self, nbytes: float, on_arrive: OnArrive) -> None:
        """Start sending ``nbytes`` now; ``on_arrive(t_start_s, t_arrive_s)`` runs on arrival."""
        bits = nbytes * 8.0
        if not (math.isfinite(bits) and bits >= 0):
            raise ValueError(f"nbytes must be a finite number >= 0, got {nbytes!r}")
        now = self._env.now
        if self._flows:
            self._advance(now)
        else:
            self._v_bits, self._t_s = 0.0, now
            cursor = self._trace.cursor(now + self._offset_s)
            outages = self._outages
            if outages is None:
                self._cursor = cursor
            else:
                self._cursor = _GatedCursor(cursor, outages, self._offset_s, now)
        heapq.heappush(self._flows, (self._v_bits + bits, self._order, now, on_arrive))
        self._order += 1
        self._schedule()

    def _advance(self, now: float) -> None:
        """Bring V up to ``now``, walking over capacity steps that ended on the way."""
        cursor = self._cursor
        assert cursor is not None
        n = len(self._flows)
        t = self._t_s
        while True:
            step_end = cursor.end_s - self._offset_s
            until = now if now < step_end else step_end
            if until > t:
                self._v_bits += cursor.rate_bps * (until - t) / n
                t = until
            if step_end > now:
                break
            cursor.advance()
        self._t_s = now

    def _schedule(self) -> None:
        """Replace the pending wake-up by one at the next completion or capacity change."""
        self._generation += 1
        if not self._flows:
            return
        cursor = self._cursor
        assert cursor is not None
        now = self._env.now
        change_s = cursor.end_s - self._offset_s
        rate = cursor.rate_bps
        finish_v = self._flows[0][0]
        done_s = math.inf
        if rate > 0:
            done_s = now + max(finish_v - self._v_bits, 0.0) * len(self._flows) / rate
        completes = done_s <= change_s
        wake_s = done_s if completes else change_s
        event = self._env.timeout(max(wake_s - now, 0.0))
        event.callbacks.append(partial(self._wake, self._generation, completes, finish_v))

    def _wake(self, generation: int, completes: bool, finish_v: float, _event: Any) -> None:
        if generation != self._generation:
            return  # superseded by a later send or wake
        now = self._env.now
        self._advance(now)
        if completes and finish_v > self._v_bits:  # the planned amount, despite clock rounding
            self._v_bits = finish_v
        limit = self._v_bits + _FINISH_RTOL * abs(self._v_bits)
        done: list[tuple[int, float, OnArrive]] = []
        while self._flows and self._flows[0][0] <= limit:
            _, order, t_start_s, on_arrive = heapq.heappop(self._flows)
            done.append((order, t_start_s, on_arrive))
        done.sort(key=lambda flow: flow[0])
        self._schedule()
        if not done:
            return
        if self._delay_s == 0.0:
            self._deliver(done, now, None)
        else:
            arrive = self._env.timeout(self._delay_s)
            arrive.callbacks.append(partial(self._deliver, done, now + self._delay_s))

    @staticmethod
    def _deliver(done: list[tuple[int, float, OnArrive]], t_arrive_s: float, _event: Any) -> None:
        for _, t_start_s, on_arrive in done:
            on_arrive(t_start_s, t_arrive_s)


class TraceIntegral:
    """Bits a trace delivers between two trace times: bisection on cumulative bits, O(log n)."""

    __slots__ = ("_cum_bits", "_period_bits", "_period_s", "_rates", "_times")

    def __init__(self, trace: Trace) -> None:
        widths = np.diff(np.append(trace.times_s, trace.period_s))
        cum = np.concatenate(([0.0], np.cumsum(trace.rate_bps * widths)))
        self._times: list[float] = trace.times_s.tolist()
        self._rates: list[float] = trace.rate_bps.tolist()
        self._cum_bits: list[float] = cum[:-1].tolist()
        self._period_bits, self._period_s = float(cum[-1]), trace.period_s

    def _until(self, t_s: float) -> float:
        loops, u = divmod(t_s, self._period_s)
        if u >= self._period_s:  # divmod rounding just below a period boundary
            loops, u = loops + 1.0, 0.0
        i = bisect_right(self._times, u) - 1
        return loops * self._period_bits + self._cum_bits[i] + self._rates[i] * (u - self._times[i])

    def bits(self, start_s: float, end_s: float) -> float:
        """Bits sent at full capacity over [start_s, end_s) of trace time."""
        if len(self._rates) == 1:
            return self._rates[0] * (end_s - start_s)
        return self._until(end_s) - self._until(start_s)


class OutageLink(Link):
    """A device's own FIFO link whose capacity drops to zero during ``outages``."""

    __slots__ = ("_integral", "_outages")

    def __init__(
        self,
        trace: Trace,
        offset_s: float,
        delay_s: float,
        outages: Outages,
        integral: TraceIntegral | None = None,
    ) -> None:
        if trace is None:
            raise ValueError("an ideal link (trace None) cannot have outages; give it a trace")
        super().__init__(trace, offset_s, delay_s)
        self._outages = outages
        self._integral = TraceIntegral(trace) if integral is None else integral

    def send(self, ready_s: float, nbytes: float) -> tuple[float, float]:
        start_s = ready_s if ready_s > self._free_s else self._free_s
        end_s = self._end_s(start_s, nbytes)
        self._free_s = end_s
        return start_s, end_s + self._delay_s

    def _end_s(self, t_s: float, nbytes: float) -> float:
        """When the last bit of ``nbytes`` leaves, sent from ``t_s``: run to the next outage,
        pause to its end, repeat."""
        trace = self._trace
        assert trace is not None
        offset_s = self._offset_s
        while True:
            start_s, end_s = self._outages.next_window(t_s)
            if start_s <= t_s:  # inside an outage: wait for its end
                t_s = end_s
                continue
            done_s = t_s + trace.transfer_s(t_s + offset_s, nbytes)
            if done_s <= start_s:
                return done_s
            sent_bytes = self._integral.bits(t_s + offset_s, start_s + offset_s) / 8.0
            if sent_bytes >= nbytes * (1.0 - _FINISH_RTOL):  # float rounding at the edge
                return start_s
            nbytes -= sent_bytes
            t_s = start_s


class _GatedCursor:
    """A ``TraceCursor`` with outage windows cut in (rate 0 inside them): each step ends at the
    next trace step or outage edge. ``end_s`` is in trace time, as a ``TraceCursor``'s."""

    __slots__ = ("_cursor", "_edge_s", "_offset_s", "_outages", "end_s", "rate_bps")

    def __init__(self, cursor: TraceCursor, outages: Outages, offset_s: float, t_s: float) -> None:
        self._cursor = cursor
        self._outages = outages
        self._offset_s = offset_s
        self.end_s = self.rate_bps = self._edge_s = 0.0
        self._load(t_s)

    def _load(self, t_s: float) -> None:
        """Set up the step that begins at simulated time ``t_s``."""
        cursor, offset_s = self._cursor, self._offset_s
        while cursor.end_s - offset_s <= t_s:
            cursor.advance()
        start_s, end_s = self._outages.next_window(t_s)
        if start_s <= t_s:
            self.rate_bps, edge_s = 0.0, end_s
        else:
            self.rate_bps, edge_s = cursor.rate_bps, start_s
        step_end_s = cursor.end_s - offset_s
        if edge_s < step_end_s:
            self._edge_s, self.end_s = edge_s, edge_s + offset_s
        else:
            self._edge_s, self.end_s = step_end_s, cursor.end_s

    def advance(self) -> None:
        self._load(self._edge_s)


def device_offsets(
    rng: np.random.Generator, count: int, trace: Trace | None
) -> npt.NDArray[np.float64]:
    """Each device's offset into the trace, U[0, period); zeros (and no draws) for an ideal or
    one-step trace, whose offset changes nothing."""
    if count < 0:
        raise ValueError(f"device count must be >= 0, got {count}")
    if trace is None or trace.times_s.size == 1:
        return np.zeros(count, dtype=np.float64)
    return rng.uniform(0.0, trace.period_s, count)
