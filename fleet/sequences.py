"""``task: generate``: a request is one autoregressive sequence, token by token, through the
split.

A sequence is ``max_new_tokens`` greedy tokens after a ``seq_len``-token prompt. Its device
(one sequence at a time; later requests queue on it):

1. runs the head blocks over the prompt (prefill), encodes the prompt's IF and sends it, with
   the codec stream's set-up bytes, over its uplink;
2. the server routes the sequence to a replica and admits it
   (``server.continuous_pool.ContinuousPool``: continuous batching, admission limited by
   ``max_batch`` and by KV-cache memory); its first step (the prefill) produces token 0, which
   goes down to the device;
3. for every later token the device runs the head on the previous token (its own KV cache),
   encodes that one token's IF as a stream frame and sends it; when the frame arrives the
   sequence joins the replica's next step, which produces the next token;
4. the request completes when its last token is back on the device.

What the pipeline produces comes from the oracle in one ``GenJob`` per sequence, submitted
when the prefill starts (results depend on the prompt, never on time); the loop spends its
per-step bytes as the steps happen. Durations: the device's prefill and decode steps from
``models.durations`` on the group's hardware, its encodes from ``models.codec_time``; every IF
that reaches the servers (prompt or token) is decoded on the decode pool
(``server.decode_pool``) before its sequence is admitted or made ready, unless the accelerators
decode (``servers.decode.on: gpu``, inside the step); a server step from
``server.cost.ServerCost``.

Records: ``requests.parquet`` (``records.tables.GENERATE_REQUESTS_SCHEMA``), one
``steps.parquet`` row per token that reached its device, and per-replica windows with tokens,
the running-batch mean and KV memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleet.core import ServerSeeds, Transfer, decode_pool, server_cost
from fleet.rows import COMPLETED, DROPPED, Sink, radio_energy_j
from fleet.steps import StepRows
from server.continuous_pool import ContinuousPool, kv_budget_bytes
from server.engine.jobs import GenJob, GenResult, Pending

if TYPE_CHECKING:
    from fleet.host import Host


class Sequences:
    def __init__(
        self,
        sim: Host,
        step_sink: Sink,
        seeds: ServerSeeds,
    ) -> None:
        self.sim = sim
        self.rows = sim.rows
        s = sim.scenario
        servers = s.servers
        self.new_tokens = s.model.new_tokens
        self.cost = server_cost(
            sim.costs, sim.codec_times, servers, sim.groups, sim.group_class, seeds
        )
        self.decode_pool = decode_pool(sim.env, servers, self.cost, self._decoded)
        blocks = sim.costs.num_blocks
        kv_per_token = [
            sim.costs.kv_bytes_per_token(c.split, blocks, servers.dtype) for c in self.cost.classes
        ]
        self.server = ContinuousPool(
            sim.env,
            replicas=servers.replicas,
            routing=servers.routing,
            rng=np.random.default_rng(seeds.route),
            max_batch=servers.batching.max_batch,
            queue_limit=servers.queue_limit,
            prompt_tokens=s.model.seq_len,
            new_tokens=s.model.new_tokens,
            kv_capacity_bytes=self._kv_capacity_bytes(self.cost.hardware.memory_capacity_bytes),
            kv_bytes_per_token=kv_per_token,
            step_time=self._step_time,
            on_step=self._on_step,
            window_s=s.record.window_s,
        )
        self.steps = StepRows(sim, step_sink)
        self._gens: dict[int, GenResult] = {}  # sequences under way
        n = self.rows.n
        self.tokens_done = np.zeros(n, dtype=np.int32)
        self.t_first_token = np.full(n, np.nan)
        self.tokens_matching = np.full(n, -1, dtype=np.int32)
        self.up_active_s = np.zeros(n)  # seconds the radio sent or received, for its energy
        self.down_active_s = np.zeros(n)

    def _kv_capacity_bytes(self, memory_bytes: float) -> float:
        sim, servers = self.sim, self.sim.scenario.servers
        costs, blocks, dtype = sim.costs, sim.costs.num_blocks, servers.dtype
        weights = [costs.weight_bytes(g.split, blocks, dtype) for g in sim.groups]
        capacity_bytes = kv_budget_bytes(memory_bytes, weights, servers.kv_cache_bytes)
        model = sim.scenario.model
        per_group = [costs.kv_bytes_per_token(g.split, blocks, dtype) for g in sim.groups]
        need = max((model.seq_len + model.new_tokens) * per for per in per_group)
        if need > capacity_bytes:
            raise ValueError(
                f"one sequence needs {need / 1e9:.3g} GB of KV cache but a "
                f"{servers.hardware} replica has {capacity_bytes / 1e9:.3g} GB for it; shorten "
                "model.seq_len or max_new_tokens, or raise servers.kv_cache_bytes"
            )
        return capacity_bytes

    # ------------------------------------------------------------------ jobs
    def job(self, rid: int) -> GenJob:
        g = self.sim.groups[self.rows.group_of[rid]]
        model = self.sim.scenario.model
        return GenJob(
            rid,
            model.name,
            g.split,
            g.codec_key,
            self.rows.input_of[rid],
            model.seq_len,
            model.new_tokens,
            model.prompts,
        )

    def submit(self, jobs: Sequence[GenJob]) -> Sequence[Pending[GenResult]]:
        return self.sim.oracle.submit_generations(jobs)

    def prefetch(self, jobs: Sequence[GenJob]) -> None:
        self.sim.oracle.prefetch(jobs)

    # ------------------------------------------------------------------ the device
    def head_started(self, rid: int) -> float:
        """The device starts the sequence: its prefill over the prompt."""
        self.steps.start(rid, self.sim.env.now)
        return self.sim.groups[self.rows.group_of[rid]].head_s

    def head_ended(self, rid: int, result: GenResult) -> None:
        sim, rows = self.sim, self.rows
        g = sim.groups[rows.group_of[rid]]
        self._gens[rid] = result
        encode_s = sim.codec_times.seconds(
            "encode", g.codec_key, result.prompt_raw_bytes, result.prompt_payload_bytes, g.hardware
        )
        rows.energy_j[rid] = g.head_energy_j + g.hardware.active_power_w * encode_s
        rows.raw_bytes[rid] = result.prompt_raw_bytes
        nbytes = result.prompt_payload_bytes + result.setup_bytes
        self._send_up(rid, nbytes, sim.env.now + encode_s, self._prompt_sent)

    def _device_step(self, rid: int, token: int) -> None:
        """Token ``token`` is back: the device runs the head on it and sends its IF."""
        sim, rows = self.sim, self.rows
        now = sim.env.now
        g = sim.groups[rows.group_of[rid]]
        result = self._gens[rid]
        context = sim.scenario.model.seq_len + token + 1
        head_s, head_j = sim.costs.head_step(g.hardware, g.dtype, g.split, context)
        nbytes = result.step_payload_bytes[token]
        raw_bytes = result.step_raw_bytes
        encode_s = sim.codec_times.seconds(
            "encode", g.codec_key, raw_bytes, nbytes, g.hardware, frame=True
        )
        rows.energy_j[rid] += head_j + g.hardware.active_power_w * encode_s
        rows.raw_bytes[rid] += result.step_raw_bytes
        self.steps.start(rid, now)
        self._send_up(rid, nbytes, now + head_s + encode_s, self._frame_sent)

    def _send_up(self, rid: int, nbytes: int, at_s: float, done: Transfer) -> None:
        self.rows.payload_bytes[rid] += nbytes
        self.steps.sent(rid, nbytes)
        self.sim.send_up(rid, nbytes, at_s, done)

    def _prompt_sent(self, rid: int, start_s: float, arrive_s: float) -> None:
        self.up_active_s[rid] += arrive_s - start_s
        self.rows.t["t_uplink_start_s"][rid] = start_s
        self._prompt_arrived(rid)

    def _frame_sent(self, rid: int, start_s: float, arrive_s: float) -> None:
        self.up_active_s[rid] += arrive_s - start_s
        self._frame_arrived(rid)

    # ------------------------------------------------------------------ the server
    def _prompt_arrived(self, rid: int) -> None:
        now = self.sim.env.now
        self.rows.t["t_uplink_end_s"][rid] = now
        self.steps.arrived(rid, now)
        result = self._gens[rid]
        self._decode(rid, result.prompt_raw_bytes, result.prompt_payload_bytes, frame=False)

    def _frame_arrived(self, rid: int) -> None:
        self.steps.arrived(rid, self.sim.env.now)
        result = self._gens[rid]
        token = int(self.tokens_done[rid]) - 1  # the frame of the token last delivered
        self._decode(rid, result.step_raw_bytes, result.step_payload_bytes[token], frame=True)

    def _decode(self, rid: int, raw_bytes: float, payload_bytes: float, *, frame: bool) -> None:
        """An IF of sequence ``rid`` arrived (the prompt's container or a step ``frame``):
        decode it on the pool, or hand it on."""
        pool = self.decode_pool
        if pool is None:
            self._decoded(rid)
            return
        klass = self.sim.group_class[self.rows.group_of[rid]]
        decode_s = self.cost.decode_s(klass, raw_bytes, payload_bytes, frame=frame)
        self.rows.server_decode_s[rid] += decode_s
        pool.submit(rid, decode_s)

    def _decoded(self, rid: int) -> None:
        """The IF is decoded: a prompt's sequence is admitted, a token's made ready."""
        klass = self.sim.group_class[self.rows.group_of[rid]]
        if self.tokens_done[rid] > 0:
            self.server.receive(rid, klass)
            return
        self.rows.t["t_server_enqueue_s"][rid] = self.sim.env.now
        if not self.server.receive(rid, klass):
            self._end_sequence(rid)
            self.sim.finish(rid, DROPPED, "queue_full")
            return
        self.rows.replica[rid] = self.server.replica_of(rid)

    def _step_time(self, prefills: list[tuple[int, int]], decodes: list[tuple[int, int]]) -> float:
        """One replica step (``server.cost.ServerCost.step_s``) over the IFs in it."""
        klass, group_of, gens = self.sim.group_class, self.rows.group_of, self._gens
        done = self.tokens_done
        prompt_ifs = [
            (klass[group_of[rid]], gens[rid].prompt_raw_bytes, gens[rid].prompt_payload_bytes)
            for rid, _ in prefills
        ]
        token_ifs = [
            (klass[group_of[rid]], gens[rid].step_raw_bytes, gens[rid].step_payload_bytes[t - 1])
            for rid, t in ((rid, done[rid]) for rid, _ in decodes)
        ]
        if self.cost.decodes_on_accelerator:  # each sequence's share of the step's decode
            share_s = self.cost.accelerator_decode_s([*prompt_ifs, *token_ifs])
            share_s /= len(prefills) + len(decodes)
            for rid, _ in [*prefills, *decodes]:
                self.rows.server_decode_s[rid] += share_s
        contexts = [ctx for _, ctx in decodes]
        return self.cost.step_s(prompt_ifs, list(zip(token_ifs, contexts, strict=True)))

    def _on_step(self, r: int) -> Callable[[int, list[tuple[int, int]], float, float], None]:
        def on_step(
            step: int, produced: list[tuple[int, int]], start_s: float, end_s: float
        ) -> None:
            rows = self.rows
            size = len(produced)
            share_s = (end_s - start_s) / size
            for rid, token in produced:
                self.steps.served(rid, start_s, end_s, size, share_s)
                rows.server_busy_s[rid] += share_s
                if size > rows.batch_size[rid]:
                    rows.batch_size[rid] = size
                if token == 0:
                    rows.t["t_server_start_s"][rid] = start_s
                if token == self.new_tokens - 1:
                    rows.t["t_server_end_s"][rid] = end_s
                self._send_down(rid, self._gens[rid].token_bytes)

        return on_step

    def _send_down(self, rid: int, nbytes: int) -> None:
        """Send a token down; one token per sequence is in flight at a time, so its index is
        the number of tokens already back."""
        self.rows.result_bytes[rid] += nbytes
        self.sim.send_down(rid, nbytes, self._token_sent)

    def _token_sent(self, rid: int, start_s: float, arrive_s: float) -> None:
        self.down_active_s[rid] += arrive_s - start_s
        self._token_arrived(rid, int(self.tokens_done[rid]))

    def _token_arrived(self, rid: int, token: int) -> None:
        now = self.sim.env.now
        self.steps.done(rid, token, now)
        self.tokens_done[rid] += 1
        if token == 0:
            self.t_first_token[rid] = now
        if token + 1 < self.new_tokens:
            self._device_step(rid, token)
            return
        result = self._gens[rid]
        self.tokens_matching[rid] = result.tokens_matching
        self.rows.agreement[rid] = result.agreement
        self._end_sequence(rid)
        self.sim.finish(rid, COMPLETED, "", now)

    def _end_sequence(self, rid: int) -> None:
        """The sequence is over: its device takes its next request."""
        self.forget(rid)
        self.server.done(rid)
        self.sim.free_device(self.rows.device_of[rid], self.sim.env.now)

    # ------------------------------------------------------------------ records
    def forget(self, rid: int) -> None:
        self._gens.pop(rid, None)
        self.steps.forget(rid)

    def flush(self) -> None:
        self.steps.flush()

    def extra_columns(self, idx: np.ndarray) -> dict[str, Any]:
        rows, n = self.rows, self.new_tokens
        done = rows.status[idx] == COMPLETED
        t_done = rows.t["t_done_s"][idx]
        first = self.t_first_token[idx]
        matching = self.tokens_matching[idx]
        return {
            "new_tokens": np.full(len(idx), n, dtype=np.int32),
            "tokens_done": self.tokens_done[idx],
            "ttft_s": first - rows.t_arrival[idx],
            "tpot_s": (t_done - first) / (n - 1) if n > 1 else np.full(len(idx), np.nan),
            "uplink_bits_per_token": np.where(done, 8.0 * rows.payload_bytes[idx] / n, np.nan),
            "server_busy_s_per_token": np.where(done, rows.server_busy_s[idx] / n, np.nan),
            "tokens_matching": [int(m) if m >= 0 else None for m in matching],
        }

    def radio_energy_j(self, idx: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Each group's radio model over the time its transfers took and their bytes."""
        rows = self.rows
        active_s = self.up_active_s[idx] + self.down_active_s[idx]
        up_mbit = rows.payload_bytes[idx] * 8e-6
        down_mbit = rows.result_bytes[idx] * 8e-6
        radios = [x.radio for x in self.sim.scenario.fleet]
        return radio_energy_j(radios, g, active_s, up_mbit, down_mbit)
