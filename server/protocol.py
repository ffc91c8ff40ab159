"""The one interface the device side of the simulation sees of the servers.

Two implementations: ``server.replica.ServerPool`` (request batching: a request is one tail
pass, batched per class as in Triton) and ``server.continuous_pool.ContinuousPool``
(continuous batching of autoregressive sequences). Both route with ``server.routing`` and
take their service times from ``server.cost.ServerCost``. What happens when work starts and
ends comes back to the caller through the callbacks each implementation is built with.
"""

from __future__ import annotations

from typing import Any, Protocol


class ServerSide(Protocol):
    @property
    def stops_when_done(self) -> bool:
        """True when the server side keeps scheduling events for ever (replica failures): the
        loop then stops once every request has its row."""
        ...

    def receive(self, request_id: int, klass: int) -> bool:
        """An uplink transfer of ``request_id`` (of service class ``klass``) arrived now: queue
        its work. False when it is refused (a full queue); the caller drops the request."""
        ...

    def table(self, run_id: str, end_s: float) -> dict[str, list[Any]]:
        """``servers.parquet`` columns for the run up to ``end_s``."""
        ...

    def failure_stats(self, end_s: float) -> tuple[int, float]:
        """(replica failures, replica-seconds down) over [0, end_s]."""
        ...
