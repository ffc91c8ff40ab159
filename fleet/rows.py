"""The requests of one run as rows of numpy arrays, and the ``requests.parquet`` rows they
become.

``RequestRows`` draws every request up front (arrival time, device, input, whether its device
is offline), sorted by (arrival time, device id), so the request id is the arrival order. The
loop fills the stage times and byte counts as requests move, calls ``finish`` once per
request, and rows go to the sink in chunks of ``chunk_rows`` in the order requests finished
(``records.tables.REQUESTS_SCHEMA``, plus the task's extra columns).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fleet.arrivals import arrival_times, offline_arrivals
from records.tables import STAGE_TIMES
from scenarios.schema import Scenario

if TYPE_CHECKING:
    from fleet.core import GroupSetup, Task

COMPLETED, DROPPED, FAILED = 1, 2, 3
STATUS = np.array(["", "completed", "dropped", "failed"], dtype=object)
Sink = Callable[[dict[str, Any]], None]


class RequestRows:
    def __init__(
        self,
        scenario: Scenario,
        groups: list[GroupSetup],
        run_id: str,
        sink: Sink,
        chunk_rows: int,
        seeds: tuple[np.random.SeedSequence, np.random.SeedSequence, np.random.SeedSequence],
    ) -> None:
        """``seeds``: of the arrivals, the inputs and the offline draws. ``task`` must be set
        before the first row is written: it adds its columns and buffers."""
        self._scenario = scenario
        self._groups = groups
        self._run_id = run_id
        self._sink = sink
        self._chunk_rows = chunk_rows
        self.task: Task | None = None
        arrival_ss, input_ss, offline_ss = seeds
        s = scenario
        counts = [g.count for g in s.fleet]
        self.device_group = np.repeat(np.arange(len(counts)), counts)
        self.n_devices = int(sum(counts))
        device, t_arrival, offline = _draw_arrivals(s, counts, arrival_ss, offline_ss)
        self.device = device
        self.t_arrival = t_arrival
        n = self.n = len(device)
        self.any_offline = bool(offline.any())
        self.group = self.device_group[device] if n else np.zeros(0, dtype=np.int64)
        inputs = np.random.default_rng(input_ss).integers(0, 2**31 - 1, n, dtype=np.int64)
        if s.model.inputs is not None:
            inputs %= s.model.inputs
        self.input_id = inputs
        # Python lists mirror the per-request columns the hot path reads: indexing a list is
        # several times faster than a numpy scalar read
        self.offline_of: list[bool] = offline.tolist()
        self.device_of: list[int] = device.tolist()
        self.group_of: list[int] = self.group.tolist()
        self.input_of: list[int] = inputs.tolist()
        nan = np.full(n, np.nan)
        self.t = {k: nan.copy() for k in STAGE_TIMES[1:]}  # t_arrival_s is its own array
        self.raw_bytes = np.zeros(n, dtype=np.int64)
        self.payload_bytes = np.zeros(n, dtype=np.int64)
        self.result_bytes = np.zeros(n, dtype=np.int64)
        self.replica = np.full(n, -1, dtype=np.int32)
        self.batch_size = np.zeros(n, dtype=np.int32)
        self.server_busy_s = np.zeros(n)
        self.server_decode_s = np.zeros(n)
        self.energy_j = np.zeros(n)
        self.agreement = nan.copy()
        self.status = np.zeros(n, dtype=np.int8)
        self.reason: dict[int, str] = {}
        # per request, where a policy chooses them (``fleet.policy``); else the group's
        self.request_split: np.ndarray | None = None
        self.request_codec: np.ndarray | None = None
        self.completed = self.dropped = self.failed = 0
        self.last_done_s = 0.0
        self._done: list[int] = []
        self._flushed = 0

    @property
    def finished(self) -> int:
        """Requests that have their row (written or buffered)."""
        return len(self._done) + self._flushed

    def finish(self, rid: int, status: int, reason: str, done_s: float = math.nan) -> None:
        self.status[rid] = status
        if status == COMPLETED:
            self.t["t_done_s"][rid] = done_s
            self.last_done_s = max(self.last_done_s, done_s)
            self.completed += 1
        else:
            self.reason[rid] = reason
            if status == DROPPED:
                self.dropped += 1
            else:
                self.failed += 1
        self._done.append(rid)
        if len(self._done) >= self._chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Write the rows of the requests finished since the last flush (after what the task
        buffers, so a step table never runs behind its requests)."""
        assert self.task is not None, "RequestRows.task is set by the simulation"
        self.task.flush()
        if not self._done:
            return
        idx = np.asarray(self._done, dtype=np.int64)
        self._flushed += len(idx)
        self._done = []
        self._sink(self._columns(idx))

    def _columns(self, idx: np.ndarray) -> dict[str, Any]:
        task = self.task
        assert task is not None
        g = self.group[idx]
        groups = self._groups
        names = np.array([x.name for x in groups], dtype=object)
        splits = np.array([x.split for x in groups], dtype=np.int32)
        codecs = np.array([x.codec_id for x in groups], dtype=object)
        columns: dict[str, Any] = {
            "run_id": [self._run_id] * len(idx),
            "request_id": idx,
            "device_id": self.device[idx],
            "group": names[g].tolist(),
            "model": [self._scenario.model.name] * len(idx),
            "split": splits[g] if self.request_split is None else self.request_split[idx],
            "codec": (
                codecs[g] if self.request_codec is None else self.request_codec[idx]
            ).tolist(),
            "input_id": self.input_id[idx],
            "replica_id": self.replica[idx],
            "t_arrival_s": self.t_arrival[idx],
        }
        for name, values in self.t.items():
            columns[name] = values[idx]
        radio_j = task.radio_energy_j(idx, g)
        columns.update(
            raw_bytes=self.raw_bytes[idx],
            payload_bytes=self.payload_bytes[idx],
            result_bytes=self.result_bytes[idx],
            batch_size=self.batch_size[idx],
            server_busy_s=self.server_busy_s[idx],
            server_decode_s=self.server_decode_s[idx],
            device_energy_j=self.energy_j[idx] + radio_j,
            radio_energy_j=radio_j,
            agreement=self.agreement[idx],
            status=STATUS[self.status[idx]].tolist(),
            reason=[self.reason.pop(int(i), "") for i in idx],
        )
        columns.update(task.extra_columns(idx))
        return columns


