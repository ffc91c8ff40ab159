"""What ``slicer plan`` knows of a configuration before simulating it: its quality from the
calibration, and lower bounds from the cost models.

* **Quality** (``Calibration.quality_loss``): 1 - the mean agreement with the unsplit model
  that the calibration recorded for each group's (split, codec), the worst group's.
* **Latency** (``latency_bound_s``, for ``p95_latency_s``): every request takes at least its
  head, its encode, its uplink from when it is ready, both link delays, its decode on one core
  and its tail at batch 1 (``models.durations``, ``models.codec_time``, ``server.cost``), at
  its group's smallest recorded payload. Its uplink is at least the transfer time of that
  payload started when the request is ready, whatever waits before it (a later start of the
  same bytes on the same trace never ends sooner), so the bound takes that transfer time over
  start times spread uniformly over the link's trace (its own trace with the run's seed, or
  its cell's at full capacity) and reads it at the ``LATENCY_QUANTILE`` (0.80: the run's
  p95 is over a sample of start times, so the bound keeps a 15-point margin). Groups are mixed
  by their request rates.
* **Capacity** (``fewest_replicas``): arrivals bring ``lambda`` requests per second, each at
  least its tail at the full batch over that batch on an accelerator and its decode on a
  decode-pool core. With utilisation ``rho > 1`` the backlog grows at ``rho - 1`` seconds per
  second, so a request arriving after ``slo_s / (rho - 1)`` waits longer than the SLO; the
  p95 misses once that is before 95% of the run. Replica counts whose accelerators or decode
  pool have ``rho > 1 + CAPACITY_MARGIN * slo_s / duration_s`` are out (``CAPACITY_MARGIN``
  = 2, twice what the argument needs). Only for request batching of ``task: infer`` runs with
  ``duration_s`` and no replica failures; with drawn service times (``servers.service``) a
  batch's work is its mean, and the latency bound takes no server time.
* **Uplinks** (``uplink_overloaded``): the same argument for a device's own uplink (its
  requests' smallest payloads against the trace's mean rate) or a cell's (all its devices').
* **Objectives** (``objective_bound``): replicas exactly; uplink bytes per request at least the
  smallest payloads; device energy at least head, encode and radio energy per bit; server
  busy time per request at least the tail at the full batch over that batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleet.core import decode_pool_cores
from fleet.network.trace_source import load_link_trace
from fleet.network.traces import Trace
from models.codec_time import CodecTimes
from models.durations import ModelCosts
from models.hardware import get_hardware
from scenarios import Scenario
from scenarios.schema import group_links
from server.engine.jobs import full_codec_key

LATENCY_QUANTILE = 0.80
CAPACITY_MARGIN = 2.0
TRACE_STARTS = 2000  # start times per trace for the uplink bound
_TRACE_STREAM = 3  # fleet.sim's seed children: arrivals, offsets, inputs, traces, ...


@dataclass(frozen=True)
class Recorded:
    """What the calibration recorded for one (split, codec): over its inputs."""

    raw_bytes: float
    min_payload_bytes: float
    agreement: float


class Calibration:
    """The calibration's records by (split, codec key), from the replay profiles."""

    def __init__(self, replay_from: str) -> None:
        from fleet.compute.replay import ReplayOracle

        oracle = ReplayOracle([replay_from])
        self.records: dict[tuple[int, str], Recorded] = {}
        for table, payload in ((oracle.table, "payload_bytes"), (oracle.generations, None)):
            cols = {n: table.column(n).to_pylist() for n in table.column_names}
            keys = list(zip(cols.get("split", []), cols.get("codec", []), strict=True))
            for key in sorted(set(keys)):
                rows = [i for i, k in enumerate(keys) if k == key]
                raw = "raw_bytes" if payload else "prompt_raw_bytes"
                sizes = cols[payload] if payload else cols["prompt_payload_bytes"]
                self.records[key] = Recorded(
                    float(np.mean([cols[raw][i] for i in rows])),
                    float(min(sizes[i] for i in rows)),
                    float(np.mean([cols["agreement"][i] for i in rows])),
                )

    def of(self, split: int, key: str) -> Recorded | None:
        return self.records.get((split, key))

    def quality_loss(self, scenario: Scenario) -> float:
        """1 - mean agreement of the worst group (NaN where the calibration lacks one)."""
        losses = []
        for g in scenario.fleet:
            got = self.of(g.split, full_codec_key(scenario.codec_for(g).config()))
            losses.append(math.nan if got is None else 1.0 - got.agreement)
        return max(losses) if not any(math.isnan(x) for x in losses) else math.nan


