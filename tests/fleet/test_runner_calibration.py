"""The runner's calibrate-then-replay (``replay_from`` naming a scenario file) and its sweep
progress output.

The calibration runs a synthetic SmolLM2 (random weights: real compute, timing and bytes only)
on ideal hardware in this process; ``models.load`` is memoised so that its weights are built
once for the module. Everything else replays a hand-written profile.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import scenarios
from fleet.run.progress import SweepBar, clock
from fleet.run.runner import CALIBRATION_DIR, SKIPS_NAMED, run
from tests.fleet.simkit import MODEL, scenario, shared_model_loads, write_profile

LINKS = {"uplink": {"kind": "ideal"}, "downlink": {"kind": "ideal"}}


@pytest.fixture(scope="module", autouse=True)
def _shared_models() -> Iterator[None]:
    with shared_model_loads():
        yield


def _group(split: int, count: int) -> dict[str, Any]:
    arrivals = {"kind": "periodic", "period_s": 1.0}
    return {"name": "g", "count": count, "hardware": "ideal", "split": split, **LINKS,
            "arrivals": arrivals}  # fmt: skip


def _files(tmp: Path, *, main: dict[str, Any] | None = None, **calibration: Any) -> Path:
    """``cal.yaml`` (real, splits 0 and 2, no ray section) and ``main.yaml`` (replays it by
    a relative path, split x fleet size) in ``tmp``; returns main's path."""
    common = {
        "model": {"name": MODEL, "seq_len": 8, "inputs": 2},
        "codec": "fp32",
        "servers": {"replicas": 1, "hardware": "ideal"},
        "requests_per_device": 2,
    }
    cal = {"name": "cal", "seed": 2, **common, "fleet": [_group(2, 2)]}
    cal["sweep"] = {"fleet[0].split": [0, 2]}
    cal.update(calibration)
    replay = {"name": "main", "seed": 1, "mode": "replay", "replay_from": "cal.yaml", **common}
    replay["fleet"] = [_group(2, 3)]
    replay["ray"] = {"enabled": False, "parallel_sweep": False}
    replay["sweep"] = {"fleet[0].split": [0, 2], "fleet[0].count": [1, 3]}
    replay.update(main or {})
    (tmp / "cal.yaml").write_text(yaml.safe_dump(cal))
    (tmp / "main.yaml").write_text(yaml.safe_dump(replay))
    return tmp / "main.yaml"


def _manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return data


def test_replay_from_a_scenario_file_calibrates_once_then_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    results = run(scenarios.load(_files(tmp_path)), out, quiet=True)
    assert [r.error for r in results] == [None] * 4
    calibration = out / CALIBRATION_DIR
    points = sorted(p for p in calibration.iterdir() if p.is_dir())
    assert [p.name for p in points] == ["split=0", "split=2"]
    recorded: dict[int, set[int]] = {}
    for point in points:
        manifest = _manifest(point)
        assert manifest["status"] == "complete" and manifest["mode"] == "real"
        # the replayed scenario's ray settings reach the calibration, whose file has none
        assert manifest["scenario"]["ray"]["enabled"] is False
        assert manifest["scenario"]["ray"]["parallel_sweep"] is False
        for row in pq.read_table(point / "profile.parquet").to_pylist():
            recorded.setdefault(row["split"], set()).add(row["payload_bytes"])
    assert max(recorded[0]) < min(recorded[2])  # token ids are smaller than a feature
    for result in results:
        manifest = _manifest(result.path)
        assert manifest["scenario"]["replay_from"] == str(calibration)
        split = manifest["scenario"]["fleet"][0]["split"]
        rows = pq.read_table(result.path / "requests.parquet").to_pylist()
        assert rows and {r["payload_bytes"] for r in rows} <= recorded[split]
    stamps = {p.name: _manifest(p)["ended_at"] for p in points}
    capsys.readouterr()

    again = run(scenarios.load(_files(tmp_path)), out, quiet=True)
    assert [r.summary for r in again] == [r.summary for r in results]
    err = capsys.readouterr().err
    assert f"calibration {calibration}: finished before, skipped" in err
    assert err.count("finished before, skipped") == 5
    assert {p.name: _manifest(p)["ended_at"] for p in points} == stamps


def test_a_single_run_keeps_its_calibration_inside_its_directory(tmp_path: Path) -> None:
    path = _files(tmp_path, main={"sweep": None}, sweep=None)
    out = tmp_path / "out"
    (result,) = run(scenarios.load(path), out, quiet=True)
    assert result.path == out and result.summary["completed"] == 6
    assert _manifest(out / CALIBRATION_DIR)["status"] == "complete"
    assert _manifest(out)["scenario"]["replay_from"] == str(out / CALIBRATION_DIR)
    stamp = _manifest(out)["ended_at"]
    (again,) = run(scenarios.load(path), out, quiet=True)  # reused, never redone in place
    assert again.summary == result.summary and _manifest(out)["ended_at"] == stamp


