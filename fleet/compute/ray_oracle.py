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
heads and tails (or whole generations) in small calls, so the actors work ahead of simulated
time.

Generation jobs (``task: generate``) run on the device-shard (or compute) pool, one whole
sequence per job, batched per actor like heads, memoised in the driver by (model, split,
codec, reduced input id, prompt_tokens, new_tokens, prompts). The input count at a
``prompt_tokens`` or ``prompts`` text not given at construction is asked of an actor once.
Results equal ``LocalOracle``'s: the actors host one.

The memo here (keyed by model, split, codec, reduced input id, seq_len, step and prompts, as
``server.engine.local`` keys them) answers a repeated job without any Ray call; ``stats()``
counts calls, memo hits and Ray calls. Heads, tails and generations go through one
memo-and-batch path (``fleet.compute.ray_memo``); this module gives it each kind's key, its Ray
call and how an actor's item becomes a result. A call whose actor dies is resubmitted by Ray
after the actor restarts (``max_restarts``, ``max_task_retries``); when the retries run out the
job's ``result()`` raises ``ComputeFailed`` and the simulator records the request as failed.
The futures (a call's results fetched once for all its jobs) are in ``fleet.compute.ray_pending``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fleet.compute import cluster
from fleet.compute.ray_memo import RayMemo
from fleet.compute.ray_pending import CallResults, first_line
from fleet.compute.shards import ComputeActor, DeviceShard
from scenarios.schema import RaySpec
from server.engine.jobs import (
    DEFAULT_PROMPTS,
    GenJob,
    GenResult,
    HeadJob,
    HeadResult,
    InferJob,
    OracleError,
    Pending,
    TailJob,
    TailResult,
)
from server.engine.local import Key, profile_rows
from server.engine.local_gen import GenKey, generation_rows
from server.engine.workers import ServerWorker

ACTOR_CPUS = 0.5
PREFETCH_CHUNK = 8  # jobs per prefetch call
_NO_HEAD = HeadResult(0, 0)  # a prefetched tail's head: workers read only the payload ref
# what ``stats()`` reports, in this order; ``gen_*`` once a generation job was submitted
_COUNTERS = ("head_calls", "head_memo_hits", "tail_calls", "tail_memo_hits", "ray_calls")
_GEN_COUNTERS = ("gen_calls", "gen_memo_hits")


class RayOracle:
    def __init__(self, spec: RaySpec, models: Sequence[tuple[str, int]]) -> None:
        """Start or join Ray and build the actor pools; ``models`` are the (name, seq_len)
        pairs the run will ask for (used to reduce input ids in the memo). Their inputs are
        loaded now for the default ``prompts`` text; another text is looked up on first use."""
        cluster.connect(spec.address)
        # Without GPUs and without an explicit server pool, one pool of compute actors plays
        # both roles: one model copy per actor instead of two, payloads stay where they were
        # made, and no CPU idles while the other role has work.
        self.unified = spec.server_workers is None and cluster.gpus() == 0
        self.shards, self.workers = _pools(spec, self.unified)
        # (model, seq_len, prompts) -> (distinct inputs, the seq_len and prompts keys carry)
        self._inputs: dict[tuple[str, int, str], tuple[int, int, str]] = {}
        self._named = {(name, seq_len) for name, seq_len in models}
        self._warm(models)
        self._payload_at: dict[Key, tuple[Any, int]] = {}  # payload list ref, index in it
        self._counts = dict.fromkeys((*_COUNTERS, *_GEN_COUNTERS), 0)
        calls = CallResults()
        self._heads: RayMemo[HeadJob, Key, HeadResult] = RayMemo(
            "head",
            self._counts,
            calls,
            key=self._key,
            actors=len(self.shards),
            send=self._send_heads,
            build=_head_result,
        )
        self._tails: RayMemo[TailJob, Key, TailResult] = RayMemo(
            "tail",
            self._counts,
            calls,
            key=self._key,
            actors=len(self.workers),
            send=self._send_tails,
            build=_tail_result,
        )
        self._gens: RayMemo[GenJob, GenKey, GenResult] = RayMemo(
            "gen",
            self._counts,
            calls,
            key=self._gen_key,
            actors=len(self.shards),
            send=self._send_generations,
            build=_gen_result,
        )

    # -- the Oracle protocol ------------------------------------------------------------------
    def submit_heads(self, jobs: Sequence[HeadJob]) -> list[Pending[HeadResult]]:
        return self._heads.submit(jobs, count=True)

    def submit_tails(self, jobs: Sequence[TailJob]) -> list[Pending[TailResult]]:
        return self._tails.submit(jobs, count=True)

    def submit_generations(self, jobs: Sequence[GenJob]) -> list[Pending[GenResult]]:
        return self._gens.submit(jobs, count=True)

    works_ahead = True  # device-shard and server-worker actors compute ahead of the loop

    def prefetch(self, jobs: Sequence[HeadJob | GenJob]) -> None:
        """Start the heads of requests the simulation will reach later, and their tails on
        the payloads as soon as those exist, or their whole generations, in small calls:
        results depend on inputs, never on time, so the actors work ahead while the loop
        waits. Not counted as calls; a later submission of the same job is a memo hit. A
        request dropped before its tail wastes its tail."""
        heads = [job for job in jobs if not isinstance(job, GenJob)]
        gens = [job for job in jobs if isinstance(job, GenJob)]
        for first in range(0, len(heads), PREFETCH_CHUNK):
            chunk = heads[first : first + PREFETCH_CHUNK]  # small calls: tails start early
            self._heads.submit(chunk, count=False)
            self._tails.submit([TailJob.after(job, _NO_HEAD) for job in chunk], count=False)
        for first in range(0, len(gens), PREFETCH_CHUNK):
            self._gens.submit(gens[first : first + PREFETCH_CHUNK], count=False)

    def stats(self) -> dict[str, int]:
        """Calls, memo hits and Ray calls; ``gen_*`` once a generation job was submitted."""
        gens = self._counts["gen_calls"] > 0
        return {k: v for k, v in self._counts.items() if gens or k not in _GEN_COUNTERS}

    def close(self) -> None:
        import ray

        for actor in {id(a): a for a in [*self.shards, *self.workers]}.values():
            ray.kill(actor)
        self.shards, self.workers = [], []

    # -- the replay profile -------------------------------------------------------------------
    def profile_rows(self) -> dict[str, list[Any]]:
        """PROFILE_SCHEMA columns for every key whose head and tail results were collected."""
        return profile_rows(self._heads.done, self._tails.done)

    def generation_rows(self) -> dict[str, list[Any]]:
        """GENERATIONS_SCHEMA columns for every sequence whose result was collected."""
        return generation_rows(self._gens.done)

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

    # -- each kind's Ray call -----------------------------------------------------------------
    def _send_heads(self, shard: int, batch: list[tuple[Key, HeadJob]]) -> Any:
        """One heads call; its metadata list comes back to the driver, the payload list stays
        in the object store for the tails (unified actors keep their payloads: no ref)."""
        jobs = [job for _, job in batch]
        meta_ref, payload_ref = self.shards[shard].heads.options(num_returns=2).remote(jobs)
        if not self.unified:
            for index, (key, _) in enumerate(batch):
                self._payload_at[key] = (payload_ref, index)
        return meta_ref

    def _send_tails(self, worker: int, batch: list[tuple[Key, TailJob]]) -> Any:
        """One tails call: jobs without their payloads, which travel by ref from the shards'
        payload lists (or are already on the unified actor that made them)."""
        bare = [replace(job, head=replace(job.head, payload=None)) for _, job in batch]
        if self.unified:  # the actor that made the payloads runs the tails on them
            return self.workers[worker].tails.remote(bare)
        sources: list[Any] = []
        where: dict[Any, int] = {}
        picks = []
        for key, _ in batch:
            payload_ref, index = self._payload_at[key]
            if payload_ref not in where:
                where[payload_ref] = len(sources)
                sources.append(payload_ref)
            picks.append((where[payload_ref], index))
        return self.workers[worker].tails.remote(bare, sources, picks)

    def _send_generations(self, shard: int, batch: list[tuple[GenKey, GenJob]]) -> Any:
        return self.shards[shard].generations.remote([job for _, job in batch])

    # -- internals ----------------------------------------------------------------------------
    def _warm(self, models: Sequence[tuple[str, int]]) -> None:
        """Every actor loads the models now (start-up), not inside the first timed jobs."""
        import ray

        for name, seq_len in models:
            warm = [] if self.unified else [w.warm.remote(name, seq_len) for w in self.workers]
            found = ray.get([s.inputs.remote(name, seq_len) for s in self.shards])
            ray.get(warm)
            self._inputs[(name, seq_len, DEFAULT_PROMPTS)] = found[0]

    def _key(self, job: InferJob) -> Key:
        if (job.model, job.seq_len) not in self._named:
            raise OracleError(
                f"RayOracle was not told about model {job.model!r} at seq_len {job.seq_len}; "
                "pass it in `models` when building the oracle"
            )
        count, seq_len, prompts = self._input_count(job)
        reduced = job.input_id % count
        return (job.model, job.split, job.codec, reduced, seq_len, job.step, prompts)

    def _gen_key(self, job: GenJob) -> GenKey:
        count, _, prompts = self._input_count(job)
        lengths = (job.prompt_tokens, job.new_tokens)
        return (job.model, job.split, job.codec, job.input_id % count, *lengths, prompts)

    def _input_count(self, job: InferJob | GenJob) -> tuple[int, int, str]:
        """(distinct inputs, the seq_len and prompts keys carry) for the job's model at its
        ``seq_len`` (a generation's prompt) in its ``prompts`` text; asked of an actor once
        where not known from construction."""
        lengths = (job.model, job.seq_len, job.prompts)
        if lengths not in self._inputs:
            import ray

            try:
                found = ray.get(self.shards[0].inputs.remote(*lengths))
            except ray.exceptions.RayError as exc:  # a task error carries the actor's own
                cause = getattr(exc, "cause", None) or exc
                raise OracleError(f"request {job.request_id}: {first_line(cause)}") from exc
            self._inputs[lengths] = found
        return self._inputs[lengths]


def _pools(spec: RaySpec, unified: bool) -> tuple[list[Any], list[Any]]:
    """(device-shard actors, server-worker actors): one pool of compute actors in both roles
    when ``unified``."""
    import ray

    options = {
        "max_restarts": spec.max_restarts,
        "max_task_retries": spec.max_task_retries,
        # half a CPU each: the pools must fit beside each other and the driver on a
        # 2-core laptop; Ray does not pin CPUs, so the figure only bounds placement
        "num_cpus": ACTOR_CPUS,
        "scheduling_strategy": "SPREAD",
    }
    shards = spec.device_shards or cluster.default_shards()
    if unified:
        pool = [ray.remote(ComputeActor).options(**options).remote() for _ in range(shards)]
        return pool, pool
    workers = spec.server_workers or 1
    # a cluster with GPUs: the server workers share them (tails, decode and references run
    # there; see server.engine.workers); without, they take the CPU like the shards
    gpus = cluster.gpus()
    worker_options = {**options, "num_gpus": min(1.0, gpus / workers)} if gpus else options
    return (
        [ray.remote(DeviceShard).options(**options).remote() for _ in range(shards)],
        [ray.remote(ServerWorker).options(**worker_options).remote() for _ in range(workers)],
    )


def _head_result(meta: tuple[int, int, float]) -> tuple[HeadResult, float]:
    return HeadResult(meta[0], meta[1]), meta[2]


def _tail_result(meta: tuple[float, int, float]) -> tuple[TailResult, float]:
    return TailResult(meta[0], meta[1]), meta[2]


def _gen_result(meta: tuple[GenResult, float]) -> tuple[GenResult, float]:
    return meta
