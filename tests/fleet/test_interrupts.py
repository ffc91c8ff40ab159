"""SIGTERM and SIGINT end a run cleanly (issue 17): exit status 128 + signal, one line on
stderr and no traceback, a manifest that says ``interrupted``, no half-written table; the next
run into the same ``--out`` starts again without asking anyone to delete anything."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from fleet.run.point import run_one
from tests.fleet.simkit import scenario, write_profile

ROOT = Path(__file__).resolve().parents[2]

LONG_RUN = """
name: long
seed: 1
duration_s: 30
mode: replay
replay_from: {profile}
model: {{name: synthetic:smollm2-135m, seq_len: 8}}
codec: fp32
fleet:
  - {{name: g, count: 20000, hardware: ideal, split: 4,
     arrivals: {{kind: poisson, rate_per_s: 0.5}},
     uplink: {{bandwidth_mbps: 10}}, downlink: {{kind: ideal}}}}
servers: {{replicas: 4, hardware: ideal}}
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_leaves_an_interrupted_manifest_and_no_table(
    tmp_path: Path, signum: signal.Signals
) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(LONG_RUN.format(profile=write_profile(tmp_path / "profile")))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cli.main", "run", str(path), "--out", str(out), "--quiet"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "requests.parquet.part").exists():  # the simulation is under way
        assert child.poll() is None and time.monotonic() < deadline, child.stderr
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(signum)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 128 + signum
    lines = err.decode().strip().splitlines()
    assert lines == [
        f"slicer run: interrupted by {signum.name}; finished results are kept, and running the "
        "same command again resumes"
    ]
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and signum.name in manifest["error"]


@pytest.mark.parametrize(
    ("error", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")]
)
def test_the_next_run_into_an_unfinished_directory_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException], status: str
) -> None:
    from fleet.sim import Simulation

    s = scenario(write_profile(tmp_path / "profile"))
    out = tmp_path / "run"
    real_run = Simulation.run

    def broken(self: Any) -> Any:
        raise error("stopped in the middle")

    monkeypatch.setattr(Simulation, "run", broken)
    with pytest.raises(error):
        run_one(s, out, quiet=True)
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert json.loads((out / "manifest.json").read_text())["status"] == status
    monkeypatch.setattr(Simulation, "run", real_run)
    assert run_one(s, out, quiet=True).summary["completed"] == 1
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_a_finished_run_is_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = write_profile(tmp_path / "profile")
    path = tmp_path / "s.yaml"
    path.write_text(LONG_RUN.format(profile=profile).replace("count: 20000", "count: 2"))
    out = tmp_path / "run"
    args = ["run", str(path), "--out", str(out)]
    assert main(args) == 0
    stamp = json.loads((out / "manifest.json").read_text())["ended_at"]
    assert main(args) == 0
    assert "finished before" in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["ended_at"] == stamp


def test_a_directory_of_other_files_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(LONG_RUN.format(profile=write_profile(tmp_path / "profile")))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    assert "holds files that are not a slicer run" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"


def test_extending_a_sweep_grid_reuses_the_finished_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.run.runner import run

    profile = write_profile(tmp_path / "profile")
    out = tmp_path / "sweep"
    small = scenario(profile, sweep={"fleet[0].count": [1, 3]}, ray={"parallel_sweep": False})
    first = {r.path.name: r.summary for r in run(small, out, quiet=True)}
    stamps = {
        name: json.loads((out / name / "manifest.json").read_text())["ended_at"] for name in first
    }
    grown = scenario(profile, sweep={"fleet[0].count": [1, 2, 3]}, ray={"parallel_sweep": False})
    capsys.readouterr()
    again = {r.path.name: r.summary for r in run(grown, out, quiet=True)}
    assert list(again) == ["count=1", "count=2", "count=3"]
    assert capsys.readouterr().err.count("finished before, skipped") == 2
    assert {k: again[k] for k in first} == first
    for name, stamp in stamps.items():
        assert json.loads((out / name / "manifest.json").read_text())["ended_at"] == stamp
