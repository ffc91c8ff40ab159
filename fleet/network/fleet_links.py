"""The links of one run: every device's own uplink and downlink, and the cells' shared links.

Per group and direction the trace is loaded once; each device gets its own random offset into
it (and, with random outages, its own outage stream), and its ``Link`` object is built the first
time it sends, so 100,000 devices cost memory only for the links they use. Devices on a cell
share that cell's ``SharedLink`` in the directions the cell defines.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import simpy

from fleet.network.links import Link, OutageLink, SharedLink, TraceIntegral, device_offsets
from fleet.network.outages import FixedOutages, Outages, RandomOutages, first_outages
from fleet.network.trace_source import load_link_trace
from fleet.network.traces import Trace
from scenarios.schema import LinkSpec, Scenario, group_links
from scenarios.schema import RandomOutages as RandomOutagesSpec

_FIRST_WINDOWS = 1 << 40  # spawn key of a group's first outage windows (devices use their index)


class FleetLinks:
    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        device_group: np.ndarray,
        offset_ss: np.random.SeedSequence,
        trace_ss: np.random.SeedSequence,
        outage_ss: np.random.SeedSequence,
    ) -> None:
        s = scenario
        self.env = env
        self.device_group = device_group
        self.n_devices = len(device_group)
        self._group_link_specs: list[tuple[LinkSpec | None, LinkSpec | None]] = []
        self._group_traces: list[tuple[Any, Any]] = []
        self._group_offsets: list[tuple[np.ndarray, np.ndarray]] = []
        # per group and direction, for OutageLinks: fixed windows or every device's first
        # random window, and the trace integral (None: the link has no outages)
        self._group_outages: list[list[tuple[Any, TraceIntegral | None]]] = []
        self._outage_ss = outage_ss.spawn(len(s.fleet))
        group_seeds = zip(offset_ss.spawn(len(s.fleet)), trace_ss.spawn(len(s.fleet)), strict=True)
        for g, (off_ss, tr_ss) in zip(s.fleet, group_seeds, strict=True):
            up, down = group_links(s, g)
            up_seed, down_seed = (int(x) for x in tr_ss.generate_state(2))
            up_trace = load_link_trace(up, up_seed) if up is not None else None
            down_trace = load_link_trace(down, down_seed) if down is not None else None
            rng = np.random.default_rng(off_ss)
            self._group_link_specs.append((up, down))
            self._group_traces.append((up_trace, down_trace))
            outage_seed = self._outage_ss[len(self._group_outages)]
            self._group_outages.append(
                [
                    _outage_setup(spec, trace, g.count, outage_seed, direction)
                    for direction, (spec, trace) in enumerate(((up, up_trace), (down, down_trace)))
                ]
            )
            self._group_offsets.append(
                (
                    device_offsets(rng, g.count, up_trace),
                    device_offsets(rng, g.count, down_trace),
                )
            )
        self._uplinks: list[Link | None] = [None] * self.n_devices
        self._downlinks: list[Link | None] = [None] * self.n_devices
        self._first_device = np.concatenate([[0], np.cumsum([g.count for g in s.fleet])[:-1]])
        cell_rng = np.random.default_rng(trace_ss.spawn(1)[0])
        cell_outage_ss = outage_ss.spawn(len(s.network.cells))
        self._cells: dict[str, tuple[SharedLink | None, SharedLink | None]] = {}
        for i, cell in enumerate(s.network.cells):
            links: list[SharedLink | None] = []
            for j, spec in enumerate((cell.uplink, cell.downlink)):
                trace = None if spec is None else load_link_trace(spec, 1000 * i + j)
                if spec is None or trace is None:
                    links.append(None)
                    continue
                offset_s = float(cell_rng.uniform(0.0, trace.period_s))
                outages = _cell_outages(spec, cell_outage_ss[i], j)
                links.append(SharedLink(self.env, trace, spec.delay_s, offset_s, outages))
            self._cells[cell.name] = (links[0], links[1])
        self.group_cell = [self._cells.get(g.cell or "", (None, None)) for g in s.fleet]

    def link(self, device: int, direction: int) -> Link:
        """The own link of ``device`` in ``direction`` (0 up, 1 down), built on first use."""
        table = self._uplinks if direction == 0 else self._downlinks
        link = table[device]
        if link is None:
            g = int(self.device_group[device])
            spec = self._group_link_specs[g][direction]
            assert spec is not None
            trace = self._group_traces[g][direction]
            local = device - int(self._first_device[g])
            offset_s = float(self._group_offsets[g][direction][local])
            shared, integral = self._group_outages[g][direction]
            if integral is None:
                link = Link(trace, offset_s, spec.delay_s)
            else:
                outages: Outages = shared
                if not isinstance(shared, FixedOutages):  # random: the device's own draws
                    assert isinstance(spec.outages, RandomOutagesSpec)
                    starts, ends = shared
                    key = (*self._outage_ss[g].spawn_key, local, direction)
                    outages = RandomOutages(
                        spec.outages.mean_gap_s,
                        spec.outages.mean_s,
                        partial(_rng, self._outage_ss[g].entropy, key),
                        (starts[local], ends[local]),
                    )
                link = OutageLink(trace, offset_s, spec.delay_s, outages, integral)
            table[device] = link
        return link


def _outage_setup(
    spec: LinkSpec | None,
    trace: Trace | None,
    count: int,
    seed: np.random.SeedSequence,
    direction: int,
) -> tuple[Any, TraceIntegral | None]:
    """A group link's outage parts shared by its devices: the fixed windows, or each device's
    first random window as (starts, ends) lists; and the trace integral. (None, None) for a
    link without outages."""
    if spec is None or trace is None or not spec.outages:
        return None, None
    if isinstance(spec.outages, list):
        return FixedOutages([(w.start_s, w.end_s) for w in spec.outages]), TraceIntegral(trace)
    # a key of another length than the devices' (index, direction): a stream of its own
    rng = _rng(seed.entropy, (*seed.spawn_key, _FIRST_WINDOWS + direction))
    starts, ends = first_outages(spec.outages.mean_gap_s, spec.outages.mean_s, count, rng)
    return (starts.tolist(), ends.tolist()), TraceIntegral(trace)


def _cell_outages(spec: LinkSpec, seed: np.random.SeedSequence, direction: int) -> Outages | None:
    """A cell link's outages: its fixed windows, or random ones from its own generator."""
    if not spec.outages:
        return None
    if isinstance(spec.outages, list):
        return FixedOutages([(w.start_s, w.end_s) for w in spec.outages])
    rng = _rng(seed.entropy, (*seed.spawn_key, direction))
    return RandomOutages(spec.outages.mean_gap_s, spec.outages.mean_s, rng)


def _rng(entropy: Any, key: tuple[int, ...]) -> np.random.Generator:
    """The generator of one stream below a seed: like ``SeedSequence.spawn``, by key."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))
