"""The Ray oracle: real heads on device-shard actors, real tails on server-worker actors.

Devices and replicas are rows of state in the simulator, never actors: a handful of
``DeviceShard`` actors (default one per CPU, at most 8) run every head and a few
``ServerWorker`` actors every tail. A job goes to the actor its memo key hashes to, so an
actor's own memo sees every repeat of that key; the jobs one ``submit_*`` call sends to one
actor travel in one Ray call. A head call returns two objects: the small metadata, which the
driver fetches, and the payloads, which go by object ref straight to the server worker that
runs the tail. On a cluster without GPUs, unless ``ray.server_workers`` is set, one pool of
``ComputeActor``s plays both roles (one model copy per actor; a tail runs where its payload
was made), which keeps every CPU busy whatever the split point.

``prefetch`` takes the jobs of requests the simulation has not reached yet and submits their
heads and tails in small calls, so the actors work ahead of simulated time.

Generation jobs (``task: generate``) run on the device-shard (or compute) pool, one whole
sequence per job, batched per actor like heads, memoised in the driver by (model, split,
codec, reduced input id, prompt_tokens, new_tokens, prompts); ``prefetch_generations`` works
ahead like ``prefetch``. The input count at a ``prompt_tokens`` or ``prompts`` text not given at
construction is asked of an actor once. Results equal ``LocalOracle``'s: the actors host one.

The memo here (keyed by model, split, codec, reduced input id, seq_len, step and prompts, as
``server.engine.local`` keys them) answers a
repeated job without any Ray call; ``stats()`` counts calls, memo hits and Ray calls. A call
whose actor dies is resubmitted by Ray after the actor restarts (``max_restarts``,
``max_task_retries``); when the retries run out the job's ``result()`` raises
``ComputeFailed`` and the simulator records the request as failed. The futures themselves
(fetch a call's results once, record them in the memo) are in ``fleet.compute.ray_pending``.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from fleet.compute import cluster
from fleet.compute.ray_pending import GenPending, HeadPending, Placeholder, TailPending
from fleet.compute.shards import ComputeActor, DeviceShard
from scenarios.schema import RaySpec
from server.engine.jobs import (
    DEFAULT_PROMPTS,
    ComputeFailed,
    Done,
    GenJob,
    GenResult,
    HeadJob,
    HeadResult,
    OracleError,
    Pending,
    TailJob,
    TailResult,
)
from server.engine.local import Key, profile_rows
from server.engine.local_gen import GenKey, generation_rows
from server.engine.workers import ServerWorker

T = TypeVar("T")
ACTOR_CPUS = 0.5
PREFETCH_CHUNK = 8  # jobs per prefetch call
_NO_HEAD = HeadResult(0, 0)  # a prefetched tail's head: workers read only the payload ref


class RayOracle:
    def __init__(self, spec: RaySpec, models: Sequence[tuple[str, int]]) -> None:
        """Start or join Ray and build the actor pools; ``models`` are the (name, seq_len)
        pairs the run will ask for (used to reduce input ids in the memo). Their inputs are
        loaded now for the default ``prompts`` text; another text is looked up on first use."""
        import ray

        cluster.connect(spec.address)
        options = {
            "max_restarts": spec.max_restarts,
            "max_task_retries": spec.max_task_retries,
            # half a CPU each: the pools must fit beside each other and the driver on a
            # 2-core laptop; Ray does not pin CPUs, so the figure only bounds placement
            "num_cpus": ACTOR_CPUS,
            "scheduling_strategy": "SPREAD",
        }
        shards = spec.device_shards or cluster.default_shards()
        # Without GPUs and without an explicit server pool, one pool of compute actors plays
        # both roles: one model copy per actor instead of two, payloads stay where they were
        # made, and no CPU idles while the other role has work.
        self.unified = spec.server_workers is None and cluster.gpus() == 0
        if self.unified:
            self.shards = [
                ray.remote(ComputeActor).options(**options).remote() for _ in range(shards)
            ]
            self.workers = self.shards
        else:
            self.shards = [
                ray.remote(DeviceShard).options(**options).remote() for _ in range(shards)
            ]
            self.workers = [
                ray.remote(ServerWorker).options(**options).remote()
                for _ in range(spec.server_workers or 1)
            ]
        # every actor loads the models now (start-up), not inside the first timed jobs
        # (model, seq_len, prompts) -> (distinct inputs, the seq_len and prompts keys carry)
        self._inputs: dict[tuple[str, int, str], tuple[int, int, str]] = {}
        self._named = {(name, seq_len) for name, seq_len in models}
        for name, seq_len in models:
            warm = [] if self.unified else [w.warm.remote(name, seq_len) for w in self.workers]
            found = ray.get([s.inputs.remote(name, seq_len) for s in self.shards])
            ray.get(warm)
            self._inputs[(name, seq_len, DEFAULT_PROMPTS)] = found[0]
        self._heads: dict[Key, Pending[HeadResult]] = {}
        self._head_done: dict[Key, tuple[HeadResult, float]] = {}
        self._payload_at: dict[Key, tuple[Any, int]] = {}  # payload list ref, index in it
        self._tails: dict[Key, Pending[TailResult]] = {}
        self._tail_done: dict[Key, tuple[TailResult, float]] = {}
        self._fetched: dict[Any, list[Any]] = {}  # a call's result list, until all collected
        self._consumers: dict[Any, int] = {}  # how many jobs of a call are not collected yet
        self._counts = {
            "head_calls": 0,
            "head_memo_hits": 0,
            "tail_calls": 0,
            "tail_memo_hits": 0,
            "ray_calls": 0,
        }
        self._gens: dict[GenKey, Pending[GenResult]] = {}
        self._gen_done: dict[GenKey, tuple[GenResult, float]] = {}
        self._gen_failed: dict[GenKey, str] = {}
        self._gen_counts = {"gen_calls": 0, "gen_memo_hits": 0}

    # -- the Oracle protocol ------------------------------------------------------------------
    def submit_heads(self, jobs: Sequence[HeadJob]) -> list[Pending[HeadResult]]:
        return self._submit_heads(jobs, count=True)

    def submit_tails(self, jobs: Sequence[TailJob]) -> list[Pending[TailResult]]:
        return self._submit_tails(jobs, count=True)

    def prefetch(self, jobs: Sequence[HeadJob]) -> None:
        """Start the heads of requests the simulation will reach later, and their tails on
        the payloads as soon as those exist: results depend on inputs, never on time, so the
        actors work ahead while the loop waits. Not counted as calls; a later submission of
        the same job is a memo hit. A request dropped before its tail wastes its tail."""
        for first in range(0, len(jobs), PREFETCH_CHUNK):
            chunk = jobs[first : first + PREFETCH_CHUNK]  # small calls: tails start early
            self._submit_heads(chunk, count=False)
            tails = [
                TailJob(
                    j.request_id,
                    j.model,
                    j.split,
                    j.codec,
                    j.input_id,
                    j.seq_len,
                    _NO_HEAD,
                    j.step,
                    j.prompts,
                )
                for j in chunk
            ]
            self._submit_tails(tails, count=False)

    def _submit_heads(self, jobs: Sequence[HeadJob], *, count: bool) -> list[Pending[HeadResult]]:
        out: list[Pending[HeadResult] | None] = []
        batches: dict[int, list[tuple[int, Key, HeadJob]]] = defaultdict(list)
        for i, job in enumerate(jobs):
            key = self._key(job)
            self._counts["head_calls"] += count
            if key in self._heads:
                self._counts["head_memo_hits"] += count
                out.append(self._heads[key])
                continue
            out.append(None)
            self._heads[key] = Placeholder()  # same key twice in one call: one job
            batches[_actor(key, len(self.shards))].append((i, key, job))
        for shard, batch in batches.items():
            meta_ref, payload_ref = (
                self.shards[shard].heads.options(num_returns=2).remote([j for _, _, j in batch])
            )
            self._counts["ray_calls"] += 1
            self._consumers[meta_ref] = len(batch)
            for index, (i, key, _) in enumerate(batch):
                pending = HeadPending(self, key, meta_ref, index)
                self._heads[key] = pending
                if not self.unified:  # unified actors keep their payloads; let the refs go
                    self._payload_at[key] = (payload_ref, index)
                out[i] = pending
        return _filled(out)

    def _submit_tails(self, jobs: Sequence[TailJob], *, count: bool) -> list[Pending[TailResult]]:
        out: list[Pending[TailResult] | None] = []
        batches: dict[int, list[tuple[int, Key, TailJob]]] = defaultdict(list)
        for i, job in enumerate(jobs):
            key = self._key(job)
            self._counts["tail_calls"] += count
            if key in self._tails:
                self._counts["tail_memo_hits"] += count
                out.append(self._tails[key])
                continue
            out.append(None)
            self._tails[key] = Placeholder()
            batches[_actor(key, len(self.workers))].append((i, key, job))
        for worker, batch in batches.items():
            bare = [_without_payload(j) for _, _, j in batch]
            if self.unified:  # the actor that made the payloads runs the tails on them
                ref = self.workers[worker].tails.remote(bare)
            else:
                sources: list[Any] = []
                where: dict[Any, int] = {}
                picks = []
                for _, key, _ in batch:
                    payload_ref, index = self._payload_at[key]
                    if payload_ref not in where:
                        where[payload_ref] = len(sources)
                        sources.append(payload_ref)
                    picks.append((where[payload_ref], index))
                ref = self.workers[worker].tails.remote(bare, sources, picks)
            self._counts["ray_calls"] += 1
            self._consumers[ref] = len(batch)
            for index, (i, key, _) in enumerate(batch):
                pending = TailPending(self, key, ref, index)
                self._tails[key] = pending
                out[i] = pending
        return _filled(out)

    def submit_generations(self, jobs: Sequence[GenJob]) -> list[Pending[GenResult]]:
        return self._submit_generations(jobs, count=True)

    def prefetch_generations(self, jobs: Sequence[GenJob]) -> None:
        """Start the sequences of requests the simulation will reach later, in small calls;
        not counted as calls, and a later submission of the same job is a memo hit."""
        for first in range(0, len(jobs), PREFETCH_CHUNK):
            self._submit_generations(jobs[first : first + PREFETCH_CHUNK], count=False)

    def _submit_generations(
        self, jobs: Sequence[GenJob], *, count: bool
    ) -> list[Pending[GenResult]]:
        out: list[Pending[GenResult] | None] = []
        batches: dict[int, list[tuple[int, GenKey, GenJob]]] = defaultdict(list)
        for i, job in enumerate(jobs):
            key = self._gen_key(job)
            self._gen_counts["gen_calls"] += count
            if key in self._gens:
                self._gen_counts["gen_memo_hits"] += count
                out.append(self._gens[key])
                continue
            out.append(None)
            self._gens[key] = Placeholder()  # same key twice in one call: one job
            batches[_actor(key, len(self.shards))].append((i, key, job))
        for shard, batch in batches.items():
            ref = self.shards[shard].generations.remote([j for _, _, j in batch])
            self._counts["ray_calls"] += 1
            self._consumers[ref] = len(batch)
            for index, (i, key, _) in enumerate(batch):
                pending = GenPending(self, key, ref, index)
                self._gens[key] = pending
                out[i] = pending
        return _filled(out)

    def stats(self) -> dict[str, int]:
        """Calls, memo hits and Ray calls; ``gen_*`` once a generation job was submitted."""
        gens = self._gen_counts if self._gen_counts["gen_calls"] else {}
        return {**self._counts, **gens}

    def close(self) -> None:
        import ray

        for actor in {id(a): a for a in [*self.shards, *self.workers]}.values():
            ray.kill(actor)
        self.shards, self.workers = [], []

    # -- the replay profile -------------------------------------------------------------------
    def profile_rows(self) -> dict[str, list[Any]]:
        """PROFILE_SCHEMA columns for every key whose head and tail results were collected."""
        return profile_rows(self._head_done, self._tail_done)

    def generation_rows(self) -> dict[str, list[Any]]:
        """GENERATIONS_SCHEMA columns for every sequence whose result was collected."""
        return generation_rows(self._gen_done)

    def where(self) -> list[tuple[str, str, int]]:
        """(role, Ray node id, pid) of every actor: where the pools were placed."""
        import ray

        if self.unified:
            refs = [a.where.remote() for a in self.shards]
            roles = ["compute"] * len(self.shards)
        else:
            refs = [a.where.remote() for a in [*self.shards, *self.workers]]
            roles = ["device-shard"] * len(self.shards) + ["server-worker"] * len(self.workers)
        return [(r, node, pid) for r, (node, pid) in zip(roles, ray.get(refs), strict=True)]

    # -- internals ----------------------------------------------------------------------------
    def _key(self, job: HeadJob | TailJob) -> Key:
        if (job.model, job.seq_len) not in self._named:
            raise OracleError(
                f"RayOracle was not told about model {job.model!r} at seq_len {job.seq_len}; "
                "pass it in `models` when building the oracle"
            )
        count, seq_len, prompts = self._input_count(job.model, job.seq_len, job)
        reduced = job.input_id % count
        return (job.model, job.split, job.codec, reduced, seq_len, job.step, prompts)

    def _gen_key(self, job: GenJob) -> GenKey:
        count, _, prompts = self._input_count(job.model, job.prompt_tokens, job)
        lengths = (job.prompt_tokens, job.new_tokens)
        return (job.model, job.split, job.codec, job.input_id % count, *lengths, prompts)

    def _input_count(
        self, model: str, seq_len: int, job: HeadJob | TailJob | GenJob
    ) -> tuple[int, int, str]:
        """(distinct inputs, the seq_len and prompts keys carry) for ``model`` at ``seq_len``
        in ``job.prompts``; asked of an actor once where not known from construction."""
        lengths = (model, seq_len, job.prompts)
        if lengths not in self._inputs:
            import ray

            try:
                found = ray.get(self.shards[0].inputs.remote(*lengths))
            except ray.exceptions.RayError as exc:  # a task error carries the actor's own
                cause = getattr(exc, "cause", None) or exc
                raise OracleError(f"request {job.request_id}: {_first_line(cause)}") from exc
            self._inputs[lengths] = found
        return self._inputs[lengths]

    def _fetch(self, ref: Any, index: int) -> Any:
        """Item ``index`` of a call's result list, fetching the list once for all its jobs."""
        import ray

        values = self._fetched.get(ref)
        if values is None:
            try:
                values = self._fetched[ref] = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise ComputeFailed(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        self._consumers[ref] -= 1
        if not self._consumers[ref]:
            del self._fetched[ref], self._consumers[ref]
        return values[index]

    def _collected_head(self, key: Key, meta: tuple[int, int, float] | str) -> HeadResult:
        if isinstance(meta, str):
            raise ComputeFailed(meta)
        result = HeadResult(meta[0], meta[1])
        self._head_done[key] = (result, meta[2])
        self._heads[key] = Done(result)
        return result

    def _collected_tail(self, key: Key, meta: tuple[float, int, float] | str) -> TailResult:
        if isinstance(meta, str):
            raise ComputeFailed(meta)
        result = TailResult(meta[0], meta[1])
        self._tail_done[key] = (result, meta[2])
        self._tails[key] = Done(result)
        return result

    def _collected_gen(self, key: GenKey, meta: tuple[GenResult, float] | str) -> GenResult:
        if isinstance(meta, str):
            self._gen_failed[key] = meta
            raise ComputeFailed(meta)
        self._gen_done[key] = meta
        self._gens[key] = Done(meta[0])
        return meta[0]


def _actor(key: Key, actors: int) -> int:
    """The actor a key goes to: a stable hash, the same in every process and run."""
    return zlib.crc32(repr(key).encode()) % actors


def _without_payload(job: TailJob) -> TailJob:
    head = HeadResult(job.head.raw_bytes, job.head.payload_bytes, None, job.head.row)
    return TailJob(
        job.request_id,
        job.model,
        job.split,
        job.codec,
        job.input_id,
        job.seq_len,
        head,
        job.step,
        job.prompts,
    )


def _filled(out: list[T | None]) -> list[T]:
    assert all(p is not None for p in out)
    return [p for p in out if p is not None]


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