def radio_energy_j(
    radios: list[Any], g: np.ndarray, active_s: np.ndarray, up_mbit: Any, down_mbit: Any
) -> np.ndarray:
    """Each group's ``radio`` model (``radios[group]``, None for none): active power over the
    seconds the radio sent or received, plus energy per megabit each way."""
    if all(r is None for r in radios):
        return np.zeros(len(g))
    active_w = np.array([r.active_w if r else 0.0 for r in radios])[g]
    up_j = np.array([r.uplink_j_per_mbit if r else 0.0 for r in radios])[g]
    down_j = np.array([r.downlink_j_per_mbit if r else 0.0 for r in radios])[g]
    return active_w * active_s + up_j * up_mbit + down_j * down_mbit


def _draw_arrivals(
    s: Any,
    counts: list[int],
    arrival_ss: np.random.SeedSequence,
    offline_ss: np.random.SeedSequence,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(device, arrival time, offline at arrival) of every request, in (time, device) order."""
    first_device = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    devices, times, offlines = [], [], []
    arrival_seeds = arrival_ss.spawn(len(s.fleet))
    offline_seeds = offline_ss.spawn(len(s.fleet))
    for g, group_ss, group_offline_ss, base in zip(
        s.fleet, arrival_seeds, offline_seeds, first_device, strict=True
    ):
        device, t_s = arrival_times(
            g.arrivals,
            g.count,
            duration_s=s.duration_s,
            requests_per_device=s.requests_per_device,
            rng=np.random.default_rng(group_ss),
        )
        offline_rng = np.random.default_rng(group_offline_ss)
        offlines.append(offline_arrivals(g.availability, device, t_s, offline_rng))
        devices.append(device.astype(np.int64) + base)
        times.append(t_s)
    device = np.concatenate(devices)
    t_arrival = np.concatenate(times)
    order = np.lexsort((device, t_arrival))
    return device[order], t_arrival[order], np.concatenate(offlines)[order]