@dataclass(frozen=True)
class GroupCosts:
    """One group's per-request floor at one configuration."""

    rate_per_s: float  # requests per second the group brings (0: unknown)
    device_s: float  # head + encode at the smallest payload
    device_j: float  # head + encode energy + radio energy per bit at the smallest payload
    server_s: float  # decode on one core + tail at batch 1
    busy_s: float  # accelerator time per request at the full batch
    decode_s: float  # decode-pool core time per request
    payload_bytes: float
    uplink_s: np.ndarray  # transfer times over uniform start times (+ both delays)
    uplink_load: float  # the bits its requests bring over the link's mean rate (0: unknown)


def group_costs(scenario: Scenario, calibration: Calibration) -> list[GroupCosts]:
    s = scenario
    costs = ModelCosts(s.model.name, s.model.seq_len)
    times = CodecTimes.read(s.codec_costs)
    server = get_hardware(s.servers.hardware)
    batch = s.servers.batching.max_batch
    on_gpu = s.servers.decode.on == "gpu"
    trace_ss = np.random.SeedSequence(s.seed).spawn(9)[_TRACE_STREAM].spawn(len(s.fleet))
    out = []
    for index, g in enumerate(s.fleet):
        key = full_codec_key(s.codec_for(g).config())
        got = calibration.of(g.split, key)
        if got is None:
            raise ValueError(f"the calibration records no fleet[{index}] split {g.split} {key}")
        hardware = get_hardware(g.hardware)
        head_s, head_j = costs.head(hardware, g.dtype, g.split)
        payload = got.min_payload_bytes
        encode_s = times.seconds("encode", key, got.raw_bytes, payload, hardware)
        decode_s = 0.0 if on_gpu else times.seconds("decode", key, got.raw_bytes, payload, server)
        if s.servers.service is None:
            tail_1 = costs.tail_s(server, s.servers.dtype, g.split, 1)
            busy_s = costs.tail_s(server, s.servers.dtype, g.split, batch) / batch
        else:  # drawn service times: a batch takes mean_s on average, any single one less
            tail_1, busy_s = 0.0, s.servers.service.mean_s / batch
        radio_j = 0.0 if g.radio is None else g.radio.uplink_j_per_mbit * payload * 8e-6
        out.append(
            GroupCosts(
                _rate_per_s(s, g),
                head_s + encode_s,
                head_j + hardware.active_power_w * encode_s + radio_j,
                decode_s + tail_1,
                busy_s,
                decode_s,
                payload,
                *_uplink(s, index, payload, trace_ss[index]),
            )
        )
    return out


def latency_bound_s(groups: Sequence[GroupCosts]) -> float:
    """A lower bound of the run's p95 latency (module docstring)."""
    samples = [g.device_s + g.server_s + g.uplink_s for g in groups]
    weights = [
        np.full(len(x), _weight(g, groups) / len(x)) for g, x in zip(groups, samples, strict=True)
    ]
    values, w = np.concatenate(samples), np.concatenate(weights)
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    return float(values[order][np.searchsorted(cum, LATENCY_QUANTILE)])


def uplink_overloaded(scenario: Scenario, groups: Sequence[GroupCosts], slo_s: float) -> bool:
    """Whether some group's uplink gets more bits per second than its mean rate carries, by
    the capacity bound's margin: its transfers queue without end, whatever the servers."""
    if scenario.duration_s is None:
        return False
    limit = 1.0 + CAPACITY_MARGIN * slo_s / scenario.duration_s
    return any(g.uplink_load > limit for g in groups)


