"""The event loop: one scenario run in simulated time, on simpy, with the device side written
once for every task.

Every request goes: arrival on its device -> device queue -> head -> encode -> uplink ->
server -> downlink -> done. This module owns the device side: arrivals (and devices that are
offline), each device's queue (a device runs one request's head at a time), the jobs handed to
the oracle, the uplink and downlink transfers over ``fleet.network``, and each request's row.
What a request *is* comes from its task (``fleet.infer``: one head pass, one tail pass in a
request batch; ``fleet.sequences``: an autoregressive sequence, token by token, in continuous
batching); the servers are a ``server.protocol.ServerSide``. Stage durations come from
``models.durations`` and ``server.cost``; payload sizes and answers from the oracle, which is
asked when a stage starts and answered when it ends in simulated time. Requests are rows of
numpy arrays (``fleet.rows``) and devices and replicas rows of state: no simpy process per
request, so 100,000 devices run in memory at tens of thousands of requests per wall second.

Event order: simpy runs events by (time, insertion order). At one instant arrivals run in
(time, device id) order; jobs submitted at an instant go to the oracle in one call before
simulated time moves on (or at once when a result is needed at the same instant).

Faults: every request ends as exactly one row, ``completed``, ``dropped`` or ``failed``. A head
whose ``result()`` raises ``ComputeFailed`` is ``failed`` (reason ``head: ...``) with the stage
times it reached, and its device goes on with its next request. With ``availability`` a
request that arrives while its device is offline is ``dropped`` (``device_offline``); only
arrival decides. Link ``outages`` pause transfers (``fleet.network``). Server-side faults are
the task's (``fleet.infer``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import simpy

from fleet.core import GroupSetup, ServerSeeds, Task, Transfer
from fleet.infer import Infer
from fleet.network.fleet_links import FleetLinks
from fleet.rows import COMPLETED, DROPPED, FAILED, RequestRows, Sink
from fleet.sequences import Sequences
from models.codec_time import GPU_ASSUMPTION, CodecTimes, codec_id_of
from models.durations import ModelCosts
from models.hardware import get_hardware
from scenarios.schema import Scenario
from server.engine.jobs import ComputeFailed, Oracle, Pending
from server.protocol import ServerSide

Progress = Callable[[float, int, int], None]  # simulated time, requests done, requests in all


@dataclass(frozen=True)
class SimOutput:
    requests: int
    completed: int
    dropped: int
    sim_time_s: float
    events: int
    servers: dict[str, list[Any]]
    oracle: dict[str, int]
    failed: int = 0  # requests whose real compute failed (status failed)
    replica_failures: int = 0  # replica failures in [0, sim_time_s]
    replica_down_s: float = 0.0  # replica-seconds down in [0, sim_time_s]
    #: what the run's times assume beyond its inputs, in words (manifest.json, the report)
    assumptions: tuple[str, ...] = ()


class Simulation:
    """Build with the scenario, an oracle and the sinks of the request rows (and, for
    ``task: generate``, of the step rows); ``run()`` returns a ``SimOutput``."""

    def __init__(
        self,
        scenario: Scenario,
        oracle: Oracle,
        *,
        run_id: str,
        codec_keys: list[str],
        sink: Sink,
        step_sink: Sink | None = None,
        progress: Progress | None = None,
        chunk_rows: int = 65536,
        lookahead: int = 256,
    ) -> None:
        self.scenario = scenario
        self.oracle = oracle
        self.lookahead = lookahead
        self.run_id = run_id
        self._progress = progress
        self.env = simpy.Environment()
        # children are keyed by position: the first six keep their streams as faults are added
        seeds = np.random.SeedSequence(scenario.seed).spawn(9)
        arrival_ss, offset_ss, input_ss, trace_ss, route_ss, service_ss = seeds[:6]
        offline_ss, outage_ss, failure_ss = seeds[6:]
        self.costs = ModelCosts(scenario.model.name, scenario.model.seq_len)
        self.codec_times = CodecTimes.read(scenario.codec_costs)
        self.groups = [
            self._setup(g, key) for g, key in zip(scenario.fleet, codec_keys, strict=True)
        ]
        self.rows = RequestRows(
            scenario, self.groups, run_id, sink, chunk_rows, (arrival_ss, input_ss, offline_ss)
        )
        self.n_requests = self.rows.n
        self._arrive_now = self._arrive_if_online if self.rows.any_offline else self._arrive
        self.links = FleetLinks(
            self.env, scenario, self.rows.device_group, offset_ss, trace_ss, outage_ss
        )
        classes: dict[tuple[int, str], int] = {}
        self.group_class = [
            classes.setdefault((g.split, g.codec_key), len(classes)) for g in self.groups
        ]
        self.groups = [self._with_heads(i, g, classes) for i, g in enumerate(self.groups)]
        self.task = self._make_task(step_sink, ServerSeeds(route_ss, service_ss, failure_ss))
        self.rows.task = self.task
        self.server: ServerSide = self.task.server
        # jobs submitted at this instant, flushed to the oracle in one call before time
        # moves on; their results by request id
        self._jobs: list[tuple[int, Any]] = []
        self._futures: dict[int, Pending[Any]] = {}
        self._prefetched = 0
        self._works_ahead = oracle.works_ahead
        # device state: busy flag, when its last encode ends, its waiting requests
        self._busy = [False] * self.rows.n_devices
        self._free_at = [0.0] * self.rows.n_devices
        self._waiting: dict[int, deque[int]] = {}

    def _setup(self, group: Any, codec_key: str) -> GroupSetup:
        hardware = get_hardware(group.hardware)
        head_s, head_energy_j = self.costs.head(hardware, group.dtype, group.split)
        codec_id = self.scenario.codec_for(group).id
        return GroupSetup(
            group.name,
            group.split,
            codec_id,
            codec_key,
            hardware,
            group.dtype,
            head_s,
            head_energy_j,
        )

    def _with_heads(self, index: int, g: GroupSetup, classes: dict[tuple[int, str], int]) -> Any:
        """An adaptive group's set-up with its heads (``fleet.policy``); a static one as is."""
        group = self.scenario.fleet[index]
        if group.policy == "static":
            return g
        if self.scenario.model.task == "generate":
            raise ValueError(
                f"fleet[{index}].policy: adaptive policies are for model.task: infer; "
                "use policy: static for task: generate"
            )
        from fleet.policy import adaptive_heads, resident_bytes

        g = replace(g, heads=adaptive_heads(self, group, g, classes), policy=group.policy)
        resident = resident_bytes(self, g)
        if resident > g.hardware.memory_capacity_bytes:
            raise ValueError(
                f"fleet[{index}].policy: the {len(g.heads)} heads keep {resident / 1e9:.2f} GB "
                f"of weights, more than {g.hardware.name}'s memory "
                f"({g.hardware.memory_capacity_bytes / 1e9:.2f} GB); keep fewer or shallower heads"
            )
        return g

    def _make_task(self, step_sink: Sink | None, seeds: ServerSeeds) -> Task:
        if self.scenario.model.task == "generate":
            if step_sink is None:
                raise ValueError("a task: generate run needs a step_sink for steps.parquet")
            return Sequences(self, step_sink, seeds)
        return Infer(self, seeds)

    # ------------------------------------------------------------------ the loop
    def run(self) -> SimOutput:
        if self.n_requests:
            self._prefetch_up_to(self.lookahead)
            self._schedule_arrivals(0)
        env, rows, n = self.env, self.rows, self.n_requests
        events = 0
        stop_when_done = self.server.stops_when_done  # failures and repairs go on for ever
        unflushed = self._jobs
        while True:
            t_next = env.peek()
            if t_next == math.inf:
                break
            if stop_when_done and rows.finished == n:
                break
            if t_next > env.now and unflushed:
                self.flush_jobs()
            env.step()
            events += 1
            if self._progress is not None and not events & 4095:
                self._progress(env.now, rows.finished, n)
        rows.flush()
        end_s = max(env.now, rows.last_done_s, self.scenario.duration_s or 0.0)
        if self._progress is not None:
            self._progress(end_s, n, n)
        replica_failures, replica_down_s = self.server.failure_stats(end_s)
        return SimOutput(
            requests=n,
            completed=rows.completed,
            dropped=rows.dropped,
            sim_time_s=end_s,
            events=events,
            servers=self.server.table(self.run_id, end_s),
            oracle=self.oracle.stats(),
            failed=rows.failed,
            replica_failures=replica_failures,
            replica_down_s=replica_down_s,
            assumptions=self._assumptions(),
        )

    def _assumptions(self) -> tuple[str, ...]:
        out = []
        times = self.codec_times
        for key, used in sorted(times.substitutes.items()):
            out.append(
                f"codec {key} has no fitted cost: charged as {codec_id_of(used)}'s defaults "
                f"({used}); fit it with slicer calibrate-codecs --codec '{key}'"
            )
        for key in sorted(times.frames_as_containers):
            out.append(
                f"codec {key} has no fitted stream-frame cost: its step frames are charged as "
                "containers (setting search included); refit with slicer calibrate-codecs"
            )
        if self.scenario.servers.decode.on == "gpu":
            out.append(GPU_ASSUMPTION)
        for g in self.groups:
            if g.heads:
                from fleet.policy import resident_bytes

                splits = ", ".join(str(h.split) for h in g.heads)
                out.append(
                    f"group {g.name} chooses per request among {len(g.heads)} heads (splits "
                    f"{splits}): {resident_bytes(self, g) / 1e6:.1f} MB of head weights resident, "
                    f"{g.policy.switch_s} s at active power per switch of head"
                )
        return tuple(out)

    def _schedule_arrivals(self, first: int) -> None:
        self.at(float(self.rows.t_arrival[first]), self._arrivals, first)

    def _arrivals(self, event: Any) -> None:
        i = event.value
        t_arrival = self.rows.t_arrival
        t_s = t_arrival[i]
        n = self.n_requests
        arrive = self._arrive_now
        while i < n and t_arrival[i] == t_s:
            arrive(i)
            i += 1
        self._prefetch_up_to(i + self.lookahead)
        if i < n:
            self._schedule_arrivals(i)

    def _prefetch_up_to(self, stop: int) -> None:
        """Hand the oracle the jobs of requests up to ``stop`` ahead of simulated time: what
        they compute depends on the input, never on time, so an oracle with workers to spare
        (Ray) keeps them busy while the loop waits on an earlier result."""
        if not self._works_ahead:
            return
        stop = min(stop, self.n_requests)
        if stop <= self._prefetched:
            return
        jobs = [self.task.job(rid) for rid in range(self._prefetched, stop)]
        self._prefetched = stop
        self.task.prefetch(jobs)

    # ------------------------------------------------------------------ the device
    def _arrive_if_online(self, rid: int) -> None:
        if self.rows.offline_of[rid]:
            self.finish(rid, DROPPED, "device_offline")
        else:
            self._arrive(rid)

    def _arrive(self, rid: int) -> None:
        dev = self.rows.device_of[rid]
        if self._busy[dev]:
            self._waiting.setdefault(dev, deque()).append(rid)
        elif self._free_at[dev] > self.env.now:
            self._busy[dev] = True
            self._waiting.setdefault(dev, deque()).append(rid)
            self.at(self._free_at[dev], self._wake, dev)
        else:
            self._start_head(rid)

    def _wake(self, event: Any) -> None:
        dev = event.value
        self._busy[dev] = False
        queue = self._waiting[dev]
        rid = queue.popleft()
        if not queue:
            del self._waiting[dev]
        self._start_head(rid)

    def _start_head(self, rid: int) -> None:
        self._busy[self.rows.device_of[rid]] = True
        now = self.env.now
        self.rows.t["t_head_start_s"][rid] = now
        head_s = self.task.head_started(rid)
        self._jobs.append((rid, self.task.job(rid)))
        self.at(now + head_s, self._head_ended, rid)

    def flush_jobs(self) -> None:
        """Submit the jobs of this instant to the oracle in one call."""
        jobs = list(self._jobs)
        self._jobs.clear()
        futures = self.task.submit([job for _, job in jobs])
        for (rid, _), future in zip(jobs, futures, strict=True):
            self._futures[rid] = future

    def _head_ended(self, event: Any) -> None:
        rid = event.value
        if rid not in self._futures:
            self.flush_jobs()
        try:
            result = self._futures.pop(rid).result()
        except ComputeFailed as exc:
            self._head_failed(rid, exc)
            return
        self.rows.t["t_head_end_s"][rid] = self.env.now
        self.task.head_ended(rid, result)

    def _head_failed(self, rid: int, exc: ComputeFailed) -> None:
        """The head ran its simulated time but produced nothing: free the device, record."""
        now = self.env.now
        self.rows.t["t_head_end_s"][rid] = now
        g = self.groups[self.rows.group_of[rid]]
        if not g.heads:  # an adaptive group's head_started charged its head
            self.rows.energy_j[rid] = g.head_energy_j
        self.free_device(self.rows.device_of[rid], now)
        self.finish(rid, FAILED, f"head: {exc}")

    def free_device(self, dev: int, at_s: float) -> None:
        """Device ``dev`` is free from ``at_s``: its next waiting request starts then."""
        self._busy[dev] = False
        self._free_at[dev] = at_s
        if dev in self._waiting:
            self._busy[dev] = True
            self.at(at_s, self._wake, dev)

    # ------------------------------------------------------------------ links
    def send_up(self, rid: int, nbytes: int, at_s: float, done: Transfer) -> None:
        """Send ``nbytes`` from ``rid``'s device from ``at_s``: over its own uplink, or its
        cell's shared one; ``done(rid, start_s, arrive_s)`` runs at arrival."""
        cell = self.links.group_cell[self.rows.group_of[rid]][0]
        if cell is None:
            start_s, arrive_s = self.links.link(self.rows.device_of[rid], 0).send(at_s, nbytes)
            self.at(arrive_s, _transferred, (done, rid, start_s, arrive_s))
        else:
            self.at(at_s, _cell_send, (cell, float(nbytes), done, rid))

    def send_down(self, rid: int, nbytes: int, done: Transfer, *, settle: bool = False) -> None:
        """Send ``nbytes`` from the server to ``rid``'s device now; ``done(rid, start_s,
        arrive_s)`` runs at arrival, or at once with ``settle`` when the device has its own
        downlink (nothing else uses it, so the arrival time is final now)."""
        cell = self.links.group_cell[self.rows.group_of[rid]][1]
        if cell is not None:
            cell.send(float(nbytes), partial(done, rid))
            return
        start_s, arrive_s = self.links.link(self.rows.device_of[rid], 1).send(self.env.now, nbytes)
        if settle:
            done(rid, start_s, arrive_s)
        else:
            self.at(arrive_s, _transferred, (done, rid, start_s, arrive_s))

    # ------------------------------------------------------------------ helpers
    def finish(self, rid: int, status: int, reason: str, done_s: float = math.nan) -> None:
        """Request ``rid`` ends with ``status``: its row is written with the next chunk."""
        if status != COMPLETED:
            self.task.forget(rid)
        self.rows.finish(rid, status, reason, done_s)

    def at(self, t_s: float, callback: Callable[[Any], None], value: Any) -> None:
        """Run ``callback(event)`` at simulated time ``t_s``; ``event.value`` is ``value``."""
        event = self.env.timeout(t_s - self.env.now, value=value)
        event.callbacks.append(callback)


def _transferred(event: Any) -> None:
    done, rid, start_s, arrive_s = event.value
    done(rid, start_s, arrive_s)


def _cell_send(event: Any) -> None:
    cell, nbytes, done, rid = event.value
    cell.send(nbytes, partial(done, rid))
