"""The event loop: one scenario run in simulated time, on simpy.

Every request goes: arrival on its device -> device queue (a device runs one head at a time) ->
head -> encode -> uplink -> server queue -> batch -> decode + tail -> downlink -> done. Stage
durations come from ``fleet.costs`` and the links of ``fleet.network.links``; payload sizes and
answers come from the oracle, which is asked when a stage starts and answered when it ends in
simulated time. Requests are rows of numpy arrays, devices and replicas are rows of state: no simpy
process per request, so 100,000 devices run in memory and at tens of thousands of requests per
wall second.

Event order: simpy runs events by (time, insertion order). At one instant arrivals run in
(time, device id) order; head jobs submitted at an instant go to the oracle in one call before
simulated time moves on (or at once when a result is needed at the same instant).

Faults: every request ends as exactly one row, ``completed``, ``dropped`` or ``failed``.

- A head or tail whose ``result()`` raises ``ComputeFailed`` is ``failed`` (reason ``head: ...``
  or ``tail: ...``) with the stage times it reached; its device goes on with its next request
  and the rest of its batch completes.
- ``availability``: a request that arrives while its device is offline is ``dropped``
  (``device_offline``); only arrival decides, so requests already queued on or running on a
  device that goes offline finish.
- Link ``outages`` pause transfers (``fleet.network.links``).
- Replica ``failures`` (``server.replica``): the running batch's tails are never collected and
  its requests, with the failed replica's queue, are ``dropped`` (``replica_failed``) or
  enqueued again through routing (``reroute``): replica, batch and server times are reset and
  ``t_server_enqueue_s`` becomes the failure instant, so the time lost shows in ``dispatch_s``
  (a full queue refuses a rerouted request like any other: ``queue_full``).
  ``server_busy_s`` keeps each request's share of every batch it was in, cut ones included, so
  it still sums to the servers' busy time. The failure process never ends: with failures the
  loop stops when every request has its row.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from fleet.arrivals import arrival_times, offline_arrivals
from fleet.costs import ModelCosts, codec_decode_s, codec_encode_s
from fleet.network.fleet_links import FleetLinks
from models.hardware import HardwareSpec, get_hardware
from records.tables import STAGE_TIMES
from scenarios.schema import Scenario
from server.batching import BatchPolicy
from server.engine.jobs import ComputeFailed, HeadJob, HeadResult, Oracle, Pending, TailJob
from server.replica import FailurePolicy, ServerPool

COMPLETED, DROPPED, FAILED = 1, 2, 3
STATUS = np.array(["", "completed", "dropped", "failed"], dtype=object)
Sink = Callable[[dict[str, Any]], None]
Progress = Callable[[float, int, int], None]  # simulated time, requests done, requests in all


@dataclass(frozen=True)
class GroupSetup:
    """What the loop needs of one device group, resolved once."""

    name: str
    split: int
    codec_id: str
    codec_key: str
    hardware: HardwareSpec
    head_s: float
    head_energy_j: float


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


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        oracle: Oracle,
        *,
        run_id: str,
        codec_keys: list[str],
        sink: Sink,
        progress: Progress | None = None,
        chunk_rows: int = 65536,
        lookahead: int = 256,
    ) -> None:
        self.scenario = scenario
        self.oracle = oracle
        self.lookahead = lookahead
        self.run_id = run_id
        self._sink = sink
        self._progress = progress
        self._chunk_rows = chunk_rows
        self.env = simpy.Environment()
        # children are keyed by position: the first six keep their streams as faults are added
        seeds = np.random.SeedSequence(scenario.seed).spawn(9)
        arrival_ss, offset_ss, input_ss, trace_ss, route_ss, service_ss = seeds[:6]
        offline_ss, outage_ss, failure_ss = seeds[6:]
        model = scenario.model
        self._costs = ModelCosts(model.name, model.seq_len)
        self.groups = [
            self._setup(g, key) for g, key in zip(scenario.fleet, codec_keys, strict=True)
        ]
        self._make_requests(arrival_ss, input_ss, offline_ss)
        self.links = FleetLinks(
            self.env, scenario, self.device_group, offset_ss, trace_ss, outage_ss
        )
        self._make_servers(route_ss, service_ss, failure_ss)
        # jobs submitted at this instant, flushed to the oracle in one call (``_submit``)
        # before time moves on; their results by request id
        self._jobs: list[tuple[int, Any]] = []
        self._submit: Callable[[list[Any]], Sequence[Pending[Any]]] = oracle.submit_heads
        self._futures: dict[int, Pending[Any]] = {}
        self._tail_futures: dict[int, Any] = {}
        self._heads: dict[int, HeadResult] = {}  # head results of requests not yet at a server
        # an oracle that can work ahead (RayOracle.prefetch) gets the jobs of the next
        # ``lookahead`` requests as arrivals happen
        self._prefetch: Callable[[list[Any]], None] | None = getattr(oracle, "prefetch", None)
        self._prefetched = 0
        self._done: list[int] = []
        self._flushed = 0
        self._last_done_s = 0.0
        self.completed = 0
        self.dropped = 0
        self.failed = 0

    # ------------------------------------------------------------------ set-up
    def _setup(self, group: Any, codec_key: str) -> GroupSetup:
        hardware = get_hardware(group.hardware)
        head_s, head_energy_j = self._costs.head(hardware, group.dtype, group.split)
        codec_id = self.scenario.codec_for(group).id
        return GroupSetup(
            group.name, group.split, codec_id, codec_key, hardware, head_s, head_energy_j
        )

    def _make_requests(
        self, arrival_ss: np.random.SeedSequence, input_ss: Any, offline_ss: Any
    ) -> None:
        s = self.scenario
        counts = [g.count for g in s.fleet]
        first_device = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        devices, times, offlines = [], [], []
        arrival_seeds = arrival_ss.spawn(len(s.fleet))
        offline_seeds = offline_ss.spawn(len(s.fleet))
        for g, group_ss, group_offline_ss, base in zip(
            s.fleet, arrival_seeds, offline_seeds, first_device, strict=True
        ):
            device, t_s = arrival_times(
                g.arrivals,
                g.count,
                duration_s=s.duration_s,
                requests_per_device=s.requests_per_device,
                rng=np.random.default_rng(group_ss),
            )
            offline_rng = np.random.default_rng(group_offline_ss)
            offlines.append(offline_arrivals(g.availability, device, t_s, offline_rng))
            devices.append(device.astype(np.int64) + base)
            times.append(t_s)
        device = np.concatenate(devices)
        t_arrival = np.concatenate(times)
        order = np.lexsort((device, t_arrival))
        offline = np.concatenate(offlines)[order]
        # arrivals go through the offline check only when some device can be offline
        self._offline_of: list[bool] = offline.tolist()
        self._arrive_now = self._arrive_if_online if offline.any() else self._arrive
        self.device = device[order]
        self.t_arrival = t_arrival[order]
        n = len(self.device)
        self.n_requests = n
        self.device_group = np.repeat(np.arange(len(counts)), counts)
        self.n_devices = int(sum(counts))
        self.group = self.device_group[self.device] if n else np.zeros(0, dtype=np.int64)
        inputs = np.random.default_rng(input_ss).integers(0, 2**31 - 1, n, dtype=np.int64)
        if s.model.inputs is not None:
            inputs %= s.model.inputs
        self.input_id = inputs
        # Python lists mirror the per-request columns the hot path reads: indexing a list is
        # several times faster than a numpy scalar read
        self._device_of = self.device.tolist()
        self._group_of = self.group.tolist()
        self._input_of = inputs.tolist()
        nan = np.full(n, np.nan)
        self.t = {k: nan.copy() for k in STAGE_TIMES[1:]}  # t_arrival_s is its own array
        self.raw_bytes = np.zeros(n, dtype=np.int64)
        self.payload_bytes = np.zeros(n, dtype=np.int64)
        self.result_bytes = np.zeros(n, dtype=np.int64)
        self.replica = np.full(n, -1, dtype=np.int32)
        self.batch_size = np.zeros(n, dtype=np.int32)
        self.server_busy_s = np.zeros(n)
        self.energy_j = np.zeros(n)
        self.agreement = nan.copy()
        self.status = np.zeros(n, dtype=np.int8)
        self.reason: dict[int, str] = {}
        # device state: busy flag, when its last encode ends, its waiting requests
        self._busy = [False] * self.n_devices
        self._free_at = [0.0] * self.n_devices
        self._waiting: dict[int, deque[int]] = {}

    def _make_servers(self, route_ss: Any, service_ss: Any, failure_ss: Any) -> None:
        servers = self.scenario.servers
        failures = servers.failures
        self._reroute = failures is not None and failures.on_failure == "reroute"
        self.server_hw = get_hardware(servers.hardware)
        self.server_hw.peak(servers.dtype)
        self._decode_speedup = servers.decode_speedup
        classes: dict[tuple[int, str], int] = {}
        self._group_class = [
            classes.setdefault((g.split, g.codec_key), len(classes)) for g in self.groups
        ]
        self._service_rng = np.random.default_rng(service_ss)
        self.pool = ServerPool(
            self.env,
            replicas=servers.replicas,
            policy=BatchPolicy(servers.batching.max_batch, servers.batching.max_wait_s),
            routing=servers.routing,
            rng=np.random.default_rng(route_ss),
            queue_limit=servers.queue_limit,
            window_s=self.scenario.record.window_s,
            service_time=self._service_time,
            on_start=self._batch_started,
            on_end=self._batch_ended,
            failures=None if failures is None else FailurePolicy(failures.mtbf_s, failures.mttr_s),
            failure_seed=failure_ss,
            on_fail=self._replica_failed,
        )

    # ------------------------------------------------------------------ the loop
    def run(self) -> SimOutput:
        if self.n_requests:
            if self._prefetch is not None:
                self._prefetch_up_to(self.lookahead)
            self._schedule_arrivals(0)
        env = self.env
        events = 0
        n = self.n_requests
        stop_when_done = self._stops_when_done()  # failures and repairs go on for ever
        unflushed = self._jobs
        while True:
            t_next = env.peek()
            if t_next == math.inf:
                break
            if stop_when_done and len(self._done) + self._flushed == n:
                break
            if t_next > env.now and unflushed:
                self._flush_jobs()
            env.step()
            events += 1
            if self._progress is not None and not events & 4095:
                self._progress(env.now, len(self._done) + self._flushed, self.n_requests)
        self._flush_rows()
        end_s = max(env.now, self._last_done_s, self.scenario.duration_s or 0.0)
        if self._progress is not None:
            self._progress(end_s, self.n_requests, self.n_requests)
        replica_failures, replica_down_s = self._failure_stats(end_s)
        return SimOutput(
            requests=self.n_requests,
            completed=self.completed,
            dropped=self.dropped,
            sim_time_s=end_s,
            events=events,
            servers=self._server_table(end_s),
            oracle=self.oracle.stats(),
            failed=self.failed,
            replica_failures=replica_failures,
            replica_down_s=replica_down_s,
        )

    def _stops_when_done(self) -> bool:
        return self.pool.has_failures

    def _failure_stats(self, end_s: float) -> tuple[int, float]:
        return self.pool.failure_stats(end_s)

    def _server_table(self, end_s: float) -> dict[str, list[Any]]:
        return self.pool.table(self.run_id)

    def _schedule_arrivals(self, first: int) -> None:
        event = self.env.timeout(float(self.t_arrival[first]) - self.env.now, value=first)
        event.callbacks.append(self._arrivals)

    def _arrivals(self, event: Any) -> None:
        i = event.value
        t_s = self.t_arrival[i]
        n = self.n_requests
        arrive = self._arrive_now
        while i < n and self.t_arrival[i] == t_s:
            arrive(i)
            i += 1
        if self._prefetch is not None:
            self._prefetch_up_to(i + self.lookahead)
        if i < n:
            self._schedule_arrivals(i)

    def _prefetch_up_to(self, stop: int) -> None:
        """Hand the oracle the jobs of requests up to ``stop`` ahead of simulated time: what a
        head computes depends on the input, never on time, so an oracle with workers to spare
        (Ray) keeps them busy while the loop waits on an earlier result."""
        stop = min(stop, self.n_requests)
        if stop <= self._prefetched:
            return
        jobs = [self._prefetch_job(rid) for rid in range(self._prefetched, stop)]
        self._prefetched = stop
        assert self._prefetch is not None
        self._prefetch(jobs)

    def _arrive_if_online(self, rid: int) -> None:
        if self._offline_of[rid]:
            self._finish(rid, DROPPED, "device_offline")
        else:
            self._arrive(rid)

    def _arrive(self, rid: int) -> None:
        dev = self._device_of[rid]
        if self._busy[dev]:
            self._waiting.setdefault(dev, deque()).append(rid)
        elif self._free_at[dev] > self.env.now:
            self._busy[dev] = True
            self._waiting.setdefault(dev, deque()).append(rid)
            self._at(self._free_at[dev], self._wake, dev)
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
        dev = self._device_of[rid]
        self._busy[dev] = True
        g = self.groups[self._group_of[rid]]
        now = self.env.now
        self.t["t_head_start_s"][rid] = now
        self._jobs.append((rid, self._head_job(rid)))
        self._at(now + g.head_s, self._head_ended, rid)

    def _prefetch_job(self, rid: int) -> Any:
        """The job an oracle may compute ahead of time for request ``rid``."""
        return self._head_job(rid)

    def _head_job(self, rid: int) -> HeadJob:
        g = self.groups[self._group_of[rid]]
        model = self.scenario.model
        input_id = self._input_of[rid]
        return HeadJob(
            rid, model.name, g.split, g.codec_key, input_id, model.seq_len, prompts=model.prompts
        )

    def _flush_jobs(self) -> None:
        jobs = list(self._jobs)
        self._jobs.clear()
        futures = self._submit([job for _, job in jobs])
        for (rid, _), future in zip(jobs, futures, strict=True):
            self._futures[rid] = future

    def _head_ended(self, event: Any) -> None:
        rid = event.value
        if rid not in self._futures:
            self._flush_jobs()
        try:
            result: HeadResult = self._futures.pop(rid).result()
        except ComputeFailed as exc:
            self._head_failed(rid, exc)
            return
        now = self.env.now
        gi = self._group_of[rid]
        g = self.groups[gi]
        dev = self._device_of[rid]
        encode_s = codec_encode_s(g.codec_id, result.raw_bytes, g.hardware.name)
        encode_end_s = now + encode_s
        self.t["t_head_end_s"][rid] = now
        self.raw_bytes[rid] = result.raw_bytes
        self.payload_bytes[rid] = result.payload_bytes
        self._heads[rid] = result
        self.energy_j[rid] = g.head_energy_j + g.hardware.active_power_w * encode_s
        self._free_device(dev, encode_end_s)
        cell_up = self.links.group_cell[gi][0]
        if cell_up is None:
            start_s, arrive_s = self.links.link(dev, 0).send(encode_end_s, result.payload_bytes)
            self.t["t_uplink_start_s"][rid] = start_s
            self._at(arrive_s, self._uplink_ended, rid)
        else:
            self._at(encode_end_s, self._cell_send, rid)

    def _head_failed(self, rid: int, exc: ComputeFailed) -> None:
        """The head ran its simulated time but produced nothing: free the device, record."""
        now = self.env.now
        dev = self._device_of[rid]
        self.t["t_head_end_s"][rid] = now
        self.energy_j[rid] = self.groups[self._group_of[rid]].head_energy_j
        self._free_device(dev, now)
        self._finish(rid, FAILED, f"head: {exc}")

    def _free_device(self, dev: int, at_s: float) -> None:
        """Device ``dev`` is free from ``at_s``: its next waiting request starts then."""
        self._busy[dev] = False
        self._free_at[dev] = at_s
        if dev in self._waiting:
            self._busy[dev] = True
            self._at(at_s, self._wake, dev)

    def _cell_send(self, event: Any) -> None:
        rid = event.value
        cell_up = self.links.group_cell[self._group_of[rid]][0]
        assert cell_up is not None
        cell_up.send(float(self.payload_bytes[rid]), lambda s, a: self._uplink_done(rid, s))

    def _uplink_ended(self, event: Any) -> None:
        rid = event.value
        self._uplink_done(rid, self.t["t_uplink_start_s"][rid])

    def _uplink_done(self, rid: int, start_s: float) -> None:
        now = self.env.now
        self.t["t_uplink_start_s"][rid] = start_s
        self.t["t_uplink_end_s"][rid] = now
        self.t["t_server_enqueue_s"][rid] = now
        if not self.pool.enqueue(rid, self._group_class[self._group_of[rid]]):
            self._finish(rid, DROPPED, "queue_full")

    def _service_time(self, batch: list[int]) -> float:
        override = self.scenario.servers.service
        if override is not None:
            return _draw(override.kind, override.mean_s, override.cv, self._service_rng)
        g = self.groups[self._group_of[batch[0]]]
        hw = self.server_hw
        raw_bytes = float(sum(self._heads[rid].raw_bytes for rid in batch))
        decode_s = codec_decode_s(g.codec_id, raw_bytes, hw.name) / self._decode_speedup
        tail_s = self._costs.tail_s(hw, self.scenario.servers.dtype, g.split, len(batch))
        return decode_s + tail_s

    def _batch_started(self, replica: int, batch: list[int], service_s: float) -> None:
        now = self.env.now
        size = len(batch)
        share_s = service_s / size
        start, replicas, sizes, busy = (
            self.t["t_server_start_s"],
            self.replica,
            self.batch_size,
            self.server_busy_s,
        )
        model, seq_len = self.scenario.model.name, self.scenario.model.seq_len
        prompts = self.scenario.model.prompts
        g = self.groups[self._group_of[batch[0]]]  # a batch holds one class: one split, codec
        jobs = []
        for rid in batch:  # element writes: batches are small, fancy indexing costs more
            start[rid] = now
            replicas[rid] = replica
            sizes[rid] = size
            busy[rid] += share_s  # a request cut by a replica failure keeps what it used
            head = self._heads[rid]  # kept until the batch ends: a failure may need it again
            input_id = self._input_of[rid]
            jobs.append(
                TailJob(rid, model, g.split, g.codec_key, input_id, seq_len, head, prompts=prompts)
            )
        for rid, future in zip(batch, self.oracle.submit_tails(jobs), strict=True):
            self._tail_futures[rid] = future

    def _batch_ended(self, replica: int, batch: list[int]) -> None:
        now = self.env.now
        end = self.t["t_server_end_s"]
        heads = self._heads
        for rid in batch:
            end[rid] = now
            try:
                result = self._tail_futures.pop(rid).result()
            except ComputeFailed as exc:
                self._finish(rid, FAILED, f"tail: {exc}")
                continue
            del heads[rid]
            self.agreement[rid] = result.agreement
            self.result_bytes[rid] = result.result_bytes
            gi = self._group_of[rid]
            cell_down = self.links.group_cell[gi][1]
            if cell_down is None:
                # nothing else uses the device's own downlink: the arrival time is final now
                _, arrive_s = self.links.link(self._device_of[rid], 1).send(
                    now, result.result_bytes
                )
                self._finish(rid, COMPLETED, "", arrive_s)
            else:
                cell_down.send(float(result.result_bytes), self._cell_delivered(rid))

    def _replica_failed(
        self, replica: int, batch: list[int], ran_s: float, service_s: float, queued: list[int]
    ) -> None:
        """A replica failed: its cut batch and its queue are dropped or enqueued again."""
        busy = self.server_busy_s
        if batch:
            unused_s = (service_s - ran_s) / len(batch)
            for rid in batch:
                busy[rid] -= unused_s
                del self._tail_futures[rid]  # never collected: the oracle's work is discarded
        if not self._reroute:
            for rid in batch + queued:
                self._finish(rid, DROPPED, "replica_failed")
            return
        now = self.env.now
        t = self.t
        for rid in batch + queued:
            t["t_server_start_s"][rid] = math.nan
            t["t_server_end_s"][rid] = math.nan
            self.replica[rid] = -1
            self.batch_size[rid] = 0
            t["t_server_enqueue_s"][rid] = now
            if not self.pool.enqueue(rid, self._group_class[self._group_of[rid]]):
                self._finish(rid, DROPPED, "queue_full")

    def _cell_delivered(self, rid: int) -> Callable[[float, float], None]:
        return lambda start_s, arrive_s: self._finish(rid, COMPLETED, "", arrive_s)

    def _finish(self, rid: int, status: int, reason: str, done_s: float = math.nan) -> None:
        self.status[rid] = status
        if status == COMPLETED:
            self.t["t_done_s"][rid] = done_s
            self._last_done_s = max(self._last_done_s, done_s)
            self.completed += 1
        else:
            self.reason[rid] = reason
            if status == DROPPED:
                self.dropped += 1
            else:
                self.failed += 1
            self._heads.pop(rid, None)
        self._done.append(rid)
        if len(self._done) >= self._chunk_rows:
            self._flush_rows()

    def _at(self, t_s: float, callback: Callable[[Any], None], value: Any) -> None:
        event = self.env.timeout(t_s - self.env.now, value=value)
        event.callbacks.append(callback)

    # ------------------------------------------------------------------ records
    def _radio_energy_j(self, idx: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Radio energy of the requests ``idx`` (of groups ``g``): each group's ``radio``
        model over the uplink (start to arrival) and downlink (server end to done) transfers
        that happened; 0 for groups without one."""
        radios = [x.radio for x in self.scenario.fleet]
        if all(r is None for r in radios):
            return np.zeros(len(idx))
        active_w = np.array([r.active_w if r else 0.0 for r in radios])[g]
        up_j = np.array([r.uplink_j_per_mbit if r else 0.0 for r in radios])[g]
        down_j = np.array([r.downlink_j_per_mbit if r else 0.0 for r in radios])[g]
        t = self.t
        up_s = _active_s(t["t_uplink_start_s"][idx], t["t_uplink_end_s"][idx])
        down_s = _active_s(t["t_server_end_s"][idx], t["t_done_s"][idx])
        sent = ~np.isnan(t["t_uplink_end_s"][idx])
        received = ~np.isnan(t["t_done_s"][idx])
        up_mbit = np.where(sent, self.payload_bytes[idx] * 8e-6, 0.0)
        down_mbit = np.where(received, self.result_bytes[idx] * 8e-6, 0.0)
        return active_w * (up_s + down_s) + up_j * up_mbit + down_j * down_mbit

    def _flush_rows(self) -> None:
        if not self._done:
            return
        idx = np.asarray(self._done, dtype=np.int64)
        self._flushed += len(idx)
        self._done = []
        g = self.group[idx]
        names = np.array([x.name for x in self.groups], dtype=object)
        splits = np.array([x.split for x in self.groups], dtype=np.int32)
        codecs = np.array([x.codec_id for x in self.groups], dtype=object)
        columns: dict[str, Any] = {
            "run_id": [self.run_id] * len(idx),
            "request_id": idx,
            "device_id": self.device[idx],
            "group": names[g].tolist(),
            "model": [self.scenario.model.name] * len(idx),
            "split": splits[g],
            "codec": codecs[g].tolist(),
            "input_id": self.input_id[idx],
            "replica_id": self.replica[idx],
            "t_arrival_s": self.t_arrival[idx],
        }
        for name, values in self.t.items():
            columns[name] = values[idx]
        radio_j = self._radio_energy_j(idx, g)
        columns.update(
            raw_bytes=self.raw_bytes[idx],
            payload_bytes=self.payload_bytes[idx],
            result_bytes=self.result_bytes[idx],
            batch_size=self.batch_size[idx],
            server_busy_s=self.server_busy_s[idx],
            device_energy_j=self.energy_j[idx] + radio_j,
            radio_energy_j=radio_j,
            agreement=self.agreement[idx],
            status=STATUS[self.status[idx]].tolist(),
            reason=[self.reason.pop(int(i), "") for i in idx],
        )
        columns.update(self._extra_columns(idx))
        self._sink(columns)

    def _extra_columns(self, idx: np.ndarray) -> dict[str, Any]:
        """Columns a subclass adds to the request rows ``idx``."""
        return {}


def _active_s(start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Seconds from start to end, 0 where a stage was not reached (NaN)."""
    return np.nan_to_num(end_s - start_s, nan=0.0)


def _draw(kind: str, mean_s: float, cv: float, rng: np.random.Generator) -> float:
    if kind == "deterministic":
        return mean_s
    if kind == "exponential":
        return float(rng.exponential(mean_s))
    sigma2 = math.log1p(cv * cv)  # lognormal with the given mean and coefficient of variation
    return float(rng.lognormal(math.log(mean_s) - sigma2 / 2, math.sqrt(sigma2)))
