"""Adaptive split policies: each request of an adaptive group picks the head (split and codec)
it runs from what its device knows when the head starts.

What a device knows, per device:

* **its uplink throughput estimate** ``bw``: an exponentially weighted mean of the throughput
  its own transfers achieved (payload bits over the link time from the transfer's start to its
  last bit, the link's ``delay_s`` taken off), weight ``alpha`` on the newest sample; before
  its first transfer, ``prior_mbps``. A transfer teaches the device when its last bit arrives.
* **the server wait the last response reported** ``wait``: for the last response back on the
  device, the time from its uplink's end to its batch's start minus its own decode (decode
  pool queue, batch queue); 0 before the first response. A response teaches the device when
  it arrives, not before.
* **its heads' typical IF sizes**: the mean payload and raw bytes of each head over the first
  inputs (up to ``PROBE_INPUTS``), asked of the oracle once when the run starts (a deployed
  device ships with its heads' calibration).

The rule, for every head ``h`` of the group (the group's own first, then ``options``):

    L(h) = switch(h) + head_s(h) + encode_s(h) + payload(h) * 8 / bw + up delay + wait
           + server_s(h) + down delay
    E(h) = head energy(h) + active power * (encode_s(h) + switch(h))
           + radio: active_w * payload(h) * 8 / bw + uplink_j_per_mbit * payload Mbit

where ``server_s(h)`` is its decode (one decode-pool core, or the accelerator where it
decodes) plus its tail at batch 1 (``server.cost``), and ``switch(h)`` is ``switch_s`` when
``h`` differs from the head of the device's last request. Heads with ``E(h)`` above
``energy_budget_j`` are out (all out: the one with the least ``E``). Among the rest, those with
``L(h) <= slo_s`` are the candidates and the one with the least ``prefer`` (``server_s``,
``device_j`` = E, ``uplink_bytes``, ``latency_s`` = L) wins, ties to the lower L, then to the
earlier head; with no candidate, the least ``L`` wins. ``prefer: server_s`` ranks by
accelerator time, the tail at batch 1 (plus the decode where the accelerator decodes): the
figure ``server_busy_s_per_request`` and ``slicer plan --minimize server_s`` count. Decode-pool
core time is in ``L`` but not in that rank, else fp16 (no decode) would outrank a codec that
sends a third of the bytes at the same tail, and lose the requests a fade catches.

Measured (``benchmarks.adaptive``, README "Adaptive split policies"): a pessimistic estimate
(the least of the last 3 samples) or a margin under ``slo_s`` moved requests to shallower,
costlier heads without beating a static fleet at the same server time, so the rule keeps the
mean: with one request per device every ~10 s, a sample is older than an LTE fade.

Keeping several heads is charged to the device: ``switch_s`` of device time at active power
whenever a request runs another head than the last one (added before its head), and the
weights of every head stay resident (each split's head is its own compiled artifact: the sum
over distinct splits), which must fit the hardware's memory (``resident_bytes``; the run's
assumptions name the figure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fleet.core import GroupSetup, Head
from scenarios.schema import group_links
from server.engine.jobs import HeadJob

if TYPE_CHECKING:
    from fleet.host import Host
    from server.cost import ServerCost

PROBE_INPUTS = 8  # inputs per head asked of the oracle for its typical IF size
_MIN_LINK_S = 1e-9


class _GroupRule:
    """One adaptive group's heads with what the rule predicts of each, fixed for the run."""

    def __init__(self, sim: Host, g: GroupSetup, index: int, cost: ServerCost) -> None:
        spec, s = g.policy, sim.scenario
        group = s.fleet[index]
        self.heads: tuple[Head, ...] = g.heads
        self.slo_s: float = spec.slo_s
        self.prefer: str = spec.prefer
        self.budget_j: float = math.inf if spec.energy_budget_j is None else spec.energy_budget_j
        self.alpha: float = spec.alpha
        self.prior_bps: float = spec.prior_mbps * 1e6
        self.switch_s: float = spec.switch_s
        self.active_w = g.hardware.active_power_w
        up, down = group_links(s, group)
        self.up_delay_s = 0.0 if up is None or up.kind == "ideal" else up.delay_s
        down_delay_s = 0.0 if down is None or down.kind == "ideal" else down.delay_s
        radio = group.radio
        self.radio_w = 0.0 if radio is None else radio.active_w
        self.radio_j_per_mbit = 0.0 if radio is None else radio.uplink_j_per_mbit
        server = cost.hardware
        self.payload_bytes: list[float] = []
        self.fixed_s: list[float] = []
        self.fixed_j: list[float] = []
        self.server_s: list[float] = []
        self.busy_s: list[float] = []
        for head, (raw, payload) in zip(self.heads, _probe(sim, self.heads), strict=True):
            encode_s = sim.codec_times.seconds("encode", head.codec_key, raw, payload, g.hardware)
            decode = (head.klass, raw, payload)
            if cost.decodes_on_accelerator:
                decode_s = cost.accelerator_decode_s([decode])
            else:
                decode_s = cost.decode_s(*decode)
            tail_s = sim.costs.tail_s(server, cost.dtype, head.split, 1)
            self.payload_bytes.append(payload)
            self.server_s.append(decode_s + tail_s)
            self.busy_s.append(tail_s + (decode_s if cost.decodes_on_accelerator else 0.0))
            self.fixed_s.append(head.head_s + encode_s + self.up_delay_s + down_delay_s)
            self.fixed_j.append(head.head_energy_j + self.active_w * encode_s)

    def choose(self, bw_bps: float, wait_s: float, last: int) -> int:
        """The head a request runs (an index into ``heads``): the module's rule."""
        latency, energy = [], []
        for h in range(len(self.heads)):
            switch_s = self.switch_s if last >= 0 and h != last else 0.0
            up_s = self.payload_bytes[h] * 8.0 / bw_bps
            latency.append(switch_s + self.fixed_s[h] + up_s + wait_s + self.server_s[h])
            radio_j = self.radio_w * up_s + self.radio_j_per_mbit * self.payload_bytes[h] * 8e-6
            energy.append(self.fixed_j[h] + self.active_w * switch_s + radio_j)
        allowed = [h for h in range(len(self.heads)) if energy[h] <= self.budget_j]
        if not allowed:
            allowed = [min(range(len(self.heads)), key=lambda h: (energy[h], h))]
        meeting = [h for h in allowed if latency[h] <= self.slo_s]
        if not meeting:
            return min(allowed, key=lambda h: (latency[h], h))
        cost = {
            "server_s": self.busy_s,
            "device_j": energy,
            "uplink_bytes": self.payload_bytes,
            "latency_s": latency,
        }[self.prefer]
        return min(meeting, key=lambda h: (cost[h], latency[h], h))


