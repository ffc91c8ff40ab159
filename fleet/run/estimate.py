"""What a scenario will cost before it runs, and the limits that refuse what cannot finish here.

``estimate(scenario)`` predicts from the scenario alone (no compute, no model): devices,
requests, generated tokens, simulation events, the simulated horizon, random outage windows the
links will draw, replica failures, ``servers.parquet`` windows and the peak memory of the run
(a sum of per-item costs measured on the development machine; see the constants). ``problems``
compares one estimate with ``Limits`` and names, for each limit passed, the field to change;
``enforce`` does it for every point of a sweep and raises one ``ScenarioError``.

``Limits.here()`` allows 80% of the memory this machine has available now and fixed budgets for
the rest (``DEFAULT_*``); ``slicer run --ignore-limits`` (``runner.run(ignore_limits=True)``)
skips the check. The estimate is an order of magnitude, not a promise: it exists so that a
value legal in type but absurd in size (a billion devices, outages every nanosecond) ends in
seconds with a message instead of a hang or a machine out of memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from scenarios import RunSpec, Scenario
from scenarios.errors import Problem, ScenarioError
from scenarios.schema import (
    LinkSpec,
    OnOffArrivals,
    PeriodicArrivals,
    PoissonArrivals,
    RandomOutages,
    TraceArrivals,
)
from scenarios.sweep import capped, points_text

# Measured with replayed runs on the 2-core development machine (peak RSS of 300k and 3M
# requests, 200k devices; events per request from summary.json), rounded up.
BASE_BYTES = 500e6  # the process: numpy, simpy, pyarrow, the model's cost profile
BYTES_PER_REQUEST = 1000.0  # request rows, queues, futures, the row groups being written
BYTES_PER_DEVICE = 300.0  # device state and links
BYTES_PER_STEP = 300.0  # task: generate: a generated token's step row and state
BYTES_PER_WINDOW = 600.0  # one replica's figures in one record.window_s window
BYTES_PER_PERIOD = 40.0  # on-off arrivals: one on period held while arrivals are drawn
EVENTS_PER_REQUEST = 5.0  # measured 4.2 (arrival, head, uplink, batch, downlink)
EVENTS_PER_STEP = 3.0
EVENTS_PER_WALL_S = 50_000.0  # simpy on one shared core here; 100-450k on a quiet machine

DEFAULT_EVENTS = 2e9  # about 11 hours at EVENTS_PER_WALL_S
DEFAULT_LINK_WINDOWS = 5e7  # random outage windows drawn one at a time (about 1-2 us each)
DEFAULT_FAILURES = 1e6  # replica failures (two events each; a replica may have 1e6)
DEFAULT_SERVER_WINDOWS = 2e7  # replica x record.window_s windows
MEMORY_SHARE = 0.8  # of the memory available when the run starts
HUGE_DURATION_S = 1e8  # a duration_s beyond this (3 years) is named as the field to change


@dataclass(frozen=True)
class Limits:
    """What one run may use; every count is a total over the whole run."""

    memory_bytes: float
    events: float = DEFAULT_EVENTS
    link_windows: float = DEFAULT_LINK_WINDOWS
    failures: float = DEFAULT_FAILURES
    server_windows: float = DEFAULT_SERVER_WINDOWS

    @classmethod
    def here(cls) -> Limits:
        """``MEMORY_SHARE`` of this machine's available memory, and the default budgets."""
        return cls(memory_bytes=MEMORY_SHARE * available_memory_bytes())


@dataclass(frozen=True)
class Estimate:
    devices: int
    requests: float
    steps: float  # generated tokens (task: generate)
    events: float
    horizon_s: float  # simulated time the arrivals span
    link_windows: float
    failures: float
    server_windows: float
    memory_bytes: float
    group_requests: tuple[float, ...]

    @property
    def wall_s(self) -> float:
        """Rough wall time of the event loop here (compute not included)."""
        return self.events / EVENTS_PER_WALL_S

    def text(self) -> str:
        """One line: the figures a user compares with the limits."""
        steps = f", {self.steps:,.0f} tokens" if self.steps else ""
        return (
            f"about {self.requests:,.0f} requests{steps} from {self.devices:,} devices, "
            f"{self.events:.2g} events (~{_duration(self.wall_s)} of event loop), "
            f"~{self.memory_bytes / 1e9:.2g} GB peak memory"
        )


