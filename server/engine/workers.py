"""The server-worker actor: runs decode + tail for any number of simulated replicas.

A plain class, made remote where the ``RayOracle`` builds it. Payloads arrive as object refs
straight from the device shards' results (the driver never holds them) and are fetched here in
one ``ray.get`` per call. Like the device shards (``fleet.compute.shards``) it hosts a
``LocalOracle``: one model copy, the codecs, the unsplit references and a memo.

``device`` is where its tails run: ``"auto"`` (the default) takes the GPU when Ray gave the
actor one (``RayOracle`` asks for ``num_gpus`` when the cluster has GPUs; Ray hides GPUs from
actors that did not ask), else the CPU; the model, the decoded IF (``codec.decode_torch``) and
the unsplit reference then live on it, and tail wall times synchronise with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from server.engine.jobs import DEFAULT_PROMPTS, HeadResult, OracleError, TailJob

_EMPTY = HeadResult(0, 0)


class ServerWorker:
    def __init__(self, device: str = "auto") -> None:
        import torch

        from server.engine.local import LocalOracle

        torch.set_num_threads(1)
        self._oracle = LocalOracle(device=device)

    def device(self) -> str:
        """The torch device this worker's tails run on."""
        return self._oracle.device

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
        """(Ray node id, process id): where this actor runs."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()


def _fetch(sources: Sequence[Any]) -> list[list[bytes]]:
    if sources and not isinstance(sources[0], list):
        import ray

        return list(ray.get(list(sources)))
    return [list(s) for s in sources]
