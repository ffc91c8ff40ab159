"""The event loop for ``model.task: generate``: split autoregressive generation, token by token.

A request is one sequence of ``max_new_tokens`` greedy tokens after a ``seq_len``-token prompt.
Its device (one sequence at a time; later requests queue on it):

1. runs the head blocks over the prompt (prefill), encodes the prompt's IF and sends it, with
   the codec stream's set-up bytes, over its uplink;
2. the server routes the sequence to a replica (``server.continuous``: continuous batching,
   admission limited by ``max_batch`` and by KV-cache memory); its first step (the prefill)
   produces token 0, which goes down to the device;
3. for every later token the device runs the head on the previous token (its own KV cache),
   encodes that one token's IF as a stream frame and sends it; when the frame arrives the
   sequence joins the replica's next step, which produces the next token;
4. the request completes when its last token is back on the device.

What the pipeline produces comes from the oracle in one ``GenJob`` per sequence, submitted
when the prefill starts (results depend on the prompt, never on time); the loop spends its
per-step bytes as the steps happen. Durations: the device's prefill and decode steps from
``fleet.costs`` on the group's hardware; a server step is, per (split, codec) class in it, the
tail over its prefills (one batched call) plus one decode step over its sequences (weights read
once per step, each sequence's KV cache), plus the codec's decode time for every IF in it.

Routing picks a replica when a prompt arrives: ``round-robin``, ``random``, ``power-of-two``
(the less loaded of two), and ``least-loaded`` or ``shared-queue`` (the fewest admitted plus
waiting sequences; a sequence cannot move between replicas, its KV cache lives there). With
``queue_limit`` a prompt that finds that many sequences waiting on its replica is dropped
(``queue_full``).

Records: ``requests.parquet`` (``records.tables.GENERATE_REQUESTS_SCHEMA``), one
``steps.parquet`` row per token that reached its device, and per-replica windows with tokens,
the running-batch mean and KV memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fleet.costs import codec_decode_s, codec_encode_s
from fleet.sim import COMPLETED, DROPPED, Simulation, Sink
from records.tables import GENERATE_SERVERS_SCHEMA
from server.continuous import ContinuousReplica
from server.engine.jobs import ComputeFailed, GenJob, GenResult, Oracle

STEP_COLUMNS = (
    "request_id",
    "step",
    "device_id",
    "replica_id",
    "t_step_start_s",
    "t_uplink_end_s",
    "t_server_start_s",
    "t_server_end_s",
    "t_token_done_s",
    "payload_bytes",
    "batch_size",
    "server_busy_s",
)
_SERVER_ROW = ("busy_s", "steps", "admitted", "waiting_max", "tokens", "running_mean")


class GenerateSimulation(Simulation):
    """``Simulation`` with sequences instead of single passes; ``step_sink`` receives
    ``steps.parquet`` columns in chunks."""

    def __init__(
        self,
        scenario: Any,
        oracle: Oracle,
        *,
        step_sink: Sink,
        step_chunk_rows: int = 65536,
        **kwargs: Any,
    ) -> None:
        self._step_sink = step_sink
        self._step_chunk_rows = step_chunk_rows
        self._steps: dict[str, list[Any]] = {name: [] for name in STEP_COLUMNS}
        super().__init__(scenario, oracle, **kwargs)
        model = scenario.model
        self.new_tokens = model.new_tokens
        self._submit = oracle.submit_generations
        self._gens: dict[int, GenResult] = {}  # sequences under way
        self._prefetch = getattr(oracle, "prefetch_generations", None)
        n = self.n_requests
        nan = np.full(n, np.nan)
        self.tokens_done = np.zeros(n, dtype=np.int32)
        self.t_first_token = nan.copy()
        self.tokens_matching = np.full(n, -1, dtype=np.int32)
        self.up_active_s = np.zeros(n)  # seconds the radio sent or received, for its energy
        self.down_active_s = np.zeros(n)
        # the step under way per sequence: start, its input's arrival, server start, end,
        # payload bytes, batch size, busy share
        self._step_at: dict[int, list[float]] = {}

    # ------------------------------------------------------------------ set-up
    def _make_servers(self, route_ss: Any, service_ss: Any, failure_ss: Any) -> None:
        s = self.scenario
        servers = s.servers
        from models.hardware import get_hardware

        self.server_hw = get_hardware(servers.hardware)
        self.server_hw.peak(servers.dtype)
        costs = self._costs
        blocks = costs.num_blocks
        self._kv_per_token = [
            costs.kv_bytes_per_token(g.split, blocks, servers.dtype) for g in self.groups
        ]
        if servers.kv_cache_bytes is not None:
            capacity_bytes = servers.kv_cache_bytes
        else:  # the deepest tail served decides what the weights leave free
            weights = max(costs.weight_bytes(g.split, blocks, servers.dtype) for g in self.groups)
            capacity_bytes = 0.9 * self.server_hw.memory_capacity_bytes - weights
        need = max((s.model.seq_len + s.model.new_tokens) * per for per in self._kv_per_token)
        if need > capacity_bytes:
            raise ValueError(
                f"one sequence needs {need / 1e9:.3g} GB of KV cache but a "
                f"{servers.hardware} replica has {capacity_bytes / 1e9:.3g} GB for it; shorten "
                "model.seq_len or max_new_tokens, or raise servers.kv_cache_bytes"
            )
        self.kv_capacity_bytes = capacity_bytes
        classes: dict[tuple[int, str], int] = {}
        self._group_class = [
            classes.setdefault((g.split, g.codec_key), len(classes)) for g in self.groups
        ]
        self._class_split = [split for split, _ in classes]
        self._dtype = [g.dtype for g in s.fleet]
        self._route_rng = np.random.default_rng(route_ss)
        self._next_replica = 0
        self.replicas = [
            ContinuousReplica(
                self.env,
                max_batch=servers.batching.max_batch,
                kv_capacity_bytes=capacity_bytes,
                kv_bytes_per_token=self._kv_per_token[0],
                step_time=self._step_time,
                on_step=self._on_step(r),
                window_s=s.record.window_s,
            )
            for r in range(servers.replicas)
        ]

    def _stops_when_done(self) -> bool:
        return False

    def _failure_stats(self, end_s: float) -> tuple[int, float]:
        return 0, 0.0

    def _server_table(self, end_s: float) -> dict[str, list[Any]]:
        """GENERATE_SERVERS_SCHEMA columns: per replica, the windows it was active in."""
        rows: dict[str, list[Any]] = {name: [] for name in GENERATE_SERVERS_SCHEMA.names}
        for r, replica in enumerate(self.replicas):
            for row in replica.table(r, end_s):
                rows["run_id"].append(self.run_id)
                for name in ("replica_id", "window_start_s", "window_end_s", "busy_s"):
                    rows[name].append(row[name])
                rows["batches"].append(int(row["steps"]))
                rows["requests"].append(int(row["admitted"]))
                rows["dropped"].append(int(row["dropped"]))
                rows["queue_len_max"].append(int(row["waiting_max"]))
                rows["tokens"].append(int(row["tokens"]))
                rows["running_mean"].append(row["running_mean"])
                rows["kv_used_max_bytes"].append(row["kv_used_max_bytes"])
        return rows

    # ------------------------------------------------------------------ jobs
    def _gen_job(self, rid: int) -> GenJob:
        g = self.groups[self._group_of[rid]]
        model = self.scenario.model
        return GenJob(
            rid,
            model.name,
            g.split,
            g.codec_key,
            self._input_of[rid],
            model.seq_len,
            model.new_tokens,
            model.prompts,
        )

    def _prefetch_job(self, rid: int) -> GenJob:
        return self._gen_job(rid)

    # ------------------------------------------------------------------ the device
    def _start_head(self, rid: int) -> None:
        """The device starts the sequence: its prefill over the prompt."""
        dev = self._device_of[rid]
        self._busy[dev] = True
        g = self.groups[self._group_of[rid]]
        now = self.env.now
        self.t["t_head_start_s"][rid] = now
        self._step_at[rid] = [now, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0]
        self._jobs.append((rid, self._gen_job(rid)))
        self._at(now + g.head_s, self._head_ended, rid)

    def _head_ended(self, event: Any) -> None:
        rid = event.value
        if rid not in self._futures:
            self._flush_jobs()
        try:
            result: GenResult = self._futures.pop(rid).result()
        except ComputeFailed as exc:
            del self._step_at[rid]
            self._head_failed(rid, exc)
            return
        now = self.env.now
        g = self.groups[self._group_of[rid]]
        self._gens[rid] = result
        self.t["t_head_end_s"][rid] = now
        encode_s = codec_encode_s(g.codec_id, result.prompt_raw_bytes, g.hardware.name)
        self.energy_j[rid] = g.head_energy_j + g.hardware.active_power_w * encode_s
        self.raw_bytes[rid] = result.prompt_raw_bytes
        nbytes = result.prompt_payload_bytes + result.setup_bytes
        self._send_up(rid, nbytes, now + encode_s, self._prompt_arrived, first=True)

    def _device_step(self, rid: int, token: int) -> None:
        """Token ``token`` is back: the device runs the head on it and sends its IF."""
        now = self.env.now
        gi = self._group_of[rid]
        g = self.groups[gi]
        result = self._gens[rid]
        context = self.scenario.model.seq_len + token + 1
        head_s, head_j = self._costs.head_step(g.hardware, self._dtype[gi], g.split, context)
        encode_s = codec_encode_s(g.codec_id, result.step_raw_bytes, g.hardware.name)
        self.energy_j[rid] += head_j + g.hardware.active_power_w * encode_s
        self.raw_bytes[rid] += result.step_raw_bytes
        self._step_at[rid] = [now, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0]
        nbytes = result.step_payload_bytes[token]
        self._send_up(rid, nbytes, now + head_s + encode_s, self._frame_arrived)

    # ------------------------------------------------------------------ links
    def _send_up(
        self,
        rid: int,
        nbytes: int,
        at_s: float,
        arrived: Callable[[int], None],
        first: bool = False,
    ) -> None:
        """Send ``nbytes`` from ``rid``'s device from ``at_s``; ``arrived(rid)`` at arrival."""
        self.payload_bytes[rid] += nbytes
        self._step_at[rid][4] = nbytes
        gi = self._group_of[rid]
        dev = self._device_of[rid]
        cell_up = self.links.group_cell[gi][0]

        def done(start_s: float, arrive_s: float) -> None:
            self.up_active_s[rid] += arrive_s - start_s
            if first:
                self.t["t_uplink_start_s"][rid] = start_s
            arrived(rid)

        if cell_up is None:
            start_s, arrive_s = self.links.link(dev, 0).send(at_s, nbytes)
            self._at(arrive_s, lambda _e: done(start_s, arrive_s), None)
        else:
            self._at(at_s, lambda _e: cell_up.send(float(nbytes), done), None)

    def _send_down(self, rid: int, token: int, nbytes: int, at_s: float) -> None:
        gi = self._group_of[rid]
        cell_down = self.links.group_cell[gi][1]
        self.result_bytes[rid] += nbytes

        def done(start_s: float, arrive_s: float) -> None:
            self.down_active_s[rid] += arrive_s - start_s
            self._token_arrived(rid, token)

        if cell_down is None:
            start_s, arrive_s = self.links.link(self._device_of[rid], 1).send(at_s, nbytes)
            self._at(arrive_s, lambda _e: done(start_s, arrive_s), None)
        else:
            cell_down.send(float(nbytes), done)

    # ------------------------------------------------------------------ the server
    def _prompt_arrived(self, rid: int) -> None:
        now = self.env.now
        self.t["t_uplink_end_s"][rid] = now
        self.t["t_server_enqueue_s"][rid] = now
        self._step_at[rid][1] = now
        r = self._route()
        replica = self.replicas[r]
        gi = self._group_of[rid]
        model = self.scenario.model
        tokens = model.seq_len + model.new_tokens
        kv_bytes = tokens * self._kv_per_token[gi]
        limit = self.scenario.servers.queue_limit
        if limit is not None and replica.waiting >= limit and not replica.fits(kv_bytes):
            replica.refuse()
            self._end_sequence(rid)
            self._finish(rid, DROPPED, "queue_full")
            return
        self.replica[rid] = r
        replica.admit(rid, model.seq_len, model.new_tokens, self._kv_per_token[gi])

    def _frame_arrived(self, rid: int) -> None:
        self._step_at[rid][1] = self.env.now
        self.replicas[int(self.replica[rid])].ready(rid)

    def _route(self) -> int:
        routing = self.scenario.servers.routing
        n = len(self.replicas)
        if routing == "round-robin":
            r = self._next_replica
            self._next_replica = (r + 1) % n
            return r
        if routing == "random":
            return int(self._route_rng.integers(n))
        loads = [rep.running + rep.waiting for rep in self.replicas]
        if routing == "power-of-two" and n > 1:
            a, b = (int(x) for x in self._route_rng.choice(n, 2, replace=False))
            return a if (loads[a], a) <= (loads[b], b) else b
        return min(range(n), key=loads.__getitem__)

    def _step_time(self, prefills: list[tuple[int, int]], decodes: list[tuple[int, int]]) -> float:
        """One replica step: per class, the batched prefill tail and one decode step, plus
        the codec's decode of every IF in the step."""
        hw, dtype = self.server_hw, self.scenario.servers.dtype
        by_class: dict[int, tuple[list[int], list[int]]] = {}
        decode_s = 0.0
        for rid, _ in prefills:
            gi = self._group_of[rid]
            by_class.setdefault(self._group_class[gi], ([], []))[0].append(rid)
            raw = self._gens[rid].prompt_raw_bytes
            decode_s += codec_decode_s(self.groups[gi].codec_id, raw, hw.name)
        for rid, context in decodes:
            gi = self._group_of[rid]
            by_class.setdefault(self._group_class[gi], ([], []))[1].append(context)
            raw = self._gens[rid].step_raw_bytes
            decode_s += codec_decode_s(self.groups[gi].codec_id, raw, hw.name)
        tail_s = 0.0
        for c, (prefill_ids, contexts) in by_class.items():
            split = self._class_split[c]
            if prefill_ids:
                tail_s += self._costs.tail_s(hw, dtype, split, len(prefill_ids))
            if contexts:
                tail_s += self._costs.tail_step_s(hw, dtype, split, contexts)
        return decode_s / self.scenario.servers.decode_speedup + tail_s

    def _on_step(self, r: int) -> Callable[[int, list[tuple[int, int]], float, float], None]:
        def on_step(
            step: int, produced: list[tuple[int, int]], start_s: float, end_s: float
        ) -> None:
            size = len(produced)
            share_s = (end_s - start_s) / size
            for rid, token in produced:
                at = self._step_at[rid]
                at[2], at[3], at[5], at[6] = start_s, end_s, size, share_s
                self.server_busy_s[rid] += share_s
                if size > self.batch_size[rid]:
                    self.batch_size[rid] = size
                if token == 0:
                    self.t["t_server_start_s"][rid] = start_s
                if token == self.new_tokens - 1:
                    self.t["t_server_end_s"][rid] = end_s
                self._send_down(rid, token, self._gens[rid].token_bytes, end_s)

        return on_step

    def _token_arrived(self, rid: int, token: int) -> None:
        now = self.env.now
        self._step_row(rid, token, now)
        self.tokens_done[rid] += 1
        if token == 0:
            self.t_first_token[rid] = now
        if token + 1 < self.new_tokens:
            self._device_step(rid, token)
            return
        result = self._gens[rid]
        self.tokens_matching[rid] = result.tokens_matching
        self.agreement[rid] = result.agreement
        self._end_sequence(rid)
        self._finish(rid, COMPLETED, "", now)

    def _end_sequence(self, rid: int) -> None:
        """The sequence is over: its device takes its next request."""
        self._gens.pop(rid, None)
        self._step_at.pop(rid, None)
        self._free_device(self._device_of[rid], self.env.now)

    # ------------------------------------------------------------------ records
    def _step_row(self, rid: int, token: int, done_s: float) -> None:
        at = self._step_at[rid]
        rows = self._steps
        rows["request_id"].append(rid)
        rows["step"].append(token)
        rows["device_id"].append(self._device_of[rid])
        rows["replica_id"].append(int(self.replica[rid]))
        rows["t_step_start_s"].append(at[0])
        rows["t_uplink_end_s"].append(at[1])
        rows["t_server_start_s"].append(at[2])
        rows["t_server_end_s"].append(at[3])
        rows["t_token_done_s"].append(done_s)
        rows["payload_bytes"].append(int(at[4]))
        rows["batch_size"].append(int(at[5]))
        rows["server_busy_s"].append(at[6])
        if len(rows["step"]) >= self._step_chunk_rows:
            self._flush_steps()

    def _flush_steps(self) -> None:
        rows = self._steps
        if not rows["step"]:
            return
        self._step_sink({"run_id": [self.run_id] * len(rows["step"]), **rows})
        self._steps = {name: [] for name in STEP_COLUMNS}

    def _flush_rows(self) -> None:
        self._flush_steps()
        super()._flush_rows()

    def _extra_columns(self, idx: np.ndarray) -> dict[str, Any]:
        n = self.new_tokens
        done = self.status[idx] == COMPLETED
        t_done = self.t["t_done_s"][idx]
        first = self.t_first_token[idx]
        matching = self.tokens_matching[idx]
        return {
            "new_tokens": np.full(len(idx), n, dtype=np.int32),
            "tokens_done": self.tokens_done[idx],
            "ttft_s": first - self.t_arrival[idx],
            "tpot_s": (t_done - first) / (n - 1) if n > 1 else np.full(len(idx), np.nan),
            "uplink_bits_per_token": np.where(done, 8.0 * self.payload_bytes[idx] / n, np.nan),
            "server_busy_s_per_token": np.where(done, self.server_busy_s[idx] / n, np.nan),
            "tokens_matching": [int(m) if m >= 0 else None for m in matching],
        }

    def _radio_energy_j(self, idx: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Each group's radio model over the time its transfers took and their bytes."""
        radios = [x.radio for x in self.scenario.fleet]
        if all(r is None for r in radios):
            return np.zeros(len(idx))
        active_w = np.array([r.active_w if r else 0.0 for r in radios])[g]
        up_j = np.array([r.uplink_j_per_mbit if r else 0.0 for r in radios])[g]
        down_j = np.array([r.downlink_j_per_mbit if r else 0.0 for r in radios])[g]
        active_s = self.up_active_s[idx] + self.down_active_s[idx]
        up_mbit = self.payload_bytes[idx] * 8e-6
        down_mbit = self.result_bytes[idx] * 8e-6
        return active_w * active_s + up_j * up_mbit + down_j * down_mbit
