"""Bandwidth traces: piecewise-constant link capacity that loops forever, and where it comes from.

A ``Trace`` holds ``rate_bps[i]`` on ``[times_s[i], times_s[i+1])``, the last step until
``period_s``, then repeats. ``transfer_s``/``transfer_end_s`` integrate it exactly (bisect on
precomputed cumulative bits, whole periods skipped arithmetically) in about a microsecond.
Sources: ``constant``; the readers ``read_mahimahi``, ``read_pensieve`` and ``read_csv``; the
seeded generators of ``synthetic``; ``load_link_trace`` maps a scenario ``LinkSpec`` onto them.

File rules (every problem is a ``TraceError`` naming the file, the line and the fix):

- Mahimahi: one line per 1500-byte delivery opportunity, an integer ms timestamp; the trace loops
  with period = the last timestamp (``mm-link``). Opportunities are counted in ``bin_s`` bins
  (default 100 ms: fine for transfers of a few kB, small enough to keep).
- Sampled traces (Pensieve ``time_s Mbit/s`` lines, CSV rows): sample i holds until sample i+1,
  the last one for the mean sample spacing, then the trace loops. Times are shifted to start at
  0; rows that share a time (1 s logging resolution) become one step with their mean rate.
- CSV columns are written ``NAME[:UNIT]``. Time: by default ``time_s`` or ``time_ms``; a name
  ending in ``_s``/``_ms`` or an explicit ``:s``/``:ms`` means numbers in that unit, ``:%H...`` a
  ``strptime`` format; otherwise values are timestamps in ISO 8601 or G-NetTrack's
  ``2019.12.14_10.16.30``. Bandwidth: by default the single column whose name ends in ``_bps``,
  ``_kbps``, ``_mbps`` or ``_gbps``; a column without that suffix needs a unit, e.g.
  ``DL_bitrate:kbps`` for the ucc5g logs.

Synthetic presets: per 1 s step, ln(rate) is a stationary Gaussian AR(1) process (median, spread
``sigma_ln``, correlation time ``tau_s``), times a two-state Markov fade process (mean gap, mean
length, rate factor; 0 = outage), capped at the technology's peak; seeded by (seed, preset name).
Per-second rates measured over 200 seeds x 600 s (Mbit/s; sources of the parameters: ``_PRESETS``):

==========  ===================  ======  =====================================================
preset      p10 / median / p90   zero    models
==========  ===================  ======  =====================================================
lte         0.80 / 2.9 / 9.4     3.4%    one phone's LTE uplink (Mahimahi LTE .up traces)
lte-down    2.7 / 7.9 / 22       1.3%    one phone's LTE downlink (Mahimahi LTE .down traces)
lte-cell    18 / 25 / 34         0       a whole 20 MHz LTE cell's uplink shared by its devices
3g          0.42 / 1.2 / 2.9     4.0%    one phone's 3G link (Norway HSDPA, Mahimahi UMTS/EVDO)
5g          4.4 / 27 / 116       0       one phone's 5G NSA link (ucc5g Cork downlink logs)
wifi        38 / 60 / 94         0       one device on a good 802.11ac link (assumed, no trace)
==========  ===================  ======  =====================================================
"""

from __future__ import annotations

import csv
import math
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from scenarios.schema import LinkSpec

FloatArray = npt.NDArray[np.float64]
MAHIMAHI_PACKET_BITS = 1500 * 8
UNIT_BPS = {"bps": 1.0, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}
TIMESTAMP_FORMATS = ("%Y.%m.%d_%H.%M.%S",)  # G-NetTrack (ucc5g); ISO 8601 is always tried


class TraceError(ValueError):
    """A trace file, format, column or parameter is wrong; the message says where and the fix."""