def fewest_replicas(
    scenario: Scenario, groups: Sequence[GroupCosts], counts: Sequence[int], slo_s: float
) -> int | None:
    """The fewest of ``counts`` the capacity bound does not rule out (None: all are out)."""
    s = scenario
    applies = (
        s.model.task == "infer"
        and s.duration_s is not None
        and s.servers.failures is None
        and all(g.rate_per_s > 0 for g in groups)
    )
    if not applies:
        return min(counts)
    assert s.duration_s is not None
    limit = 1.0 + CAPACITY_MARGIN * slo_s / s.duration_s
    work = sum(g.rate_per_s * g.busy_s for g in groups)
    decode = sum(g.rate_per_s * g.decode_s for g in groups)
    for r in sorted(counts):
        servers = s.servers.model_copy(update={"replicas": r})
        cores = decode_pool_cores(servers)
        if work / r <= limit and (cores == 0 or decode / cores <= limit):
            return r
    return None


def objective_bound(objective: str, groups: Sequence[GroupCosts], replicas: int) -> float:
    """A lower bound of ``objective`` at ``replicas`` (module docstring)."""
    if objective == "replicas":
        return float(replicas)
    field = {"uplink_bytes": "payload_bytes", "device_j": "device_j", "server_s": "busy_s"}
    name = field[objective]
    return sum(_weight(g, groups) * getattr(g, name) for g in groups)


def _weight(g: GroupCosts, groups: Sequence[GroupCosts]) -> float:
    total = sum(x.rate_per_s for x in groups)
    return g.rate_per_s / total if total > 0 else 1.0 / len(groups)


def _rate_per_s(s: Scenario, g: Any) -> float:
    a = g.arrivals
    if a.kind == "poisson":
        rate = a.rate_per_s
    elif a.kind == "periodic":
        rate = 1.0 / a.period_s
    elif a.kind == "on-off":
        rate = a.rate_per_s * a.on_s / (a.on_s + a.off_s)
    else:
        return 0.0
    online = 1.0
    if g.availability is not None:
        av = g.availability
        online = av.p_available if av.kind == "probability" else av.up_s / (av.up_s + av.down_s)
    return float(g.count * rate * online)


def _uplink(
    s: Scenario, index: int, nbytes: float, seeds: np.random.SeedSequence
) -> tuple[np.ndarray, float]:
    """Transfer times of ``nbytes`` over start times spread uniformly over the group's uplink
    trace, plus the uplink's and downlink's delays; and the link's load: the bits the
    requests on it bring per second over its mean rate."""
    g = s.fleet[index]
    up, down = group_links(s, g)
    up_seed = int(seeds.generate_state(2)[0])
    delay_s = 0.0
    trace: Trace | None = None
    senders = 1  # devices on the link
    if up is not None:
        trace = load_link_trace(up, up_seed)
        delay_s += up.delay_s if trace is not None else 0.0
    else:  # the cell's shared uplink, at full capacity
        cells = [c.name for c in s.network.cells]
        i = cells.index(str(g.cell))
        cell = s.network.cells[i]
        assert cell.uplink is not None
        trace = load_link_trace(cell.uplink, 1000 * i)
        senders = sum(x.count for x in s.fleet if x.cell == g.cell)
        delay_s += cell.uplink.delay_s if trace is not None else 0.0
    if down is not None and down.kind != "ideal":
        delay_s += down.delay_s
    if trace is None:
        return np.full(1, delay_s), 0.0
    starts = np.arange(TRACE_STARTS) * (trace.period_s / TRACE_STARTS)
    times = np.array([trace.transfer_s(float(t), nbytes) for t in starts]) + delay_s
    per_device = _rate_per_s(s, g) / g.count
    mean_bps = trace.mean_bps()
    load = senders * per_device * nbytes * 8.0 / mean_bps if mean_bps > 0 else math.inf
    return times, load
