"""The server-worker actor: runs decode + tail for any number of simulated replicas; and the
compute actor, which plays both roles on clusters without GPUs.

A plain class, made remote where the ``RayOracle`` builds it. Payloads arrive as object refs
straight from the device shards' results (the driver never holds them) and are fetched here in
one ``ray.get`` per call. Like ``DeviceShard`` it hosts a ``LocalOracle``: one model copy, the
codecs, the unsplit references and a memo. It lives in ``fleet`` rather than ``server``
because it shares that compute engine, and ``server`` does not import ``fleet``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from fleet.oracle import DEFAULT_PROMPTS, HeadJob, HeadResult, OracleError, TailJob
from fleet.shards import DeviceShard

_EMPTY = HeadResult(0, 0)


class ServerWorker:
    def __init__(self) -> None:
        import torch

        from fleet.local import LocalOracle

        torch.set_num_threads(1)
        self._oracle = LocalOracle()

    def tails(
        self, jobs: Sequence[TailJob], sources: Sequence[Any], picks: Sequence[tuple[int, int]]
    ) -> list[tuple[float, int, float] | str]:
        """Per job: (agreement, result_bytes, tail wall seconds) or an error text. Job i's
        payload is ``payloads(sources[a])[b]`` for ``(a, b) = picks[i]``; ``sources`` are
        object refs of device-shard payload lists (or the lists themselves, in tests)."""
        fetched = _fetch(sources)
        out: list[tuple[float, int, float] | str] = []
        for job, (a, b) in zip(jobs, picks, strict=True):
            payload = fetched[a][b]
            if not payload:
                out.append(f"request {job.request_id}: no payload (its head failed)")
                continue
            try:
                result, wall_s = self._oracle.run_tail(job, payload)
            except (OracleError, ValueError) as exc:  # CodecError is a ValueError
                out.append(str(exc))
                continue
            out.append((result.agreement, result.result_bytes, wall_s))
        return out

    def warm(self, model: str, seq_len: int, prompts: str = DEFAULT_PROMPTS) -> int:
        """Load ``model`` and its ``prompts`` inputs now rather than on the first tail; returns
        the number of distinct inputs."""
        key = self._oracle.key(TailJob(0, model, 0, "", 0, seq_len, _EMPTY, prompts=prompts))
        return self._oracle.input_count(model, key[4], key[6])

    def where(self) -> tuple[str, int]:
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()


def _fetch(sources: Sequence[Any]) -> list[list[bytes]]:
    if sources and not isinstance(sources[0], list):
        import ray

        return list(ray.get(list(sources)))
    return [list(s) for s in sources]


class ComputeActor(DeviceShard):
    """Both roles in one process, for clusters without GPUs: one model copy runs heads and
    then the tails on the payloads it made itself, so payloads never move and an idle CPU
    takes whichever work comes. After a restart (empty memo) a tail recomputes its head.
    Generation jobs run here too (``DeviceShard.generations``): one whole sequence each."""

    def tails(
        self, jobs: Sequence[TailJob], sources: Sequence[Any] = (), picks: Sequence[Any] = ()
    ) -> list[tuple[float, int, float] | str]:
        out: list[tuple[float, int, float] | str] = []
        for job in jobs:
            head = HeadJob(
                job.request_id,
                job.model,
                job.split,
                job.codec,
                job.input_id,
                job.seq_len,
                job.step,
                job.prompts,
            )
            try:
                payload = self._oracle.run_head(head)[0].payload
                assert payload is not None
                result, wall_s = self._oracle.run_tail(job, payload)
            except (OracleError, ValueError) as exc:
                out.append(str(exc))
                continue
            out.append((result.agreement, result.result_bytes, wall_s))
        return out

    def warm(self, model: str, seq_len: int, prompts: str = DEFAULT_PROMPTS) -> int:
        return self.inputs(model, seq_len, prompts)[0]
