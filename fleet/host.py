"""What a task sees of the simulation: the ``Host`` protocol that ``fleet.sim.Simulation``
implements, so ``fleet.infer``, ``fleet.sequences`` and ``fleet.steps`` type against it
without importing the loop that builds them."""

from __future__ import annotations

import math
from typing import Protocol

import simpy

from fleet.core import GroupSetup, Task, Transfer
from fleet.rows import RequestRows
from models.codec_time import CodecTimes
from models.durations import ModelCosts
from scenarios.schema import Scenario
from server.engine.jobs import Oracle


class Host(Protocol):
    """The simulation as its tasks and rows use it (``fleet.sim.Simulation``)."""

    scenario: Scenario
    oracle: Oracle
    env: simpy.Environment
    run_id: str
    costs: ModelCosts
    codec_times: CodecTimes
    groups: list[GroupSetup]
    group_class: list[int]
    rows: RequestRows
    task: Task

    def free_device(self, dev: int, at_s: float) -> None: ...

    def send_up(self, rid: int, nbytes: int, at_s: float, done: Transfer) -> None: ...

    def send_down(self, rid: int, nbytes: int, done: Transfer, *, settle: bool = False) -> None: ...

    def finish(self, rid: int, status: int, reason: str, done_s: float = math.nan) -> None: ...