@dataclass(frozen=True, eq=False)
class Trace:
    """Piecewise-constant bandwidth that loops forever: rate_bps[i] holds on [times_s[i],
    times_s[i+1]), the last step until period_s; then it repeats. Arrays are read-only copies."""

    name: str
    times_s: FloatArray
    rate_bps: FloatArray
    period_s: float
    _times: list[float] = field(init=False, repr=False)
    _rates: list[float] = field(init=False, repr=False)
    _cum_bits: list[float] = field(init=False, repr=False)  # bits sent before step i
    _end_bits: list[float] = field(init=False, repr=False)  # bits sent by the end of step i
    _period_bits: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        times = np.array(self.times_s, dtype=np.float64)
        rates = np.array(self.rate_bps, dtype=np.float64)
        period = float(self.period_s)
        where = f"trace {self.name!r}"
        if times.ndim != 1 or rates.shape != times.shape or times.size == 0:
            raise TraceError(
                f"{where}: times_s and rate_bps must be 1-D arrays of one equal, non-zero "
                f"length, got shapes {times.shape} and {rates.shape}"
            )
        if times[0] != 0.0 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise TraceError(
                f"{where}: times_s must start at 0.0 and be finite, strictly increasing"
            )
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise TraceError(f"{where}: rate_bps must be finite and >= 0")
        if not math.isfinite(period) or period <= times[-1]:
            raise TraceError(
                f"{where}: period_s must be finite and after the last step start "
                f"{float(times[-1])!r}, got {period!r}"
            )
        step_bits = rates * np.diff(np.append(times, period))
        end_bits = np.cumsum(step_bits)
        if end_bits[-1] <= 0:
            raise TraceError(f"{where}: every rate is zero, so nothing could ever be sent")
        times.setflags(write=False)
        rates.setflags(write=False)
        for name, value in (
            ("times_s", times),
            ("rate_bps", rates),
            ("period_s", period),
            ("_times", times.tolist()),
            ("_rates", rates.tolist()),
            ("_cum_bits", [0.0, *end_bits[:-1].tolist()]),
            ("_end_bits", end_bits.tolist()),
            ("_period_bits", float(end_bits[-1])),
        ):
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (
            self.name == other.name
            and self.period_s == other.period_s
            and np.array_equal(self.times_s, other.times_s)
            and np.array_equal(self.rate_bps, other.rate_bps)
        )

    __hash__ = None  # type: ignore[assignment]

    def mean_bps(self) -> float:
        """The time-average rate over one period."""
        return self._period_bits / self.period_s

    def _locate(self, t_s: float) -> tuple[float, float, int]:
        """(loops, time into the period, step index) of ``t_s``."""
        loops, u = divmod(t_s, self.period_s)
        if u >= self.period_s:  # divmod rounding just below a period boundary
            loops, u = loops + 1.0, 0.0
        return loops, u, bisect_right(self._times, u) - 1

    def rate_at(self, t_s: float) -> float:
        """The rate in force at ``t_s`` (looping)."""
        return self._rates[self._locate(t_s)[2]]

    def next_change_s(self, t_s: float) -> float:
        """The first step boundary strictly after ``t_s`` (looping); inf for a one-step trace."""
        if len(self._times) == 1:
            return math.inf
        cursor = self.cursor(t_s)
        return cursor.end_s

    def cursor(self, t_s: float) -> TraceCursor:
        """A cursor on the step in force at ``t_s``, to walk the steps forward one by one."""
        loops, _, i = self._locate(t_s)
        cursor = TraceCursor(self, int(loops), i)
        while cursor.end_s <= t_s:  # rounding at a boundary
            cursor.advance()
        return cursor

    def transfer_s(self, start_s: float, nbytes: float) -> float:
        """Seconds until the last bit of ``nbytes`` sent from ``start_s`` at full capacity is
        delivered. Exact integration over steps and loops; zero-rate steps just wait."""
        bits = nbytes * 8.0
        if not bits > 0.0:
            if bits == 0.0:
                return 0.0
            raise ValueError(f"nbytes must be a finite number >= 0, got {nbytes!r}")
        rates = self._rates
        if len(rates) == 1:
            return bits / rates[0]
        times = self._times
        period = self.period_s
        u = start_s % period
        if u >= period:
            u = 0.0
        i = bisect_right(times, u) - 1
        rate = rates[i]
        step_end = times[i + 1] if i + 1 < len(times) else period
        if rate > 0.0 and bits <= (step_end - u) * rate:
            return bits / rate
        if bits == math.inf:
            raise ValueError(f"nbytes must be a finite number >= 0, got {nbytes!r}")
        period_bits = self._period_bits
        target = self._cum_bits[i] + rate * (u - times[i]) + bits  # bits since this period began
        whole, rest = divmod(target, period_bits)
        if rest <= 0.0:  # ends exactly at a period's end: the last bit left in the earlier period
            whole, rest = whole - 1.0, period_bits
        j = bisect_left(self._end_bits, rest)  # the step with cum < rest <= end: its rate is > 0
        if j == len(times):
            j -= 1
        return (whole * period - u) + times[j] + (rest - self._cum_bits[j]) / rates[j]

    def transfer_end_s(self, start_s: float, nbytes: float) -> float:
        """When the last bit of ``nbytes`` sent from ``start_s`` arrives (see ``transfer_s``)."""
        return start_s + self.transfer_s(start_s, nbytes)

    def scaled(self, factor: float) -> Trace:
        """The same trace with every rate multiplied by ``factor`` (> 0)."""
        if not (math.isfinite(factor) and factor > 0):
            raise TraceError(f"trace {self.name!r}: scale must be finite and > 0, got {factor!r}")
        if factor == 1.0:
            return self
        return Trace(f"{self.name}*{factor:g}", self.times_s, self.rate_bps * factor, self.period_s)


