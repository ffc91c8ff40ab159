"""The device-shard actor: hosts any number of simulated devices' head compute; and the
compute actor, which plays both roles on clusters without GPUs.

A plain class, made remote where the ``RayOracle`` builds it (``ray.remote(DeviceShard)``), so
it is tested without Ray. One shard keeps one copy of each model it is asked for (any split
point runs on the same copy), the codecs and the inputs, inside a ``LocalOracle``; its memo
makes a repeated (model, split, codec, input) free. Generation jobs (``task: generate``) run
here too, one whole sequence each, device head and server tail on the same model copy. Torch
runs on one thread per actor.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from server.engine.jobs import (
    DEFAULT_PROMPTS,
    GenJob,
    GenResult,
    HeadJob,
    OracleError,
    TailJob,
)


class DeviceShard:
    def __init__(self) -> None:
        import torch

        from server.engine.local import LocalOracle

        torch.set_num_threads(1)
        self._oracle = LocalOracle()

    def heads(
        self, jobs: Sequence[HeadJob]
    ) -> tuple[list[tuple[int, int, float] | str], list[bytes]]:
        """Per job: (raw_bytes, payload_bytes, head wall seconds), or the error text of a job
        that cannot run; and the payloads (empty for a failed job). The two lists come back as
        two objects, so a payload can travel to a server worker without the driver."""
        meta: list[tuple[int, int, float] | str] = []
        payloads: list[bytes] = []
        for job in jobs:
            try:
                result, wall_s = self._oracle.run_head(job)
            except OracleError as exc:
                meta.append(str(exc))
                payloads.append(b"")
                continue
            assert result.payload is not None
            meta.append((result.raw_bytes, result.payload_bytes, wall_s))
            payloads.append(result.payload)
        return meta, payloads

    def generations(self, jobs: Sequence[GenJob]) -> list[tuple[GenResult, float] | str]:
        """Per job: (the sequence's result, its wall seconds when first computed), or the
        error text of a job that cannot run."""
        out: list[tuple[GenResult, float] | str] = []
        for job in jobs:
            try:
                out.append(self._oracle.run_generation(job))
            except OracleError as exc:
                out.append(str(exc))
        return out

    def inputs(
        self, model: str, seq_len: int, prompts: str = DEFAULT_PROMPTS
    ) -> tuple[int, int, str]:
        """(distinct inputs, the seq_len and prompts that key them) for ``model`` at
        ``seq_len`` in the ``prompts`` text (``server.engine.local``: models that ignore them carry
        seq_len 0 and the default prompts)."""
        key = self._oracle.key(HeadJob(0, model, 0, "", 0, seq_len, prompts=prompts))
        return self._oracle.input_count(model, key[4], key[6]), key[4], key[6]

    def where(self) -> tuple[str, int]:
        """(Ray node id, process id): where this actor runs."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()


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
            try:
                payload = self._oracle.run_head(job)[0].payload  # its head, from the memo
                assert payload is not None
                result, wall_s = self._oracle.run_tail(job, payload)
            except (OracleError, ValueError) as exc:
                out.append(str(exc))
                continue
            out.append((result.agreement, result.result_bytes, wall_s))
        return out

    def warm(self, model: str, seq_len: int, prompts: str = DEFAULT_PROMPTS) -> int:
        return self.inputs(model, seq_len, prompts)[0]