def test_a_calibration_that_lacks_a_split_is_refused_before_any_compute(tmp_path: Path) -> None:
    path = _files(tmp_path, main={"sweep": {"fleet[0].split": [0, 6]}})
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="does not record what this scenario replays") as info:
        run(scenarios.load(path), out, quiet=True)
    assert "'synthetic:smollm2-135m', 'infer', 'lee-background', 8, 0, 6," in str(info.value)
    assert not out.exists()


def test_a_calibration_of_other_prompts_is_refused_before_any_compute(tmp_path: Path) -> None:
    model = {"name": MODEL, "seq_len": 8, "inputs": 2, "prompts": "lee-test"}
    path = _files(tmp_path, main={"model": model})
    with pytest.raises(ValueError, match="does not record what this scenario replays") as info:
        run(scenarios.load(path), tmp_path / "out", quiet=True)
    assert "'lee-test'" in str(info.value)


def test_a_changed_calibration_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(scenarios.load(_files(tmp_path, main={"sweep": None}, sweep=None)), out / "a", quiet=True)
    changed = scenarios.load(_files(tmp_path, main={"sweep": None}, sweep=None, seed=3))
    with pytest.raises(FileExistsError, match=r"does not make \(did that file change"):
        run(changed, out / "a", quiet=True)


def test_a_calibration_must_run_real_compute(tmp_path: Path) -> None:
    path = _files(tmp_path, mode="replay", replay_from=str(tmp_path))
    with pytest.raises(ValueError, match="must run mode: real"):
        run(scenarios.load(path), tmp_path / "out", quiet=True)


def test_points_may_not_name_two_calibrations(tmp_path: Path) -> None:
    sweep = {"replay_from": [str(tmp_path / "cal.yaml"), str(tmp_path / "other.yaml")]}
    path = _files(tmp_path, main={"sweep": sweep})
    (tmp_path / "other.yaml").write_text((tmp_path / "cal.yaml").read_text())
    with pytest.raises(ValueError, match="name 2 calibration scenarios"):
        run(scenarios.load(path), tmp_path / "out", quiet=True)


# -- progress ------------------------------------------------------------------------------


def test_clock_reads_like_a_stopwatch() -> None:
    assert [clock(s) for s in (0, 9.4, 59.6, 72, 3599, 3600, 3725)] == [
        "0s",
        "9s",
        "1m00s",
        "1m12s",
        "59m59s",
        "1h00m",
        "1h02m",
    ]


def test_sweep_bar_counts_points_and_extrapolates_from_those_it_ran() -> None:
    bar = SweepBar(24, 0, io.StringIO())
    assert bar.text(0.0) == "[....................] 0/24 points, 0s elapsed"
    bar.done = 7
    assert bar.text(72.0) == "[#####...............] 7/24 points, 1m12s elapsed, ~2m55s left"
    bar.done = 24
    assert bar.text(250.0) == "[####################] 24/24 points, 4m10s elapsed"
    resumed = SweepBar(10, 8, io.StringIO())  # 8 points finished before: not timed
    assert resumed.text(5.0).endswith("8/10 points, 5s elapsed")
    resumed.done = 9
    assert resumed.text(5.0).endswith("9/10 points, 5s elapsed, ~5s left")


def test_sweep_bar_prints_plain_lines_sparingly_and_redraws_in_place() -> None:
    stream = io.StringIO()
    plain = SweepBar(100, 0, stream)
    plain.show()
    for _ in range(100):
        plain.done += 1
        plain.show()
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{n}/100" for n in range(0, 101, 5)]
    assert "\r" not in stream.getvalue()
    plain.show("running 042-x")  # a note always shows
    assert stream.getvalue().endswith(" | running 042-x\n")

    stream = io.StringIO()
    live = SweepBar(3, 0, stream)
    live.in_place = True
    for _ in range(3):
        live.done += 1
        live.show()
    live.end_line()
    live.end_line()  # only one newline
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("3/3 points, 0s elapsed\x1b[K\n")


def test_a_sweep_shows_its_bar_and_a_rerun_counts_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_profile(tmp_path / "profile")
    counts = list(range(1, SKIPS_NAMED + 3))
    s = scenario(
        tmp_path / "profile", ray={"parallel_sweep": False}, sweep={"fleet[0].count": counts}
    )
    out = tmp_path / "out"
    run(s, out)
    err = capsys.readouterr().err
    total = len(counts)
    assert f"[....................] 0/{total} points, " in err
    assert "| running count=1\n" in err
    assert f"[####################] {total}/{total} points, " in err
    assert "\r" not in err  # stderr is not a terminal here
    assert err.count("requests | ") == total  # one simulated-time line per run, the last

    run(s, out)
    err = capsys.readouterr().err
    assert err.count(": finished before, skipped") == SKIPS_NAMED
    assert "... and 2 more points finished before, skipped" in err
    assert "points, " not in err  # nothing ran: no bar