class TraceCursor:
    """The step of a trace in force, walked forward: ``start_s``/``end_s`` in absolute trace time
    (loops included; -inf/inf for a one-step trace), ``rate_bps`` on it. ``advance`` moves on."""

    __slots__ = ("_loop", "_step", "_trace", "end_s", "rate_bps", "start_s")

    def __init__(self, trace: Trace, loop: int, step: int) -> None:
        self._trace = trace
        self._loop = loop
        self._step = step
        self.start_s = 0.0
        self.end_s = 0.0
        self.rate_bps = 0.0
        self._load()

    def _load(self) -> None:
        times = self._trace._times
        period = self._trace.period_s
        base = self._loop * period
        self.start_s = base + times[self._step]
        if len(times) == 1:  # a constant trace never changes
            self.start_s, self.end_s = -math.inf, math.inf
        elif self._step + 1 < len(times):
            self.end_s = base + times[self._step + 1]
        else:  # computed as the next loop's first start, so the two agree exactly
            self.end_s = (self._loop + 1) * period + times[0]
        self.rate_bps = self._trace._rates[self._step]

    def advance(self) -> None:
        self._step += 1
        if self._step == len(self._trace._times):
            self._loop, self._step = self._loop + 1, 0
        self._load()


def constant(bandwidth_bps: float) -> Trace:
    """A link of fixed bandwidth (one step; offsets and ``next_change_s`` do not matter)."""
    if not (math.isfinite(bandwidth_bps) and bandwidth_bps > 0):
        raise TraceError(f"constant bandwidth must be finite and > 0 bit/s, got {bandwidth_bps!r}")
    return Trace(f"constant:{bandwidth_bps:g}bps", np.zeros(1), np.full(1, bandwidth_bps), 1.0)


# ---------------------------------------------------------------------------------- file readers


