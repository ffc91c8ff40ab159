"""The futures ``RayOracle`` hands out for jobs it sent to actors in batched Ray calls.

One Ray call carries many jobs; each job's future holds the call's object ref and its index in
the call's result list. ``result()`` answers from the oracle's memo of collected results when
the key is there; otherwise it fetches the call's list once for all its jobs
(``RayOracle._fetch``) and records the item (``RayOracle._collected_*``), which raises
``ComputeFailed`` when the actor reported a failure or died for good. A generation that failed
fails the same way when asked again. ``Placeholder`` marks a key while one ``submit_*`` call
is still building its batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.engine.jobs import ComputeFailed, GenResult, HeadResult, TailResult

if TYPE_CHECKING:
    from fleet.compute.ray_oracle import RayOracle
    from server.engine.local import Key
    from server.engine.local_gen import GenKey


class Placeholder:
    """Stands for a key in the memo until its batch is sent; never returned."""

    def result(self) -> Any:
        raise AssertionError("a placeholder is replaced before submit_* returns")


class HeadPending:
    """A head's size metadata, item ``index`` of the call ``ref``."""

    __slots__ = ("_index", "_key", "_oracle", "_ref")

    def __init__(self, oracle: RayOracle, key: Key, ref: Any, index: int) -> None:
        self._oracle, self._key, self._ref, self._index = oracle, key, ref, index

    def result(self) -> HeadResult:
        done = self._oracle._head_done.get(self._key)
        if done is not None:
            return done[0]
        return self._oracle._collected_head(self._key, self._oracle._fetch(self._ref, self._index))


class TailPending:
    """A tail's agreement and result size, item ``index`` of the call ``ref``."""

    __slots__ = ("_index", "_key", "_oracle", "_ref")

    def __init__(self, oracle: RayOracle, key: Key, ref: Any, index: int) -> None:
        self._oracle, self._key, self._ref, self._index = oracle, key, ref, index

    def result(self) -> TailResult:
        done = self._oracle._tail_done.get(self._key)
        if done is not None:
            return done[0]
        return self._oracle._collected_tail(self._key, self._oracle._fetch(self._ref, self._index))


class GenPending:
    """A whole generated sequence's result, item ``index`` of the call ``ref``."""

    __slots__ = ("_index", "_key", "_oracle", "_ref")

    def __init__(self, oracle: RayOracle, key: GenKey, ref: Any, index: int) -> None:
        self._oracle, self._key, self._ref, self._index = oracle, key, ref, index

    def result(self) -> GenResult:
        oracle = self._oracle
        done = oracle._gen_done.get(self._key)
        if done is not None:
            return done[0]
        if self._key in oracle._gen_failed:  # asked again after failing: fail the same way
            raise ComputeFailed(oracle._gen_failed[self._key])
        try:
            meta = oracle._fetch(self._ref, self._index)
        except ComputeFailed as exc:
            oracle._gen_failed[self._key] = str(exc)
            raise
        return oracle._collected_gen(self._key, meta)