def available_memory_bytes() -> float:
    """``MemAvailable`` from /proc/meminfo, else half the physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate(scenario: Scenario) -> Estimate:
    """The cost of one run of ``scenario`` (a sweep point, or a scenario without a sweep)."""
    per_group = [_group_requests(scenario, i) for i in range(len(scenario.fleet))]
    requests = sum(r for r, _ in per_group)
    horizon_s = scenario.duration_s or max((h for _, h in per_group), default=0.0)
    devices = sum(g.count for g in scenario.fleet)
    steps = requests * scenario.model.new_tokens
    windows = sum(n for _, n in _link_windows(scenario, horizon_s))
    servers = scenario.servers
    failures = 0.0
    if servers.failures is not None:
        cycle_s = servers.failures.mtbf_s + servers.failures.mttr_s
        failures = servers.replicas * (horizon_s / cycle_s + 1)
    server_windows = servers.replicas * (horizon_s / scenario.record.window_s + 1)
    periods = sum(
        g.count * (horizon_s / (g.arrivals.on_s + g.arrivals.off_s) + 1)
        for g in scenario.fleet
        if isinstance(g.arrivals, OnOffArrivals)
    )
    memory = (
        BASE_BYTES
        + devices * BYTES_PER_DEVICE
        + requests * BYTES_PER_REQUEST
        + steps * BYTES_PER_STEP
        + server_windows * BYTES_PER_WINDOW
        + min(periods, 2**21) * BYTES_PER_PERIOD  # drawn per block of devices
    )
    events = requests * EVENTS_PER_REQUEST + steps * EVENTS_PER_STEP + 2 * failures
    return Estimate(
        devices=devices,
        requests=requests,
        steps=steps,
        events=events,
        horizon_s=horizon_s,
        link_windows=windows,
        failures=failures,
        server_windows=server_windows,
        memory_bytes=memory,
        group_requests=tuple(r for r, _ in per_group),
    )


def problems(scenario: Scenario, limits: Limits) -> list[Problem]:
    """One problem per limit the run of ``scenario`` would pass, at the field to change."""
    est = estimate(scenario)
    hint = "or pass --ignore-limits if this machine can take it"
    found: list[Problem] = []
    if est.memory_bytes > limits.memory_bytes:
        found.append(
            Problem(
                _load_field(scenario, est),
                f"{est.text()}: more than the {limits.memory_bytes / 1e9:.3g} GB this machine "
                f"allows ({MEMORY_SHARE:.0%} of its available memory); {_load_hint(scenario)} "
                f"({hint})",
            )
        )
    if est.events > limits.events and est.memory_bytes <= limits.memory_bytes:  # said once
        found.append(
            Problem(
                _load_field(scenario, est),
                f"{est.text()}: more than the {limits.events:.3g} events a run may take; "
                f"{_load_hint(scenario)} ({hint})",
            )
        )
    if est.link_windows > limits.link_windows:
        for where, windows in _link_windows(scenario, est.horizon_s):
            found.append(
                Problem(
                    where,
                    f"about {windows:.3g} outage windows over {_duration(est.horizon_s)} of "
                    f"simulated time, more than the {limits.link_windows:.3g} a run may draw; "
                    f"make mean_gap_s + mean_s larger ({hint})",
                )
            )
    if est.failures > limits.failures:
        found.append(
            Problem(
                "servers.failures",
                f"about {est.failures:.3g} replica failures over {_duration(est.horizon_s)} of "
                f"simulated time, more than the {limits.failures:.3g} a run may take; make "
                f"mtbf_s + mttr_s larger ({hint})",
            )
        )
    if est.server_windows > limits.server_windows:
        found.append(
            Problem(
                "record.window_s",
                f"{_duration(est.horizon_s)} of simulated time in windows of "
                f"{scenario.record.window_s:g} s is {est.server_windows:.3g} replica windows, "
                f"more than the {limits.server_windows:.3g} a run may record; make window_s "
                f"larger ({hint})",
            )
        )
    return found


def enforce(points: Sequence[RunSpec], limits: Limits) -> None:
    """Raise ``ScenarioError`` naming every point (of a sweep) that passes a limit."""
    found: list[Problem] = []
    swept = len(points) > 1
    for point in points:
        for problem in problems(point.scenario, limits):
            label = f"{points_text([point.index], [point.params])}: " if swept else ""
            found.append(Problem(problem.path, label + problem.message))
    if found:
        raise ScenarioError(capped(found))


def _group_requests(scenario: Scenario, i: int) -> tuple[float, float]:
    """(expected requests, simulated seconds they span) of ``fleet[i]``."""
    group = scenario.fleet[i]
    rate = _rate_per_s(group.arrivals)
    n = scenario.requests_per_device
    if n is not None:
        return float(group.count) * n, (n / rate if rate > 0 else 0.0)
    duration_s = scenario.duration_s or 0.0
    return group.count * rate * duration_s, duration_s


def _rate_per_s(arrivals: object) -> float:
    """Mean requests per second of one device."""
    if isinstance(arrivals, PoissonArrivals):
        return arrivals.rate_per_s
    if isinstance(arrivals, PeriodicArrivals):
        return 1.0 / arrivals.period_s
    if isinstance(arrivals, OnOffArrivals):
        return arrivals.rate_per_s * arrivals.on_s / (arrivals.on_s + arrivals.off_s)
    if isinstance(arrivals, TraceArrivals):
        return _trace_rate_per_s(arrivals.path)
    return 0.0


def _trace_rate_per_s(path: str) -> float:
    """The mean rate an arrival trace loops at (0 when unreadable: ``check`` reports it)."""
    from fleet.arrivals import ArrivalError, read_arrival_trace

    try:
        times = read_arrival_trace(path)
    except ArrivalError:
        return 0.0
    span_s = float(times[-1] - times[0])
    return (times.size - 1) / span_s if times.size > 1 and span_s > 0 else 0.0


def _link_windows(scenario: Scenario, horizon_s: float) -> list[tuple[str, float]]:
    """(field path, windows) of every link with random outages: one link per device of a group
    (its own uplink or downlink), one per cell."""
    links: list[tuple[str, LinkSpec | None, int]] = []
    for i, group in enumerate(scenario.fleet):
        links += [(f"fleet[{i}].uplink", group.uplink, group.count)]
        links += [(f"fleet[{i}].downlink", group.downlink, group.count)]
    for j, cell in enumerate(scenario.network.cells):
        links += [(f"network.cells[{j}].uplink", cell.uplink, 1)]
        links += [(f"network.cells[{j}].downlink", cell.downlink, 1)]
    out = []
    for where, link, count in links:
        if link is not None and isinstance(link.outages, RandomOutages):
            cycle_s = link.outages.mean_gap_s + link.outages.mean_s
            out.append((f"{where}.outages", count * (horizon_s / cycle_s + 1)))
    return out


def _load_field(scenario: Scenario, est: Estimate) -> str:
    """The field that most decides the run's size: the biggest group's count or arrivals, or
    an absurd duration_s."""
    if scenario.duration_s is not None and scenario.duration_s > HUGE_DURATION_S:
        return "duration_s"
    i = max(range(len(est.group_requests)), key=est.group_requests.__getitem__)
    count = scenario.fleet[i].count
    per_device = est.group_requests[i] / count
    if count >= per_device:
        return f"fleet[{i}].count"
    return "requests_per_device" if scenario.requests_per_device else f"fleet[{i}].arrivals"


def _load_hint(scenario: Scenario) -> str:
    knob = "requests_per_device" if scenario.requests_per_device else "duration_s"
    return f"lower the device counts, their arrival rates or {knob}"


def _duration(seconds: float) -> str:
    """Seconds in words a person reads at a glance: 45 s, 3.2 h, 4.1e+290 years."""
    if not math.isfinite(seconds):
        return str(seconds)
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"