def _read_lines(path: str | Path) -> tuple[Path, list[str]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{p}: cannot read the trace file ({exc}); check the path") from exc
    return p, text.splitlines()


def _merge_steps(times_s: FloatArray, rate_bps: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Drop step boundaries where the rate does not change (fewer capacity events)."""
    keep = np.ones(times_s.size, dtype=bool)
    keep[1:] = rate_bps[1:] != rate_bps[:-1]
    return times_s[keep], rate_bps[keep]


def _sampled(
    p: Path, line_nos: list[int], times_s: FloatArray, rate_bps: FloatArray, name: str
) -> Trace:
    """A trace from rate samples: see the module rules for sampled traces."""
    if times_s.size < 2:
        raise TraceError(f"{p}: a sampled trace needs at least 2 samples, found {times_s.size}")
    back = np.flatnonzero(np.diff(times_s) < 0)
    if back.size:
        k = int(back[0]) + 1
        raise TraceError(
            f"{p}:{line_nos[k]}: time {float(times_s[k])!r} is before the previous one "
            f"{float(times_s[k - 1])!r}; sort the samples by time"
        )
    times_s = times_s - times_s[0]
    uniq, first = np.unique(times_s, return_index=True)
    if uniq.size < 2:
        raise TraceError(f"{p}: all samples share one time; a trace needs at least 2 distinct")
    counts = np.diff(np.append(first, times_s.size))
    rates = np.add.reduceat(rate_bps, first) / counts
    period = float(uniq[-1] + uniq[-1] / (uniq.size - 1))
    merged_t, merged_r = _merge_steps(uniq, rates)
    try:
        return Trace(name, merged_t, merged_r, period)
    except TraceError as exc:
        raise TraceError(f"{p}: {exc}") from exc


def read_mahimahi(path: str | Path, *, bin_s: float = 0.1) -> Trace:
    """A Mahimahi packet-delivery trace, counted in ``bin_s`` bins (whole ms), looping with
    period = the last timestamp."""
    p, lines = _read_lines(path)
    bin_ms = round(bin_s * 1000)
    if bin_ms < 1 or abs(bin_ms - bin_s * 1000) > 1e-9:
        raise TraceError(f"{p}: bin_s must be a whole number of ms >= 1 ms, got {bin_s!r}")
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    try:
        ms = np.array([text for _, text in rows], dtype=np.int64)
    except ValueError:
        n, text = next(((n, t) for n, t in rows if not t.isdigit()), rows[0])
        raise TraceError(
            f"{p}:{n}: expected one integer ms timestamp per line, got {text!r}; is this a "
            f"Mahimahi trace (format: mahimahi)?"
        ) from None
    if ms.size == 0:
        raise TraceError(f"{p}: the trace is empty; a Mahimahi trace has one timestamp per line")
    back = np.flatnonzero(np.diff(ms) < 0)
    if back.size or ms[0] < 0:
        k = int(back[0]) + 1 if back.size else 0
        raise TraceError(
            f"{p}:{rows[k][0]}: timestamps must be >= 0 and non-decreasing, got {int(ms[k])}"
        )
    period_ms = int(ms[-1])
    if period_ms <= 0:
        raise TraceError(f"{p}: the last timestamp must be > 0 ms (it is the loop period)")
    n_bins = -(-period_ms // bin_ms)
    counts = np.bincount((ms % period_ms) // bin_ms, minlength=n_bins)
    starts_ms = np.arange(n_bins, dtype=np.int64) * bin_ms
    widths_s = (np.minimum(starts_ms + bin_ms, period_ms) - starts_ms) / 1000.0
    times, rates = _merge_steps(starts_ms / 1000.0, counts * MAHIMAHI_PACKET_BITS / widths_s)
    return Trace(p.name, times, rates, period_ms / 1000.0)


def read_pensieve(path: str | Path) -> Trace:
    """A Pensieve "cooked" trace: ``time_s <whitespace> Mbit/s`` per line ('#' comments)."""
    p, lines = _read_lines(path)
    line_nos: list[int] = []
    values: list[tuple[float, float]] = []
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        try:
            t_s, mbps = float(parts[0]), float(parts[1])
            ok = len(parts) == 2 and math.isfinite(t_s) and math.isfinite(mbps) and mbps >= 0
        except (ValueError, IndexError):
            ok = False
        if not ok:
            raise TraceError(
                f"{p}:{n}: expected 'time_s Mbit/s' (two numbers, rate >= 0), got {text!r}"
            )
        line_nos.append(n)
        values.append((t_s, mbps))
    arr = np.array(values, dtype=np.float64).reshape(-1, 2)
    return _sampled(p, line_nos, arr[:, 0], arr[:, 1] * 1e6, p.name)


def _column(spec: str, header: list[str], p: Path, what: str) -> tuple[int, str]:
    name, _, unit = spec.partition(":")
    if name not in header:
        raise TraceError(f"{p}:1: no {what} column {name!r}; the header has {header}")
    return header.index(name), unit


def _time_parser(name: str, unit: str, p: Path) -> Callable[[str], float | datetime]:
    if not unit:
        unit = "s" if name.endswith("_s") else "ms" if name.endswith("_ms") else ""
    if unit in ("s", "ms"):
        scale = 1.0 if unit == "s" else 1e-3
        return lambda text: float(text) * scale
    if "%" in unit:
        return lambda text: datetime.strptime(text, unit)
    if unit:
        raise TraceError(f"{p}: time unit {unit!r} of {name!r}: use s, ms or a strptime format")

    def stamp(text: str) -> float | datetime:
        try:
            float(text)
        except ValueError:
            pass
        else:
            raise TraceError(
                f"time column {name!r} holds plain numbers; say their unit: "
                f"time_column: '{name}:s' or '{name}:ms'"
            )
        for fmt in TIMESTAMP_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                pass
        return datetime.fromisoformat(text)

    return stamp


def read_csv(
    path: str | Path, time_column: str | None = None, bandwidth_column: str | None = None
) -> Trace:
    """A CSV trace with a header row; columns are ``NAME[:UNIT]`` (see the module rules)."""
    p, lines = _read_lines(path)
    rows = list(csv.reader(lines))
    if not rows:
        raise TraceError(f"{p}: the file is empty; expected a header row, then one row per sample")
    header = [h.strip() for h in rows[0]]
    if time_column is None:
        time_column = next((c for c in ("time_s", "time_ms") if c in header), None)
        if time_column is None:
            raise TraceError(f"{p}:1: no time_s or time_ms column; name one with time_column")
    if bandwidth_column is None:
        found = [h for h in header if h.lower().rsplit("_", 1)[-1] in UNIT_BPS and "_" in h]
        if len(found) != 1:
            raise TraceError(
                f"{p}:1: expected exactly one column named *_bps, *_kbps, *_mbps or *_gbps, "
                f"found {found}; name one: bandwidth_column: 'NAME:UNIT', e.g. 'DL_bitrate:kbps'"
            )
        bandwidth_column = found[0]
    t_index, t_unit = _column(time_column, header, p, "time")
    b_index, b_unit = _column(bandwidth_column, header, p, "bandwidth")
    b_name = header[b_index]
    b_unit = (b_unit or (b_name.rsplit("_", 1)[-1] if "_" in b_name else "")).lower()
    if b_unit not in UNIT_BPS:
        raise TraceError(
            f"{p}: bandwidth column {b_name!r} has no unit; write bandwidth_column: "
            f"'{b_name}:kbps' (units: {', '.join(UNIT_BPS)}) or rename it to end in _kbps"
        )
    parse_time = _time_parser(header[t_index], t_unit, p)
    stamps: list[float | datetime] = []
    rates: list[float] = []
    line_nos: list[int] = []
    for n, row in enumerate(rows[1:], 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            stamps.append(parse_time(row[t_index].strip()))
        except TraceError as exc:
            raise TraceError(f"{p}:{n}: {exc}") from None
        except (ValueError, IndexError) as exc:
            raise TraceError(
                f"{p}:{n}: bad time {row[t_index] if t_index < len(row) else None!r} in "
                f"column {header[t_index]!r} ({exc})"
            ) from None
        try:
            rate = float(row[b_index]) * UNIT_BPS[b_unit]
            if not (math.isfinite(rate) and rate >= 0):
                raise ValueError("rate must be finite and >= 0")
        except (ValueError, IndexError) as exc:
            raise TraceError(
                f"{p}:{n}: bad bandwidth {row[b_index] if b_index < len(row) else None!r} in "
                f"column {b_name!r} ({exc}); expected a number >= 0"
            ) from None
        rates.append(rate)
        line_nos.append(n)
    first = stamps[0] if stamps else 0.0
    if isinstance(first, datetime):  # one parser per column: all datetimes or all floats
        try:
            times = [(s - first).total_seconds() for s in stamps if isinstance(s, datetime)]
        except TypeError as exc:
            raise TraceError(
                f"{p}: timestamps in {header[t_index]!r} mix time zones and naive times ({exc})"
            ) from None
    else:
        times = [s for s in stamps if isinstance(s, float)]
    return _sampled(p, line_nos, np.array(times, float), np.array(rates, float), p.name)


# ---------------------------------------------------------------------------- synthetic presets


@dataclass(frozen=True)
class _Preset:
    description: str
    median_mbps: float  # median of the AR(1) part
    sigma_ln: float  # stationary std of ln(rate)
    tau_s: float  # correlation time of ln(rate)
    fade_gap_s: float  # mean time between fades (inf: none)
    fade_s: float  # mean fade length
    fade_factor: float  # rate multiplier in a fade (0: outage)
    peak_mbps: float  # physical cap


# Where the numbers come from (per-second rates of the real traces, measured for this module):
# lte: Mahimahi LTE .up medians 1.04 (AT&T driving), 1.56 (AT&T 2016), 5.65 (Verizon), 11.2
#   (T-Mobile), geometric mean 3.2; sd of ln(rate) 0.8-1.1; lag-1 s autocorrelation 0.44-0.90
#   (tau ~3 s); 0.7-11% of seconds deliver nothing (-> 2.5% outages); peak: LTE Cat-4 UE, 50.
# lte-down: Mahimahi LTE .down medians 4.3 (Verizon) and 13.9 (T-Mobile), sd ln 0.6-0.9.
# lte-cell: a 20 MHz LTE uplink at ~1.25 bit/s/Hz per cell (3GPP TR 36.912 / ITU-R M.2134 uplink
#   cell spectral efficiencies 0.7-1.4), slow load-driven swings, peak 75 (64QAM, one layer).
# 3g: Norway HSDPA median 1.4-1.6, sd ln 0.62, autocorrelation 0.91; Mahimahi UMTS/EVDO .up
#   medians 1.0-1.07, sd ln 0.8, autocorrelation 0.75, ~5% empty seconds; peak HSDPA 14.
# 5g: ucc5g downlink medians 8 (driving) and 29 (static), autocorrelation 0.55-0.66 (tau ~2 s),
#   8-18% near-empty seconds (fades fall back to 5% of the rate, i.e. LTE/HSPA).
# wifi: no WiFi trace in the shared data; an assumed good 802.11ac link, peak 400.
_PRESETS: dict[str, _Preset] = {
    "lte": _Preset("one phone's LTE uplink", 3.0, 0.9, 3.0, 60.0, 1.5, 0.0, 50.0),
    "lte-down": _Preset("one phone's LTE downlink", 8.0, 0.8, 3.0, 120.0, 1.0, 0.0, 150.0),
    "lte-cell": _Preset(
        "a whole 20 MHz LTE cell's uplink, shared by its devices",
        *(25.0, 0.25, 10.0, math.inf, 1.0, 1.0, 75.0),
    ),
    "3g": _Preset("one phone's 3G (HSPA/UMTS) link", 1.2, 0.7, 6.0, 60.0, 2.0, 0.0, 14.0),
    "5g": _Preset(
        "one phone's 5G NSA link, falling back in fades",
        *(30.0, 1.1, 2.0, 30.0, 2.0, 0.05, 1000.0),
    ),
    "wifi": _Preset("one device on a good 802.11ac link", 60.0, 0.35, 5.0, 120.0, 1.0, 0.1, 400.0),
}
PRESETS: dict[str, str] = {name: p.description for name, p in _PRESETS.items()}
SYNTHETIC_STEP_S = 1.0


def synthetic(name: str, seed: int, duration_s: float = 600.0) -> Trace:
    """A seeded synthetic trace of preset ``name`` (see ``PRESETS``), 1 s steps, looping."""
    preset = _PRESETS.get(name)
    if preset is None:
        raise TraceError(f"unknown synthetic trace {name!r}; presets: {', '.join(_PRESETS)}")
    if not (math.isfinite(duration_s) and duration_s >= SYNTHETIC_STEP_S):
        raise TraceError(f"synthetic trace duration_s must be >= 1 s, got {duration_s!r}")
    n = math.ceil(duration_s / SYNTHETIC_STEP_S)
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
    phi = math.exp(-SYNTHETIC_STEP_S / preset.tau_s)
    noise = rng.standard_normal(n) * (preset.sigma_ln * math.sqrt(1.0 - phi * phi))
    noise[0] = rng.standard_normal() * preset.sigma_ln  # stationary start
    log_rate = noise.tolist()
    for k in range(1, n):
        log_rate[k] += phi * log_rate[k - 1]
    rate = preset.median_mbps * 1e6 * np.exp(np.array(log_rate))
    enter = 1.0 - math.exp(-SYNTHETIC_STEP_S / preset.fade_gap_s)
    leave = 1.0 - math.exp(-SYNTHETIC_STEP_S / preset.fade_s)
    draws = rng.random(n).tolist()
    fading = draws[0] < enter / (enter + leave)  # the chain's stationary share of fades
    in_fade = np.zeros(n, dtype=bool)
    for k in range(n):
        if k:
            fading = draws[k] >= leave if fading else draws[k] < enter
        in_fade[k] = fading
    rate[in_fade] *= preset.fade_factor
    np.minimum(rate, preset.peak_mbps * 1e6, out=rate)
    times = np.arange(n, dtype=np.float64) * SYNTHETIC_STEP_S
    return Trace(f"synthetic:{name}", times, rate, n * SYNTHETIC_STEP_S)


def load_link_trace(
    spec: LinkSpec, seed: int, *, base_dir: str | Path | None = None
) -> Trace | None:
    """The trace of a link spec: None for ideal; ``file:`` paths are relative to ``base_dir``
    (default: the working directory); ``synthetic:`` traces use ``seed``; then ``scale``."""
    if spec.kind == "ideal":
        return None
    if spec.kind == "constant":
        assert spec.bandwidth_mbps is not None  # the schema guarantees it
        trace = constant(spec.bandwidth_mbps * 1e6)
    else:
        assert spec.trace is not None
        source, _, value = spec.trace.partition(":")
        if source == "synthetic":
            trace = synthetic(value, seed)
        else:
            path = Path(value)
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            if spec.format == "mahimahi":
                trace = read_mahimahi(path)
            elif spec.format == "pensieve":
                trace = read_pensieve(path)
            elif spec.format == "csv":
                trace = read_csv(path, spec.time_column, spec.bandwidth_column)
            else:
                raise TraceError(f"trace {spec.trace!r}: format must be mahimahi, pensieve or csv")
    return trace.scaled(spec.scale)
