"""``task: infer``: a request is one head pass on its device and one tail pass on a server.

After its head the device encodes the IF (``models.codec_time``: the fitted codec cost on the
device's core) and is free for its next request when the encode ends; the payload goes up, is
decoded on the servers' decode pool (``server.decode_pool``; with ``servers.decode.on: gpu``
the batch decodes on the accelerator instead), joins a request batch on the server pool
(``server.replica.ServerPool``: routing, batch queues, failures), runs the tail
(``server.cost.ServerCost``), and the answer comes back down; the request completes when it
reaches the device. ``t_server_enqueue_s`` is when its decode ends.

A group with ``policy: {kind: adaptive}`` picks each request's head when it starts
(``fleet.policy``): the request runs that head's split, codec, time and energy (plus any head
switch), joins that head's service class, and its row records the split and codec it ran.
The device learns from its uplink transfers and from each response's server wait.

Replica failures (``servers.failures``): the running batch's tails are never collected and its
requests, with the failed replica's queue, are ``dropped`` (``replica_failed``) or enqueued
again through routing (``reroute``): replica, batch and server times are reset and
``t_server_enqueue_s`` becomes the failure instant, so the time lost shows in ``dispatch_s``
(a full queue refuses a rerouted request like any other: ``queue_full``). ``server_busy_s``
keeps each request's share of every batch it was in, cut ones included, so it still sums to
the servers' busy time. A rerouted request is not decoded again. The failure process never
ends: with failures the loop stops when every request has its row. A tail whose
``result()`` raises ``ComputeFailed`` is ``failed`` (reason ``tail: ...``) and the rest of its
batch completes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleet.core import Head, ServerSeeds, decode_pool, server_cost
from fleet.policy import Policies
from fleet.rows import COMPLETED, DROPPED, FAILED, radio_energy_j
from server.batching import BatchPolicy
from server.cost import IF
from server.engine.jobs import ComputeFailed, HeadJob, HeadResult, Pending, TailJob, TailResult
from server.replica import FailurePolicy, ServerPool

if TYPE_CHECKING:
    from fleet.host import Host


class Infer:
    def __init__(
        self,
        sim: Host,
        seeds: ServerSeeds,
    ) -> None:
        self.sim = sim
        self.rows = sim.rows
        servers = sim.scenario.servers
        failures = servers.failures
        self._reroute = failures is not None and failures.on_failure == "reroute"
        self.cost = server_cost(
            sim.costs, sim.codec_times, servers, sim.groups, sim.group_class, seeds
        )
        self.decode_pool = decode_pool(sim.env, servers, self.cost, self._decoded)
        self.server = ServerPool(
            sim.env,
            replicas=servers.replicas,
            policy=BatchPolicy(servers.batching.max_batch, servers.batching.max_wait_s),
            routing=servers.routing,
            rng=np.random.default_rng(seeds.route),
            queue_limit=servers.queue_limit,
            window_s=sim.scenario.record.window_s,
            service_time=self._service_time,
            on_start=self._batch_started,
            on_end=self._batch_ended,
            failures=None if failures is None else FailurePolicy(failures.mtbf_s, failures.mttr_s),
            failure_seed=seeds.failure,
            on_fail=self._replica_failed,
        )
        self._heads: dict[int, HeadResult] = {}  # head results of requests not yet served
        self._tails: dict[int, Pending[TailResult]] = {}
        # each request's service class: its group's, or the head its policy chose
        self._klass: list[int] = [sim.group_class[g] for g in self.rows.group_of]
        self._policies: Policies | None = None
        self._chosen: dict[int, Head] = {}  # adaptive requests' heads, until they complete
        if any(g.heads for g in sim.groups):
            self._policies = Policies(sim, self.cost)
            splits = np.array([g.split for g in sim.groups], dtype=np.int32)
            codecs = np.array([g.codec_id for g in sim.groups], dtype=object)
            self.rows.request_split = splits[self.rows.group]
            self.rows.request_codec = codecs[self.rows.group]

    # ------------------------------------------------------------------ jobs
    def job(self, rid: int) -> HeadJob:
        g = self.sim.groups[self.rows.group_of[rid]]
        split, key = g.split, g.codec_key
        head = self._chosen.get(rid)
        if head is not None:
            split, key = head.split, head.codec_key
        model = self.sim.scenario.model
        input_id = self.rows.input_of[rid]
        return HeadJob(rid, model.name, split, key, input_id, model.seq_len, prompts=model.prompts)

    def submit(self, jobs: Sequence[HeadJob]) -> Sequence[Pending[HeadResult]]:
        return self.sim.oracle.submit_heads(jobs)

    def prefetch(self, jobs: Sequence[HeadJob]) -> None:
        if self._policies is not None:  # an adaptive request's head is chosen when it starts
            groups, group_of = self.sim.groups, self.rows.group_of
            jobs = [j for j in jobs if not groups[group_of[j.request_id]].heads]
        self.sim.oracle.prefetch(jobs)

    # ------------------------------------------------------------------ the device
    def head_started(self, rid: int) -> float:
        rows = self.rows
        g = self.sim.groups[rows.group_of[rid]]
        if not g.heads:
            return g.head_s
        assert self._policies is not None
        now = self.sim.env.now
        head, switch_s = self._policies.choose(rows.group_of[rid], rows.device_of[rid], now)
        self._chosen[rid] = head
        self._klass[rid] = head.klass
        assert rows.request_split is not None and rows.request_codec is not None
        rows.request_split[rid] = head.split
        rows.request_codec[rid] = head.codec_id
        rows.energy_j[rid] = head.head_energy_j + g.hardware.active_power_w * switch_s
        return switch_s + head.head_s

    def head_ended(self, rid: int, result: HeadResult) -> None:
        sim, rows = self.sim, self.rows
        g = sim.groups[rows.group_of[rid]]
        head = self._chosen.get(rid) if g.heads else None
        key = g.codec_key if head is None else head.codec_key
        encode_s = sim.codec_times.seconds(
            "encode", key, result.raw_bytes, result.payload_bytes, g.hardware
        )
        encode_end_s = sim.env.now + encode_s
        rows.raw_bytes[rid] = result.raw_bytes
        rows.payload_bytes[rid] = result.payload_bytes
        self._heads[rid] = result
        if head is None:
            rows.energy_j[rid] = g.head_energy_j + g.hardware.active_power_w * encode_s
        else:  # head_started charged the chosen head and any switch
            rows.energy_j[rid] += g.hardware.active_power_w * encode_s
        sim.free_device(rows.device_of[rid], encode_end_s)
        sim.send_up(rid, result.payload_bytes, encode_end_s, self._uplinked)

    def _uplinked(self, rid: int, start_s: float, _arrive_s: float) -> None:
        now = self.sim.env.now
        t = self.rows.t
        t["t_uplink_start_s"][rid] = start_s
        t["t_uplink_end_s"][rid] = now
        if rid in self._chosen:
            assert self._policies is not None
            rows = self.rows
            nbytes = float(rows.payload_bytes[rid])
            self._policies.uplinked(rows.group_of[rid], rows.device_of[rid], nbytes, start_s, now)
        pool = self.decode_pool
        if pool is None:
            self._decoded(rid)
            return
        head = self._heads[rid]
        klass = self._klass[rid]
        decode_s = self.cost.decode_s(klass, head.raw_bytes, head.payload_bytes)
        self.rows.server_decode_s[rid] += decode_s
        pool.submit(rid, decode_s)

    def _decoded(self, rid: int) -> None:
        self.rows.t["t_server_enqueue_s"][rid] = self.sim.env.now
        self._enqueue(rid)

    def _enqueue(self, rid: int) -> None:
        if not self.server.receive(rid, self._klass[rid]):
            self.sim.finish(rid, DROPPED, "queue_full")

    # ------------------------------------------------------------------ the server
    def _ifs(self, batch: list[int]) -> list[IF]:
        klass = self._klass[batch[0]]
        heads = self._heads
        return [(klass, heads[rid].raw_bytes, heads[rid].payload_bytes) for rid in batch]

    def _service_time(self, batch: list[int]) -> float:
        ifs = self._ifs(batch)
        return self.cost.batch_s(ifs[0][0], ifs)

    def _batch_started(self, replica: int, batch: list[int], service_s: float) -> None:
        rows = self.rows
        now = self.sim.env.now
        size = len(batch)
        share_s = service_s / size
        decode_share_s = 0.0
        if self.cost.decodes_on_accelerator:
            decode_share_s = self.cost.accelerator_decode_s(self._ifs(batch)) / size
        start, replicas, sizes, busy = (
            rows.t["t_server_start_s"],
            rows.replica,
            rows.batch_size,
            rows.server_busy_s,
        )
        model = self.sim.scenario.model
        g = self.cost.classes[self._klass[batch[0]]]  # a batch holds one class: split, codec
        jobs = []
        for rid in batch:  # element writes: batches are small, fancy indexing costs more
            start[rid] = now
            replicas[rid] = replica
            sizes[rid] = size
            busy[rid] += share_s  # a request cut by a replica failure keeps what it used
            rows.server_decode_s[rid] += decode_share_s
            head = self._heads[rid]  # kept until the batch ends: a failure may need it again
            jobs.append(
                TailJob(
                    rid,
                    model.name,
                    g.split,
                    g.codec_key,
                    rows.input_of[rid],
                    model.seq_len,
                    head,
                    prompts=model.prompts,
                )
            )
        for rid, future in zip(batch, self.sim.oracle.submit_tails(jobs), strict=True):
            self._tails[rid] = future

    def _batch_ended(self, replica: int, batch: list[int]) -> None:
        sim, rows = self.sim, self.rows
        end = rows.t["t_server_end_s"]
        for rid in batch:
            end[rid] = sim.env.now
            try:
                result = self._tails.pop(rid).result()
            except ComputeFailed as exc:
                sim.finish(rid, FAILED, f"tail: {exc}")
                continue
            del self._heads[rid]
            rows.agreement[rid] = result.agreement
            rows.result_bytes[rid] = result.result_bytes
            sim.send_down(rid, result.result_bytes, self._delivered, settle=True)

    def _delivered(self, rid: int, _start_s: float, arrive_s: float) -> None:
        if self._chosen.pop(rid, None) is not None:
            assert self._policies is not None
            rows, t = self.rows, self.rows.t
            wait_s = t["t_server_start_s"][rid] - t["t_uplink_end_s"][rid]
            wait_s -= rows.server_decode_s[rid]
            self._policies.responded(rows.device_of[rid], float(wait_s), arrive_s)
        self.sim.finish(rid, COMPLETED, "", arrive_s)

    def _replica_failed(
        self, replica: int, batch: list[int], ran_s: float, service_s: float, queued: list[int]
    ) -> None:
        """A replica failed: its cut batch and its queue are dropped or enqueued again."""
        rows = self.rows
        if batch:
            unused_s = (service_s - ran_s) / len(batch)
            for rid in batch:
                rows.server_busy_s[rid] -= unused_s
                del self._tails[rid]  # never collected: the oracle's work is discarded
        if not self._reroute:
            for rid in batch + queued:
                self.sim.finish(rid, DROPPED, "replica_failed")
            return
        now = self.sim.env.now
        t = rows.t
        for rid in batch + queued:
            t["t_server_start_s"][rid] = math.nan
            t["t_server_end_s"][rid] = math.nan
            rows.replica[rid] = -1
            rows.batch_size[rid] = 0
            t["t_server_enqueue_s"][rid] = now
            self._enqueue(rid)

    # ------------------------------------------------------------------ records
    def forget(self, rid: int) -> None:
        self._heads.pop(rid, None)
        self._chosen.pop(rid, None)

    def flush(self) -> None:
        pass

    def extra_columns(self, idx: np.ndarray) -> dict[str, Any]:
        return {}

    def radio_energy_j(self, idx: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Radio energy of the requests ``idx`` (of groups ``g``) over the uplink (start to
        arrival) and downlink (server end to done) transfers that happened."""
        t, rows = self.rows.t, self.rows
        up_s = _active_s(t["t_uplink_start_s"][idx], t["t_uplink_end_s"][idx])
        down_s = _active_s(t["t_server_end_s"][idx], t["t_done_s"][idx])
        sent = ~np.isnan(t["t_uplink_end_s"][idx])
        received = ~np.isnan(t["t_done_s"][idx])
        up_mbit = np.where(sent, rows.payload_bytes[idx] * 8e-6, 0.0)
        down_mbit = np.where(received, rows.result_bytes[idx] * 8e-6, 0.0)
        radios = [x.radio for x in self.sim.scenario.fleet]
        return radio_energy_j(radios, g, up_s + down_s, up_mbit, down_mbit)


def _active_s(start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Seconds from start to end, 0 where a stage was not reached (NaN)."""
    return np.nan_to_num(end_s - start_s, nan=0.0)
