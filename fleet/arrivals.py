"""Request arrivals of a device group: when each device asks, as whole vectorised arrays.

``arrival_times`` returns every arrival of ``count`` devices as ``(device_index, t_s)``, sorted
by ``(t_s, device_index)``, either in ``[0, duration_s)`` or exactly ``requests_per_device`` per
device. Devices are independent; everything is drawn from the given generator, so the same
spec, count and generator state give identical arrays. Processes:

- poisson: rate ``rate_per_s`` per device (duration: a Poisson count, then uniform times).
- periodic: phase U[0, period_s) per device (or ``phase_s`` for all: devices in step), then every
  ``period_s``; each arrival is delayed by U[0, jitter_s). With a duration, arrivals delayed
  past its end are dropped.
- on-off: exponential on and off periods (means ``on_s``, ``off_s``), starting in a state drawn
  with P(on) = on_s / (on_s + off_s); Poisson at ``rate_per_s`` while on, nothing while off.
- trace: the file's times (``read_arrival_trace``) shifted to start at 0 loop with period
  span * n / (n - 1) (the span plus one mean gap); each device replays them from its own offset
  U[0, period), so the loop keeps the file's mean rate.

``offline_arrivals`` says which arrivals find their device offline (``DeviceGroup.availability``):
with ``probability`` each arrival independently with P = 1 - p_available; with ``on-off`` each
device alternates exponential online and offline periods (means ``up_s``, ``down_s``), starting
online with P = up_s / (up_s + down_s), drawn up front and vectorised like on-off arrivals.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scenarios.schema import (
    OnOffArrivals,
    OnOffAvailability,
    PeriodicArrivals,
    PoissonArrivals,
    ProbabilityAvailability,
    TraceArrivals,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrivalSpec = PoissonArrivals | PeriodicArrivals | OnOffArrivals | TraceArrivals
_BLOCK_ELEMENTS = 1 << 21  # on-off: periods drawn per block of devices (memory bound)


class ArrivalError(ValueError):
    """Bad arrival parameters or trace file; the message says where and how to fix it."""


def arrival_times(
    spec: ArrivalSpec,
    count: int,
    *,
    duration_s: float | None,
    requests_per_device: int | None,
    rng: np.random.Generator,
    base_dir: str | Path | None = None,
) -> tuple[IntArray, FloatArray]:
    """All arrivals of ``count`` devices: (device_index int64, t_s float64), sorted by
    (t_s, device_index). Give exactly one of ``duration_s`` and ``requests_per_device``.
    A relative trace path is read from ``base_dir`` (default: the working directory)."""
    if (duration_s is None) == (requests_per_device is None):
        raise ArrivalError("give exactly one of duration_s and requests_per_device")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise ArrivalError(f"duration_s must be finite and > 0, got {duration_s!r}")
    if requests_per_device is not None and requests_per_device < 0:
        raise ArrivalError(f"requests_per_device must be >= 0, got {requests_per_device}")
    if count < 0:
        raise ArrivalError(f"device count must be >= 0, got {count}")
    n = requests_per_device
    if count == 0 or n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if isinstance(spec, PoissonArrivals):
        device, t_s = _poisson(spec.rate_per_s, count, duration_s, n, rng)
    elif isinstance(spec, PeriodicArrivals):
        device, t_s = _periodic(spec, count, duration_s, n, rng)
    elif isinstance(spec, OnOffArrivals):
        device, t_s = _on_off(spec, count, duration_s, n, rng)
    elif isinstance(spec, TraceArrivals):
        path = Path(spec.path)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        device, t_s = _replay(read_arrival_trace(path), count, duration_s, n, rng)
    else:
        raise ArrivalError(f"unknown arrival process {spec!r}")
    order = np.lexsort((device, t_s))
    return device[order].astype(np.int64), t_s[order].astype(np.float64)


def _repeat_devices(counts: npt.NDArray[np.int64]) -> IntArray:
    return np.repeat(np.arange(counts.size, dtype=np.int64), counts)


def _below(t_s: FloatArray, duration_s: float) -> FloatArray:
    """``t_s`` with values rounded up to ``duration_s`` moved just below it."""
    return np.minimum(t_s, np.nextafter(duration_s, 0.0))


def _poisson(
    rate: float, count: int, duration_s: float | None, n: int | None, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    if duration_s is not None:
        device = _repeat_devices(rng.poisson(rate * duration_s, count))
        return device, _below(rng.random(device.size) * duration_s, duration_s)
    assert n is not None
    t_s = np.cumsum(rng.exponential(1.0 / rate, (count, n)), axis=1)
    return _repeat_devices(np.full(count, n)), t_s.ravel()


def _periodic(
    spec: PeriodicArrivals,
    count: int,
    duration_s: float | None,
    n: int | None,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray]:
    period = spec.period_s
    phase = rng.random(count) * period
    if spec.phase_s is not None:
        phase = np.full(count, spec.phase_s)
    if n is not None:
        per_device = n
    else:
        assert duration_s is not None
        per_device = math.ceil(duration_s / period)  # phase + k * period < duration_s
    t_s = phase[:, None] + np.arange(per_device) * period
    if spec.jitter_s > 0:
        t_s = t_s + rng.random(t_s.shape) * spec.jitter_s
    device = np.broadcast_to(np.arange(count, dtype=np.int64)[:, None], t_s.shape)
    if duration_s is None:
        return device.ravel(), t_s.ravel()
    keep = t_s < duration_s
    return device[keep], t_s[keep]


def _on_off(
    spec: OnOffArrivals,
    count: int,
    duration_s: float | None,
    n: int | None,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray]:
    on_s, off_s, rate = spec.on_s, spec.off_s, spec.rate_per_s
    if n is not None:
        need_on_s = n / rate
    else:
        assert duration_s is not None
        need_on_s = duration_s * on_s / (on_s + off_s)
    rounds = min(int(2.4 * need_on_s / on_s) + 8, _BLOCK_ELEMENTS)
    chunk = max(1, _BLOCK_ELEMENTS // rounds)
    devices, times = [], []
    for first in range(0, count, chunk):
        m = min(chunk, count - first)
        device, t_s = _on_off_chunk(on_s, off_s, rate, m, duration_s, n, rounds, rng)
        devices.append(device + first)
        times.append(t_s)
    if not devices:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(devices), np.concatenate(times)


def _on_off_chunk(
    on_s: float,
    off_s: float,
    rate: float,
    m: int,
    duration_s: float | None,
    n: int | None,
    rounds: int,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray]:
    """Arrivals of ``m`` devices: draw on/off periods in blocks until each device's periods
    cover its need (real time ``duration_s``, or the on-time of its n-th arrival), then place
    Poisson arrivals in on-time and map them onto the on periods."""
    state_on = rng.random(m) < on_s / (on_s + off_s)
    on_pos = np.zeros((m, 0))
    if n is not None:
        on_pos = np.cumsum(rng.exponential(1.0 / rate, (m, n)), axis=1)  # arrivals in on-time
    need = on_pos[:, -1] if n else np.zeros(m)
    dev, start, on_start, length = _on_periods(state_on, on_s, off_s, duration_s, need, rounds, rng)
    if duration_s is not None:
        length = np.minimum(start + length, duration_s) - start
        total_on = np.bincount(dev, weights=length, minlength=m)
        counts = rng.poisson(rate * total_on)
        arrival_dev = _repeat_devices(counts)
        on_pos_flat = rng.random(arrival_dev.size) * total_on[arrival_dev]
    else:
        total_on = np.bincount(dev, weights=length, minlength=m)
        arrival_dev = _repeat_devices(np.full(m, n))
        on_pos_flat = on_pos.ravel()
    t_s = _in_on_periods((dev, start, on_start, length), total_on, arrival_dev, on_pos_flat)
    if duration_s is not None:
        t_s = _below(t_s, duration_s)
    return arrival_dev, t_s


def _on_periods(
    state_on: BoolArray,
    on_s: float,
    off_s: float,
    duration_s: float | None,
    need: FloatArray,
    rounds: int,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """The on periods of each device as ``(device, start_s, on-time at start, length_s)``,
    sorted by device then on-time, drawn ``rounds`` periods at a time until each device
    covers ``duration_s`` of real time (or, without one, ``need`` of on-time).
    ``state_on`` (each device's current state) is updated in place."""
    m = state_on.size
    t_end = np.zeros(m)  # real time covered so far
    on_end = np.zeros(m)  # on-time covered so far
    pieces: list[tuple[IntArray, FloatArray, FloatArray, FloatArray]] = []
    active = np.arange(m, dtype=np.int64)
    odd = np.arange(rounds) % 2 == 1
    while active.size:
        is_on = state_on[active][:, None] ^ odd  # the periods alternate from the current state
        length = rng.exponential(1.0, is_on.shape) * np.where(is_on, on_s, off_s)
        ends = t_end[active][:, None] + np.cumsum(length, axis=1)
        on_len = np.where(is_on, length, 0.0)
        on_ends = on_end[active][:, None] + np.cumsum(on_len, axis=1)
        keep = is_on if duration_s is None else is_on & (ends - length < duration_s)
        rows = np.broadcast_to(active[:, None], keep.shape)[keep]
        pieces.append((rows, (ends - length)[keep], (on_ends - on_len)[keep], length[keep]))
        t_end[active], on_end[active] = ends[:, -1], on_ends[:, -1]
        state_on[active] ^= rounds % 2 == 1
        if duration_s is not None:
            covered = t_end[active] >= duration_s
        else:
            covered = on_end[active] > need[active]
        active = active[~covered]
    dev = np.concatenate([p[0] for p in pieces])
    order = np.lexsort((np.concatenate([p[2] for p in pieces]), dev))
    start, on_start, length = (np.concatenate([p[i] for p in pieces])[order] for i in (1, 2, 3))
    return dev[order], start, on_start, length


def _in_on_periods(
    periods: tuple[IntArray, FloatArray, FloatArray, FloatArray],
    total_on: np.ndarray,  # float64 (np.bincount with weights)
    arrival_dev: IntArray,
    on_pos: FloatArray,
) -> FloatArray:
    """Real times of arrivals at on-time ``on_pos`` of their device ``arrival_dev``, given the
    sorted on ``periods`` (as ``_on_periods`` returns them) and each device's total on-time."""
    dev, start, on_start, length = periods
    # Find each arrival's on period by one search on (device base + on-time); rounding can only
    # move it to a neighbour period, so clamp it into the device's own periods.
    base = np.concatenate(([0.0], np.cumsum(total_on)[:-1]))
    j = np.searchsorted(base[dev] + on_start, base[arrival_dev] + on_pos, side="right") - 1
    first = np.searchsorted(dev, arrival_dev, side="left")
    last = np.searchsorted(dev, arrival_dev, side="right") - 1
    j = np.clip(j, first, last)
    t_s: FloatArray = start[j] + np.clip(on_pos - on_start[j], 0.0, length[j])
    return t_s


def offline_arrivals(
    spec: ProbabilityAvailability | OnOffAvailability | None,
    device: IntArray,
    t_s: FloatArray,
    rng: np.random.Generator,
) -> BoolArray:
    """For each arrival ``(device[i], t_s[i])`` of one group, whether its device is offline
    then. All False (and no draws) without ``spec``.

    On-off devices are sampled exactly at their arrival instants: alternating exponential
    periods are a two-state Markov chain, so the state at an arrival depends only on the state
    at the device's previous arrival (or at time 0, drawn stationary) and the time between. Each
    step either sets the state (up, down) or keeps it, decided by one uniform draw, so every
    state is that of the last step that set it: one sort and one running maximum, no loop."""
    n = device.size
    if spec is None or n == 0:
        return np.zeros(n, dtype=bool)
    if isinstance(spec, ProbabilityAvailability):
        return rng.random(n) >= spec.p_available
    if not isinstance(spec, OnOffAvailability):
        raise ArrivalError(f"unknown availability {spec!r}; use probability or on-off")
    p_up = spec.up_s / (spec.up_s + spec.down_s)
    order = np.lexsort((t_s, device))
    d, t = device[order], t_s[order]
    first = np.ones(n, dtype=bool)
    first[1:] = d[1:] != d[:-1]
    previous_s = np.zeros(n)
    previous_s[1:] = t[:-1]
    previous_s[first] = 0.0
    # P(up after dt | up) = p_up + (1 - p_up) e and P(up after dt | down) = p_up (1 - e)
    e = np.exp(-(1.0 / spec.up_s + 1.0 / spec.down_s) * (t - previous_s))
    u = rng.random(n)
    set_up = u < p_up * (1.0 - e)
    set_down = u >= p_up + (1.0 - p_up) * e
    up_at_zero = rng.random(int(first.sum())) < p_up
    up = set_up.copy()
    up[first] = set_up[first] | (~set_down[first] & up_at_zero)
    setter = set_up | set_down | first
    source = np.maximum.accumulate(np.where(setter, np.arange(n), -1))
    offline = np.empty(n, dtype=bool)
    offline[order] = ~up[source]
    return offline


def _replay(
    x_s: FloatArray, count: int, duration_s: float | None, n: int | None, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    x_s = x_s - x_s[0]
    size = x_s.size
    span = float(x_s[-1])
    if size < 2 or span <= 0:
        raise ArrivalError(
            "an arrival trace needs at least 2 distinct times to loop; add arrivals to the file"
        )
    period = span * size / (size - 1)
    offset = rng.random(count) * period
    k0 = np.searchsorted(x_s, offset, side="left")  # each device's first arrival in the file
    if n is not None:
        counts = np.full(count, n, dtype=np.int64)
    else:
        assert duration_s is not None
        y = duration_s + offset  # the file's indices q with x[q % size] + q // size * period < y
        loops = np.floor(y / period)
        counts = (loops * size).astype(np.int64) + np.searchsorted(x_s, y - loops * period)
        counts -= k0
    device = _repeat_devices(counts)
    starts = np.cumsum(counts) - counts
    q = k0[device] + (np.arange(device.size) - starts[device])
    t_s = x_s[q % size] + (q // size) * period - offset[device]  # >= 0: x_s[k0] >= offset
    if duration_s is None:
        return device, t_s
    keep = t_s < duration_s  # drops rounding strays at the end
    return device[keep], t_s[keep]


def read_arrival_trace(path: str | Path) -> FloatArray:
    """Arrival times in seconds: one per line ('#' comments and blank lines allowed), or a CSV
    with a header row holding a ``time_s`` column. Times must be >= 0 and sorted."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArrivalError(f"{p}: cannot read the arrival trace ({exc}); check the path") from exc
    rows = [(k, line.split("#", 1)[0].strip()) for k, line in enumerate(lines, 1)]
    rows = [(k, text) for k, text in rows if text]
    if not rows:
        raise ArrivalError(f"{p}: no arrival times; write one time in seconds per line")
    column = None
    if "," in rows[0][1] or not _is_number(rows[0][1]):
        header = [h.strip() for h in rows[0][1].split(",")]
        if "time_s" not in header:
            raise ArrivalError(
                f"{p}:{rows[0][0]}: expected a number or a CSV header with a time_s column, "
                f"got {rows[0][1]!r}"
            )
        column, rows = header.index("time_s"), rows[1:]
    times: list[float] = []
    for k, text in rows:
        cells = text.split(",") if column is not None else [text]
        cell = cells[column or 0].strip() if len(cells) > (column or 0) else ""
        t_s = float(cell) if _is_number(cell) else math.nan
        if not (math.isfinite(t_s) and t_s >= 0):
            raise ArrivalError(f"{p}:{k}: expected a time in seconds >= 0, got {cell!r}")
        if times and t_s < times[-1]:
            raise ArrivalError(
                f"{p}:{k}: time {t_s!r} is before the previous {times[-1]!r}; sort the file"
            )
        times.append(t_s)
    if not times:
        raise ArrivalError(f"{p}: the CSV has a header but no rows")
    return np.array(times, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
