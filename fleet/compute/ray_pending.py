"""The futures ``RayOracle`` hands out for jobs it sent to actors in batched Ray calls.

One Ray call carries many jobs; each job's future (``RayPending``) holds the call's object
ref, its index in the call's result list and a ``collect`` function that turns the actor's
item into the result (and records it in the oracle's memo). ``CallResults`` fetches a call's
list once for all its jobs and lets it go when every job took its item. A future settles once:
its result, or its ``ComputeFailed`` (the actor reported a failure or died for good), is given
again on every later ``result()``. ``Placeholder`` marks a key while one submission is still
building its batches. Nothing here knows the oracle: it depends on Ray and the job types only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from server.engine.jobs import ComputeFailed

T = TypeVar("T")


class Placeholder:
    """Stands for a key in the memo until its batch is sent; never returned."""

    def result(self) -> Any:
        raise AssertionError("a placeholder is replaced before a submission returns")


class CallResults:
    """The result lists of batched Ray calls: each fetched once, dropped once all its jobs
    took their item."""

    def __init__(self) -> None:
        self._fetched: dict[Any, list[Any]] = {}  # a call's result list, until all collected
        self._waiting: dict[Any, int] = {}  # how many jobs of a call are not collected yet

    def expect(self, ref: Any, jobs: int) -> None:
        """The call ``ref`` carries ``jobs`` jobs, each to take its item once."""
        self._waiting[ref] = jobs

    def take(self, ref: Any, index: int) -> Any:
        """Item ``index`` of the call's result list; ``ComputeFailed`` when the call failed
        (its actor died more often than Ray retries)."""
        import ray

        try:
            values = self._fetched.get(ref)
            if values is None:
                values = self._fetched[ref] = ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise ComputeFailed(f"{type(exc).__name__}: {first_line(exc)}") from exc
        finally:
            self._waiting[ref] -= 1
            if not self._waiting[ref]:
                self._fetched.pop(ref, None)
                del self._waiting[ref]
        return values[index]


class RayPending(Generic[T]):
    """Item ``index`` of the call ``ref``, made a ``T`` by ``collect`` (which raises
    ``ComputeFailed`` for an item that reports a failure)."""

    __slots__ = ("_calls", "_collect", "_error", "_index", "_ref", "_settled", "_value")
    _value: T

    def __init__(
        self, calls: CallResults, ref: Any, index: int, collect: Callable[[Any], T]
    ) -> None:
        self._calls, self._ref, self._index, self._collect = calls, ref, index, collect
        self._settled = False
        self._error: str | None = None

    def result(self) -> T:
        if not self._settled:
            self._settled = True
            ref, self._ref = self._ref, None  # the call's objects may go once all are taken
            try:
                self._value = self._collect(self._calls.take(ref, self._index))
            except ComputeFailed as exc:
                self._error = str(exc)
                raise
        if self._error is not None:  # asked again after failing: fail the same way
            raise ComputeFailed(self._error)
        return self._value


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an error's text (Ray errors carry whole tracebacks)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
