"""Trace file readers: Mahimahi packet-delivery traces, Pensieve "cooked" traces and CSV.

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
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from fleet.network.traces import FloatArray, Trace, TraceError

MAHIMAHI_PACKET_BITS = 1500 * 8
UNIT_BPS = {"bps": 1.0, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}
TIMESTAMP_FORMATS = ("%Y.%m.%d_%H.%M.%S",)  # G-NetTrack (ucc5g); ISO 8601 is always tried


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
    t_index, t_unit, b_index, b_unit = _csv_columns(header, time_column, bandwidth_column, p)
    parse_time = _time_parser(header[t_index], t_unit, p)
    stamps: list[float | datetime] = []
    rates: list[float] = []
    line_nos: list[int] = []
    for n, row in enumerate(rows[1:], 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        stamps.append(_csv_time(row, t_index, parse_time, header, p, n))
        rates.append(_csv_rate(row, b_index, b_unit, header, p, n))
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


def _csv_columns(
    header: list[str], time_column: str | None, bandwidth_column: str | None, p: Path
) -> tuple[int, str, int, str]:
    """(time index, time unit, bandwidth index, bandwidth unit) of a CSV header: the named
    columns, or ``time_s``/``time_ms`` and the one column whose name ends in a rate unit."""
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
    return t_index, t_unit, b_index, b_unit


def _csv_time(
    row: list[str],
    t_index: int,
    parse_time: Callable[[str], float | datetime],
    header: list[str],
    p: Path,
    n: int,
) -> float | datetime:
    """The time cell of data row ``row`` (line ``n``), parsed."""
    try:
        return parse_time(row[t_index].strip())
    except TraceError as exc:
        raise TraceError(f"{p}:{n}: {exc}") from None
    except (ValueError, IndexError) as exc:
        raise TraceError(
            f"{p}:{n}: bad time {row[t_index] if t_index < len(row) else None!r} in "
            f"column {header[t_index]!r} ({exc})"
        ) from None


def _csv_rate(
    row: list[str], b_index: int, b_unit: str, header: list[str], p: Path, n: int
) -> float:
    """The bandwidth cell of data row ``row`` (line ``n``) in bit/s: finite and >= 0."""
    try:
        rate = float(row[b_index]) * UNIT_BPS[b_unit]
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError("rate must be finite and >= 0")
    except (ValueError, IndexError) as exc:
        raise TraceError(
            f"{p}:{n}: bad bandwidth {row[b_index] if b_index < len(row) else None!r} in "
            f"column {header[b_index]!r} ({exc}); expected a number >= 0"
        ) from None
    return rate
