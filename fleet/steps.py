"""``steps.parquet`` rows of a ``task: generate`` run: one per token that reached its device.

``StepRows`` keeps the step under way of each sequence (when it started, when its input
arrived at the server, the server step that ran it, its payload, batch size and busy share)
and writes a row when the step's token is back on the device, in chunks of ``chunk_rows``
(``records.tables.STEPS_SCHEMA``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fleet.rows import Sink

if TYPE_CHECKING:
    from fleet.host import Host

STEP_COLUMNS = (
    "request_id",
    "step",
    "device_id",
    "replica_id",
    "t_step_start_s",
    "t_uplink_end_s",
    "t_server_start_s",
    "t_server_end_s",
    "t_token_done_s",
    "payload_bytes",
    "batch_size",
    "server_busy_s",
)
# positions in a step under way: start, input arrival, server start, server end, payload
# bytes, batch size, busy share
_START, _ARRIVED, _SERVER_START, _SERVER_END, _PAYLOAD, _BATCH, _BUSY = range(7)


class StepRows:
    def __init__(self, sim: Host, sink: Sink, chunk_rows: int = 65536) -> None:
        self._sim = sim
        self._sink = sink
        self._chunk_rows = chunk_rows
        self._at: dict[int, list[float]] = {}
        self._rows: dict[str, list[Any]] = {name: [] for name in STEP_COLUMNS}

    def start(self, rid: int, now_s: float) -> None:
        """A new step of ``rid`` starts on its device (the prefill, or a decode step)."""
        self._at[rid] = [now_s, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0]

    def sent(self, rid: int, nbytes: int) -> None:
        self._at[rid][_PAYLOAD] = nbytes

    def arrived(self, rid: int, now_s: float) -> None:
        self._at[rid][_ARRIVED] = now_s

    def served(self, rid: int, start_s: float, end_s: float, size: int, share_s: float) -> None:
        at = self._at[rid]
        at[_SERVER_START], at[_SERVER_END], at[_BATCH], at[_BUSY] = start_s, end_s, size, share_s

    def forget(self, rid: int) -> None:
        self._at.pop(rid, None)

    def done(self, rid: int, token: int, done_s: float) -> None:
        """Token ``token`` of ``rid`` is back on its device: its step's row."""
        at = self._at[rid]
        rows = self._rows
        rows["request_id"].append(rid)
        rows["step"].append(token)
        rows["device_id"].append(self._sim.rows.device_of[rid])
        rows["replica_id"].append(int(self._sim.rows.replica[rid]))
        rows["t_step_start_s"].append(at[_START])
        rows["t_uplink_end_s"].append(at[_ARRIVED])
        rows["t_server_start_s"].append(at[_SERVER_START])
        rows["t_server_end_s"].append(at[_SERVER_END])
        rows["t_token_done_s"].append(done_s)
        rows["payload_bytes"].append(int(at[_PAYLOAD]))
        rows["batch_size"].append(int(at[_BATCH]))
        rows["server_busy_s"].append(at[_BUSY])
        if len(rows["step"]) >= self._chunk_rows:
            self.flush()

    def flush(self) -> None:
        rows = self._rows
        if not rows["step"]:
            return
        self._sink({"run_id": [self._sim.run_id] * len(rows["step"]), **rows})
        self._rows = {name: [] for name in STEP_COLUMNS}
