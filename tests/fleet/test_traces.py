"""Bandwidth traces: exact integration, file formats and their errors, seeded synthetic presets."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from fleet.network.trace_files import read_csv, read_mahimahi, read_pensieve
from fleet.network.trace_source import load_link_trace
from fleet.network.trace_synthetic import PRESETS, synthetic
from fleet.network.traces import Trace, TraceError, constant
from scenarios.schema import LinkSpec

SHARED_TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"


def steps() -> Trace:
    """1 B/s on [0, 2), nothing on [2, 3), 2 B/s on [3, 5); 6 B per 5 s period."""
    return Trace("steps", np.array([0.0, 2.0, 3.0]), np.array([8.0, 0.0, 16.0]), 5.0)


def reference_end_s(trace: Trace, start_s: float, nbytes: float) -> float:
    """Walk the steps one by one (a second, slow implementation)."""
    bits, t = nbytes * 8.0, start_s
    while True:
        rate, change = trace.rate_at(t), trace.next_change_s(t)
        if rate > 0 and rate * (change - t) >= bits:
            return t + bits / rate
        bits -= rate * (change - t)
        t = change


@pytest.mark.parametrize(
    ("start_s", "nbytes", "end_s"),
    [
        (0.0, 1.0, 1.0),  # inside the first step
        (1.0, 2.0, 3.5),  # 1 B, wait out the zero step, 1 B at 2 B/s
        (2.5, 1.0, 3.5),  # starts in the zero step
        (4.0, 2.0, 5.0),  # ends exactly at the period's end
        (4.0, 3.0, 6.0),  # into the next loop
        (4.5, 7.0, 10.0),  # a whole period skipped, ends exactly at a period's end
        (5.0 * 1000 + 4.5, 7.0, 5.0 * 1000 + 10.0),  # far into the loops
        (3.0, 0.0, 3.0),  # nothing to send
    ],
)
def test_transfer_end_hand_computed(start_s: float, nbytes: float, end_s: float) -> None:
    assert steps().transfer_end_s(start_s, nbytes) == pytest.approx(end_s, rel=1e-12, abs=1e-12)


def test_last_bit_leaves_before_trailing_zero_step() -> None:
    trace = Trace("tail-zero", np.array([0.0, 1.0]), np.array([8.0, 0.0]), 4.0)  # 1 B per 4 s
    assert trace.transfer_end_s(0.0, 2.0) == 5.0  # not 8.0: the second byte is done at 4 + 1
    assert trace.transfer_end_s(0.5, 1.0) == 4.5
    assert trace.transfer_end_s(1.0, 1.0) == 5.0


def test_transfer_matches_step_walk_on_random_traces() -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        n = int(rng.integers(2, 7))
        times = np.concatenate([[0.0], np.sort(rng.choice(np.arange(1, 30), n - 1, False))])
        rates = rng.choice([0.0, 0.0, 1.0, 8.0, 12.5, 80.0], n)
        rates[0] = max(rates[0], 3.0)
        trace = Trace("random", times, rates, float(times[-1] + rng.integers(1, 5)))
        for _ in range(10):
            start, nbytes = float(rng.uniform(0, 200)), float(rng.choice([0.1, 3.0, 40.0, 900.0]))
            expected = reference_end_s(trace, start, nbytes)
            assert trace.transfer_end_s(start, nbytes) == pytest.approx(expected, rel=1e-10)


def test_constant_is_exact_and_never_changes() -> None:
    trace = constant(12.5e6)
    for start, nbytes in [(0.0, 1.0), (0.3, 12345.0), (98765.4321, 3e6)]:
        assert trace.transfer_end_s(start, nbytes) == start + nbytes * 8 / 12.5e6
    assert trace.next_change_s(5.0) == math.inf
    assert trace.cursor(5.0).end_s == math.inf  # a shared link never wakes for a change
    assert trace.rate_at(1e9) == 12.5e6
    assert trace.mean_bps() == 12.5e6


def test_rate_at_and_next_change_loop() -> None:
    trace = steps()
    assert [trace.rate_at(t) for t in (0.0, 1.99, 2.0, 3.0, 4.99, 5.0, 7.5, 13.0)] == [
        8.0, 8.0, 0.0, 16.0, 16.0, 8.0, 0.0, 16.0,
    ]  # fmt: skip
    assert [trace.next_change_s(t) for t in (0.0, 2.0, 2.5, 4.0, 5.0, 12.0)] == [
        2.0, 3.0, 3.0, 5.0, 7.0, 13.0,
    ]  # fmt: skip
    assert trace.mean_bps() == 48.0 / 5.0


def test_cursor_walks_steps_across_loops() -> None:
    cursor = steps().cursor(4.0)
    seen = []
    for _ in range(4):
        seen.append((cursor.start_s, cursor.end_s, cursor.rate_bps))
        cursor.advance()
    assert seen == [(3.0, 5.0, 16.0), (5.0, 7.0, 8.0), (7.0, 8.0, 0.0), (8.0, 10.0, 16.0)]


def test_scaled_multiplies_rates() -> None:
    trace = steps().scaled(2.0)
    assert list(trace.rate_bps) == [16.0, 0.0, 32.0]
    assert trace.transfer_end_s(0.0, 2.0) == 1.0
    assert steps().scaled(1.0) == steps()
    with pytest.raises(TraceError, match="scale"):
        steps().scaled(0.0)


@pytest.mark.parametrize(
    ("times", "rates", "period", "match"),
    [
        ([0.5, 1.0], [1.0, 1.0], 2.0, "start at 0.0"),
        ([0.0, 1.0, 1.0], [1.0, 1.0, 1.0], 2.0, "strictly increasing"),
        ([0.0, 1.0], [1.0, -1.0], 2.0, ">= 0"),
        ([0.0, 1.0], [1.0, 1.0], 1.0, "period_s"),
        ([0.0, 1.0], [0.0, 0.0], 2.0, "every rate is zero"),
        ([0.0, 1.0], [1.0], 2.0, "shapes"),
    ],
)
def test_bad_traces_are_rejected(
    times: list[float], rates: list[float], period: float, match: str
) -> None:
    with pytest.raises(TraceError, match=match):
        Trace("bad", np.array(times), np.array(rates), period)


def test_arrays_are_read_only_and_equality_compares_values() -> None:
    trace = steps()
    with pytest.raises(ValueError, match="read-only"):
        trace.rate_bps[0] = 1.0
    assert trace == steps()
    assert trace != steps().scaled(2.0)


def test_transfer_call_is_fast() -> None:
    trace = synthetic("lte", 3)
    rng = np.random.default_rng(0)
    starts, sizes = rng.uniform(0, 1e5, 20000).tolist(), rng.uniform(1e3, 1e6, 20000).tolist()
    end = trace.transfer_end_s
    t0 = time.perf_counter()
    for start, nbytes in zip(starts, sizes, strict=True):
        end(start, nbytes)
    per_call_s = (time.perf_counter() - t0) / 20000
    assert per_call_s < 10e-6  # about 1 us here; a generous bound for a busy machine


# ------------------------------------------------------------------------------------ files


def test_mahimahi_bins_delivery_opportunities(tmp_path: Path) -> None:
    path = tmp_path / "link.up"
    path.write_text("0\n0\n5\n100\n150\n200\n")  # the 200 ms one is t=0 of the next loop
    trace = read_mahimahi(path)
    assert trace.period_s == 0.2
    assert list(trace.times_s) == [0.0, 0.1]
    assert list(trace.rate_bps) == [4 * 12000 / 0.1, 2 * 12000 / 0.1]
    assert trace.mean_bps() == pytest.approx(6 * 12000 / 0.2)
    coarse = read_mahimahi(path, bin_s=0.15)  # a partial last bin counts over its own width
    assert list(coarse.rate_bps) == [pytest.approx(5 * 12000 / 0.15), 1 * 12000 / 0.05]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0\n12\nabc\n", r"link.up:3: expected one integer ms timestamp"),
        ("0\n12\n7\n", r"link.up:3: timestamps must be >= 0 and non-decreasing"),
        ("", "empty"),
        ("0\n0\n", "last timestamp must be > 0"),
    ],
)
def test_mahimahi_errors_name_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "link.up"
    path.write_text(text)
    with pytest.raises(TraceError, match=match):
        read_mahimahi(path)


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        read_pensieve(tmp_path / "nope")


def test_pensieve_samples_hold_until_next_and_loop(tmp_path: Path) -> None:
    path = tmp_path / "cooked"
    path.write_text("# time_s Mbit/s\n0.0\t1.0\n1.0\t2.0\n2.0 2.0\n\n3.0\t0.5\n")
    trace = read_pensieve(path)
    assert list(trace.times_s) == [0.0, 1.0, 3.0]  # equal neighbours merged
    assert list(trace.rate_bps) == [1e6, 2e6, 0.5e6]
    assert trace.period_s == 4.0  # the last sample holds for the mean spacing
    assert trace.rate_at(4.5) == 1e6


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0 1\n1 x\n", r"cooked:2: expected 'time_s Mbit/s'"),
        ("0 1\n1 -2\n", r"cooked:2: expected 'time_s Mbit/s'"),
        ("0 1\n", "at least 2 samples"),
        ("0 1\n2 1\n1 1\n", r"cooked:3: time 1.0 is before the previous one 2.0"),
    ],
)
def test_pensieve_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "cooked"
    path.write_text(text)
    with pytest.raises(TraceError, match=match):
        read_pensieve(path)


def test_csv_default_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("time_s,up_mbps,note\n10,2,a\n11,4,b\n12,4,c\n")
    trace = read_csv(path)
    assert list(trace.times_s) == [0.0, 1.0]
    assert list(trace.rate_bps) == [2e6, 4e6]
    assert trace.period_s == 3.0
    path.write_text("time_ms,up_kbps\n0,500\n250,1000\n")
    assert list(read_csv(path).times_s) == [0.0, 0.25]
    assert list(read_csv(path).rate_bps) == [5e5, 1e6]


def test_csv_gnettrack_timestamps_and_explicit_units(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text(
        "Timestamp,DL_bitrate,UL_bitrate\n"
        "2019.12.14_10.16.30,100,1\n2019.12.14_10.16.30,300,1\n"  # same second: mean 200
        "2019.12.14_10.16.32,1000,1\n"
    )
    trace = read_csv(path, "Timestamp", "DL_bitrate:kbps")
    assert list(trace.times_s) == [0.0, 2.0]
    assert list(trace.rate_bps) == [2e5, 1e6]
    assert trace.period_s == 4.0
    explicit = read_csv(path, "Timestamp:%Y.%m.%d_%H.%M.%S", "DL_bitrate:Mbps")
    assert list(explicit.rate_bps) == [2e8, 1e9]
    path.write_text("when,rate_bps\n2024-01-01T00:00:00,8\n2024-01-01T00:00:00.5,16\n")
    assert list(read_csv(path, "when").times_s) == [0.0, 0.5]


@pytest.mark.parametrize(
    ("header", "rows", "columns", "match"),
    [
        ("Timestamp,DL_bitrate", "1,2", ("Timestamp:s", "DL_bitrate"), "'DL_bitrate:kbps'"),
        ("time_s,a_kbps,b_mbps", "1,2,3", (None, None), r"found \['a_kbps', 'b_mbps'\]"),
        ("t,x_kbps", "1,2", (None, None), "no time_s or time_ms column"),
        ("t,x_kbps", "1,2", ("t", None), "plain numbers; say their unit: time_column: 't:s'"),
        ("time_s,x_kbps", "1,2", (None, "y_kbps"), r"no bandwidth column 'y_kbps'"),
        ("time_s,x_kbps", "1,2\n2,fast", (None, None), r"t.csv:3: bad bandwidth 'fast'"),
        ("time_s,x_kbps", "1,2\nsoon,3", (None, None), r"t.csv:3: bad time 'soon'"),
        ("time_s,x_kbps", "1,2", ("time_s:h", None), "time unit 'h'"),
    ],
)
def test_csv_errors(
    tmp_path: Path,
    header: str,
    rows: str,
    columns: tuple[str | None, str | None],
    match: str,
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\n{rows}\n")
    with pytest.raises(TraceError, match=match):
        read_csv(path, *columns)


# -------------------------------------------------------------------------------- synthetic

# (p10, median, p90) in Mbit/s as the module docstring documents them
DOCUMENTED = {
    "lte": (0.80, 2.9, 9.4),
    "lte-down": (2.7, 7.9, 22.0),
    "lte-cell": (18.0, 25.0, 34.0),
    "3g": (0.42, 1.2, 2.9),
    "5g": (4.4, 27.0, 116.0),
    "wifi": (38.0, 60.0, 94.0),
}


def test_presets_are_documented() -> None:
    assert set(PRESETS) == set(DOCUMENTED)
    import fleet.network.trace_synthetic

    for name in PRESETS:
        assert f"\n{name} " in (fleet.network.trace_synthetic.__doc__ or "")


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_synthetic_statistics_match_documentation(name: str) -> None:
    rates = np.concatenate([synthetic(name, seed).rate_bps for seed in range(20)]) / 1e6
    p10, median, p90 = DOCUMENTED[name]
    assert np.median(rates) == pytest.approx(median, rel=0.12)
    assert np.percentile(rates, 10) == pytest.approx(p10, rel=0.3)
    assert np.percentile(rates, 90) == pytest.approx(p90, rel=0.2)
    assert rates.min() >= 0


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_synthetic_is_seeded_and_loops(name: str) -> None:
    trace = synthetic(name, 5, duration_s=120.0)
    assert trace == synthetic(name, 5, duration_s=120.0)
    assert not np.array_equal(trace.rate_bps, synthetic(name, 6, duration_s=120.0).rate_bps)
    assert trace.period_s == 120.0 and trace.times_s.size == 120
    assert np.all(trace.rate_bps >= 0) and np.all(np.isfinite(trace.rate_bps))
    for t in (0.5, 17.2, 119.9):
        assert trace.rate_at(t) == trace.rate_at(t + 3 * trace.period_s)


def test_presets_differ_for_one_seed() -> None:
    a = synthetic("lte", 1).rate_bps / 3.0
    b = synthetic("lte-down", 1).rate_bps / 8.0
    assert not np.allclose(a, b)


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(TraceError, match=r"unknown synthetic trace 'lte5'.*lte-cell"):
        synthetic("lte5", 0)


# ---------------------------------------------------------------------------- link specs


def test_load_link_trace_kinds(tmp_path: Path) -> None:
    assert load_link_trace(LinkSpec(kind="ideal"), 0) is None
    const = load_link_trace(LinkSpec.model_validate({"bandwidth_mbps": 20.0, "scale": 0.5}), 0)
    assert const is not None and const.mean_bps() == 10e6
    lte = load_link_trace(LinkSpec.model_validate({"trace": "synthetic:lte"}), 4)
    assert lte == synthetic("lte", 4)
    (tmp_path / "cooked").write_text("0 1\n1 3\n")
    spec = LinkSpec.model_validate({"trace": "file:cooked", "format": "pensieve", "scale": 2.0})
    cooked = load_link_trace(spec, 0, base_dir=tmp_path)
    assert cooked is not None and list(cooked.rate_bps) == [2e6, 6e6]
    (tmp_path / "t.csv").write_text("Timestamp,DL\n2020.01.01_00.00.00,8\n2020.01.01_00.00.01,8\n")
    spec = LinkSpec.model_validate(
        {
            "trace": f"file:{tmp_path / 't.csv'}",
            "format": "csv",
            "time_column": "Timestamp",
            "bandwidth_column": "DL:mbps",
        }
    )
    csv_trace = load_link_trace(spec, 0)
    assert csv_trace is not None and csv_trace.mean_bps() == 8e6
    with pytest.raises(TraceError, match="presets: lte"):
        load_link_trace(LinkSpec.model_validate({"trace": "synthetic:dsl"}), 0)


# ------------------------------------------------------------------------- real trace files


def _real(folder: str) -> list[Path]:
    where = SHARED_TRACES / folder
    if not where.is_dir():
        pytest.skip(f"real traces not available at {where}")
    return sorted(p for p in where.iterdir() if p.is_file())


def test_real_mahimahi_traces_load() -> None:
    for path in _real("mahimahi"):
        trace = read_mahimahi(path)
        assert 0.3e6 < trace.mean_bps() < 30e6, path.name
        assert 100 < trace.period_s < 1100


@pytest.mark.parametrize(
    ("folder", "low_mbps", "high_mbps"), [("pensieve-norway", 0.1, 8.0), ("pensieve-fcc", 0.1, 9.0)]
)
def test_real_pensieve_traces_load(folder: str, low_mbps: float, high_mbps: float) -> None:
    for path in _real(folder):
        trace = read_pensieve(path)
        assert low_mbps * 1e6 < trace.mean_bps() < high_mbps * 1e6, path.name


def test_real_ucc5g_logs_load() -> None:
    for path in _real("ucc5g"):
        trace = read_csv(path, "Timestamp", "DL_bitrate:kbps")
        assert 1e6 < trace.mean_bps() < 300e6, path.name
        assert 900 < trace.period_s < 2400