class Policies:
    """The adaptive groups of one run and what each device knows (the module docstring)."""

    def __init__(self, sim: Host, cost: ServerCost) -> None:
        groups = sim.groups
        self.rules: list[_GroupRule | None] = [
            _GroupRule(sim, g, i, cost) if g.policy is not None else None
            for i, g in enumerate(groups)
        ]
        n = sim.rows.n_devices
        self._bw_bps: list[float] = [math.nan] * n
        self._wait_s: list[float] = [0.0] * n
        self._pending: dict[int, tuple[float, float]] = {}  # device -> (known at, wait_s)
        self._last: list[int] = [-1] * n

    def choose(self, group: int, dev: int, now_s: float) -> tuple[Head, float]:
        """The head the device's request runs from ``now_s``, and its switch time."""
        rule = self.rules[group]
        assert rule is not None, "choose is for adaptive groups"
        pending = self._pending.get(dev)
        if pending is not None and pending[0] <= now_s:
            self._wait_s[dev] = pending[1]
            del self._pending[dev]
        bw = self._bw_bps[dev]
        last = self._last[dev]
        h = rule.choose(rule.prior_bps if math.isnan(bw) else bw, self._wait_s[dev], last)
        self._last[dev] = h
        return rule.heads[h], (rule.switch_s if last >= 0 and h != last else 0.0)

    def uplinked(
        self, group: int, dev: int, nbytes: float, start_s: float, arrive_s: float
    ) -> None:
        """A transfer of the device's ended: a new throughput sample."""
        rule = self.rules[group]
        assert rule is not None
        link_s = max(arrive_s - start_s - rule.up_delay_s, _MIN_LINK_S)
        sample = nbytes * 8.0 / link_s
        old = self._bw_bps[dev]
        self._bw_bps[dev] = (
            sample if math.isnan(old) else rule.alpha * sample + (1 - rule.alpha) * old
        )

    def responded(self, dev: int, wait_s: float, arrive_s: float) -> None:
        """A response reaches the device at ``arrive_s`` reporting ``wait_s`` of server wait."""
        known = self._pending.get(dev)
        if known is None or known[0] <= arrive_s:
            self._pending[dev] = (arrive_s, max(0.0, wait_s))


def adaptive_heads(
    sim: Any, group: Any, setup: GroupSetup, classes: dict[tuple[int, str], int]
) -> tuple[Head, ...]:
    """Every head of an adaptive ``group`` (its own first), numbered into ``classes``."""
    from server.engine.jobs import full_codec_key

    s = sim.scenario
    heads = [
        Head(setup.split, setup.codec_id, setup.codec_key, setup.head_s, setup.head_energy_j, 0)
    ]
    for option in group.policy.options:
        spec = option.codec if option.codec is not None else s.codec_for(group)
        head_s, head_j = sim.costs.head(setup.hardware, setup.dtype, option.split)
        heads.append(Head(option.split, spec.id, full_codec_key(spec.config()), head_s, head_j, 0))
    return tuple(
        replace(h, klass=classes.setdefault((h.split, h.codec_key), len(classes))) for h in heads
    )


def resident_bytes(sim: Any, setup: GroupSetup) -> float:
    """Weight bytes an adaptive group's device keeps: every distinct split's head."""
    splits = sorted({h.split for h in setup.heads})
    return sum(sim.costs.weight_bytes(0, split, setup.dtype) for split in splits)


def _probe(sim: Host, heads: Sequence[Head]) -> list[tuple[float, float]]:
    """(mean raw bytes, mean payload bytes) of each head over the first inputs."""
    model = sim.scenario.model
    inputs = min(model.inputs or PROBE_INPUTS, PROBE_INPUTS)
    jobs = [
        HeadJob(-1 - i, model.name, h.split, h.codec_key, i, model.seq_len, prompts=model.prompts)
        for h in heads
        for i in range(inputs)
    ]
    results = [f.result() for f in sim.oracle.submit_heads(jobs)]
    out = []
    for k in range(len(heads)):
        chunk = results[k * inputs : (k + 1) * inputs]
        out.append(
            (
                sum(r.raw_bytes for r in chunk) / inputs,
                sum(r.payload_bytes for r in chunk) / inputs,
            )
        )
    return out
