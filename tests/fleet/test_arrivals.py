"""Arrival processes: counts and rates, exact spacing, sorted seeded output, trace files."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from fleet.arrivals import ArrivalError, ArrivalSpec, arrival_times, read_arrival_trace
from scenarios.schema import OnOffArrivals, PeriodicArrivals, PoissonArrivals, TraceArrivals

POISSON = PoissonArrivals(kind="poisson", rate_per_s=0.5)
PERIODIC = PeriodicArrivals(kind="periodic", period_s=2.0)
JITTERED = PeriodicArrivals(kind="periodic", period_s=2.0, jitter_s=0.5)
ON_OFF = OnOffArrivals(kind="on-off", rate_per_s=4.0, on_s=2.0, off_s=3.0)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "arrivals.txt"
    path.write_text("# recorded arrivals\n10.0\n11.0  # a comment\n\n13.0\n")
    return path


def all_specs(trace_file: Path) -> list[ArrivalSpec]:
    return [POISSON, PERIODIC, JITTERED, ON_OFF, TraceArrivals(kind="trace", path=str(trace_file))]


def per_device(device: np.ndarray, t_s: np.ndarray, count: int) -> list[np.ndarray]:
    order = np.argsort(device, kind="stable")
    return np.split(t_s[order], np.cumsum(np.bincount(device, minlength=count))[:-1])


def test_outputs_are_sorted_typed_and_seeded(trace_file: Path) -> None:
    for spec in all_specs(trace_file):
        for kw in ({"duration_s": 30.0, "requests_per_device": None},
                   {"duration_s": None, "requests_per_device": 4}):  # fmt: skip
            device, t_s = arrival_times(spec, 200, rng=rng(3), **kw)
            assert device.dtype == np.int64 and t_s.dtype == np.float64
            assert np.all(np.lexsort((device, t_s)) == np.arange(device.size)), spec.kind
            assert device.min() >= 0 and device.max() < 200
            assert t_s.min() >= 0
            if kw["duration_s"] is not None:
                assert t_s.max() < 30.0
            again = arrival_times(spec, 200, rng=rng(3), **kw)
            other = arrival_times(spec, 200, rng=rng(4), **kw)
            assert np.array_equal(device, again[0]) and np.array_equal(t_s, again[1])
            assert not np.array_equal(t_s, other[1])


def test_requests_per_device_is_exact(trace_file: Path) -> None:
    for spec in all_specs(trace_file):
        device, _ = arrival_times(spec, 300, duration_s=None, requests_per_device=7, rng=rng())
        assert np.array_equal(np.bincount(device, minlength=300), np.full(300, 7)), spec.kind


def test_poisson_count_and_gaps() -> None:
    count, duration_s = 20000, 10.0
    device, t_s = arrival_times(
        POISSON, count, duration_s=duration_s, requests_per_device=None, rng=rng(1)
    )
    mean = count * duration_s * 0.5
    assert abs(device.size - mean) < 5 * math.sqrt(mean)
    assert abs(np.mean(t_s) - duration_s / 2) < 0.05
    device, t_s = arrival_times(POISSON, count, duration_s=None, requests_per_device=3, rng=rng(2))
    first = np.array([t[0] for t in per_device(device, t_s, count)])
    assert np.mean(first) == pytest.approx(1 / 0.5, rel=0.03)  # exponential gaps, mean 1/rate


def test_periodic_spacing_is_exact_without_jitter() -> None:
    device, t_s = arrival_times(PERIODIC, 50, duration_s=None, requests_per_device=5, rng=rng())
    for times in per_device(device, t_s, 50):
        assert 0 <= times[0] < 2.0
        assert np.allclose(np.diff(times), 2.0, rtol=0, atol=1e-12)
    device, t_s = arrival_times(PERIODIC, 50, duration_s=9.0, requests_per_device=None, rng=rng())
    counts = np.bincount(device, minlength=50)
    assert set(counts.tolist()) <= {4, 5}  # a phase in [0, 2) leaves 4 or 5 slots below 9 s


def test_periodic_jitter_delays_within_bounds() -> None:
    a = arrival_times(PERIODIC, 100, duration_s=None, requests_per_device=6, rng=rng(5))
    b = arrival_times(JITTERED, 100, duration_s=None, requests_per_device=6, rng=rng(5))
    nominal = np.concatenate(per_device(*a, 100))
    jittered = np.concatenate(per_device(*b, 100))
    delay = jittered - nominal  # same phases: the phase draw comes first
    assert delay.min() >= 0 and delay.max() < 0.5 and delay.max() > 0.45


def test_on_off_average_rate_and_burstiness() -> None:
    count, duration_s = 20000, 40.0
    device, t_s = arrival_times(
        ON_OFF, count, duration_s=duration_s, requests_per_device=None, rng=rng(7)
    )
    expected_rate = 4.0 * 2.0 / (2.0 + 3.0)
    assert device.size / count / duration_s == pytest.approx(expected_rate, rel=0.02)
    first_second = np.count_nonzero(t_s < 1.0) / count  # a stationary start, not all on
    assert first_second == pytest.approx(expected_rate, rel=0.05)
    counts = np.bincount(device, minlength=count)
    assert counts.var() > 3 * counts.mean()  # on/off bursts: far from Poisson (var = mean)


def test_on_off_requests_mode_has_gaps_from_off_periods() -> None:
    device, t_s = arrival_times(ON_OFF, 2000, duration_s=None, requests_per_device=20, rng=rng())
    span = np.array([t[-1] for t in per_device(device, t_s, 2000)])
    # 20 arrivals need 5 s of on-time on average. Off time on the way: a first off period with
    # P = 3/5 (mean 3 s) plus one after each on period that ends, 5 / 2 of them on average:
    # 5 + 0.6 * 3 + 2.5 * 3 = 14.3 s
    assert np.mean(span) == pytest.approx(14.3, rel=0.05)


def test_trace_replay_keeps_the_file_pattern(trace_file: Path) -> None:
    spec = TraceArrivals(kind="trace", path=str(trace_file))
    device, t_s = arrival_times(spec, 500, duration_s=None, requests_per_device=6, rng=rng())
    # times 10, 11, 13 -> 0, 1, 3; period 3 * 3 / 2 = 4.5; gaps cycle through 1, 2, 1.5
    cycle = [1.0, 2.0, 1.5]
    for times in per_device(device, t_s, 500):
        gaps = np.diff(times)
        k = int(np.argmin(np.abs(np.array(cycle) - gaps[0])))
        assert np.allclose(gaps, [cycle[(k + i) % 3] for i in range(5)], atol=1e-9)
        assert times[0] < 2.0  # the first arrival comes within the longest gap
    device, t_s = arrival_times(spec, 4000, duration_s=45.0, requests_per_device=None, rng=rng())
    assert device.size / 4000 == pytest.approx(45.0 * 3 / 4.5, rel=0.01)


def test_trace_path_relative_to_base_dir(trace_file: Path) -> None:
    spec = TraceArrivals(kind="trace", path=trace_file.name)
    device, _ = arrival_times(
        spec, 3, duration_s=None, requests_per_device=2, rng=rng(), base_dir=trace_file.parent
    )
    assert device.size == 6


def test_read_arrival_trace_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("user,time_s\nx,0.5\ny,0.75\n")
    assert list(read_arrival_trace(path)) == [0.5, 0.75]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no arrival times"),
        ("# only\n", "no arrival times"),
        ("1.0\nsoon\n", r"a.txt:2: expected a time in seconds >= 0, got 'soon'"),
        ("1.0\n-2\n", r"a.txt:2: expected a time in seconds >= 0"),
        ("3.0\n1.0\n", r"a.txt:2: time 1.0 is before the previous 3.0; sort the file"),
        ("user,when\nx,1\n", r"a.txt:1: expected a number or a CSV header with a time_s column"),
        ("time_s\n", "header but no rows"),
        ("1.0\n2.0,3.0\n", r"a.txt:2: expected a time"),
    ],
)
def test_bad_arrival_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(text)
    with pytest.raises(ArrivalError, match=match):
        read_arrival_trace(path)


def test_trace_that_cannot_loop(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text("5.0\n")
    with pytest.raises(ArrivalError, match="at least 2 distinct times"):
        arrival_times(
            TraceArrivals(kind="trace", path=str(path)),
            2,
            duration_s=10.0,
            requests_per_device=None,
            rng=rng(),
        )
    with pytest.raises(ArrivalError, match="cannot read"):
        read_arrival_trace(tmp_path / "missing.txt")


def test_exactly_one_of_duration_and_requests() -> None:
    with pytest.raises(ArrivalError, match="exactly one"):
        arrival_times(POISSON, 2, duration_s=1.0, requests_per_device=1, rng=rng())
    with pytest.raises(ArrivalError, match="exactly one"):
        arrival_times(POISSON, 2, duration_s=None, requests_per_device=None, rng=rng())
    with pytest.raises(ArrivalError, match="duration_s"):
        arrival_times(POISSON, 2, duration_s=-1.0, requests_per_device=None, rng=rng())
    device, t_s = arrival_times(POISSON, 0, duration_s=1.0, requests_per_device=None, rng=rng())
    assert device.size == 0 and t_s.size == 0


def test_large_fleet_is_vectorised() -> None:
    t0 = time.perf_counter()
    device, _ = arrival_times(ON_OFF, 100_000, duration_s=None, requests_per_device=10, rng=rng())
    elapsed_s = time.perf_counter() - t0
    assert device.size == 1_000_000
    assert elapsed_s < 5.0  # about 0.4 s here; a per-element Python loop would take far longer
