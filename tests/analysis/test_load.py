"""Reading results directories: tiny real runs and a sweep made by the simulator (the session
fixtures of ``conftest.py``), and the errors for everything that is not one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from analysis import ResultsError, Run, Sweep, load, load_run, load_sweep
from analysis import metrics as m
from records.tables import STAGE_TIMES
from tests.analysis.conftest import manifest


def test_a_run_directory_loads_every_table(run_dir: Path) -> None:
    run = load(run_dir)
    assert isinstance(run, Run) and run.path == run_dir
    assert run.manifest == manifest(run_dir)
    assert run.summary == json.loads((run_dir / "summary.json").read_text())
    assert run.requests.equals(pq.read_table(run_dir / "requests.parquet"))
    assert run.servers.equals(pq.read_table(run_dir / "servers.parquet"))
    assert run.steps is None
    assert (run.name, run.task, run.replicas) == ("tiny-infer", "infer", 2)
    assert run.seed == run.manifest["seed"] == run.scenario["seed"]
    assert run.sim_time_s == run.summary["sim_time_s"] > 0


def test_run_metrics_agree_with_the_run_summary(run_dir: Path) -> None:
    run = load_run(run_dir)
    p50_s = m.latency(run.requests)["p50_latency_s"]
    got, summary = m.run_metrics(run, slo_s=p50_s), run.summary
    shared = [k for k in got if k != "slo_attainment"]
    assert all(k in summary for k in shared)  # the report shows nothing summary.json lacks
    assert {k: got[k] for k in shared} == {k: summary[k] for k in shared}
    assert sum(got[f"{s}_s"] for s in m.STAGES) == pytest.approx(got["mean_latency_s"])
    completed = summary["completed"] / summary["requests"]
    assert completed / 2 <= got["slo_attainment"] < completed  # half complete within p50


def test_a_generate_run_loads_its_steps(generate_dir: Path) -> None:
    run = load_run(generate_dir)
    assert run.task == "generate" and run.steps is not None
    assert run.steps.equals(pq.read_table(generate_dir / "steps.parquet"))
    got = m.run_metrics(run)
    for key in ("uplink_bits_per_token", "p95_ttft_s", "p99_tpot_s", "server_busy_s_per_token"):
        assert got[key] == run.summary[key], key


def test_a_sweep_loads_its_points_and_their_runs(sweep_dir: Path) -> None:
    sweep = load(sweep_dir)
    assert isinstance(sweep, Sweep) and sweep.path == sweep_dir
    assert sweep.params == ["fleet[0].count", "servers.replicas"]
    assert sweep.points.equals(pq.read_table(sweep_dir / "sweep.parquet"))
    first = sweep.names[0]
    assert sweep.values(first) == {"fleet[0].count": 1, "servers.replicas": 1}
    run = sweep.run(first)
    assert run.path == sweep_dir / first and run.scenario["fleet"][0]["count"] == 1
    assert run.seed == sweep.points.column("seed")[0].as_py()
    with pytest.raises(ResultsError, match=r"no sweep point named 'nope'; the points are: count="):
        sweep.run("nope")


def test_sweep_rows_give_one_row_per_point_with_its_fleet(sweep_dir: Path) -> None:
    sweep = load_sweep(sweep_dir)
    rows = m.sweep_rows(sweep, slo_s=0.5)
    counts = [(r["devices"], r["replicas"]) for r in rows]
    assert counts == [(d, r) for d in (1, 8, 64) for r in (1, 2)]
    for row in rows:
        assert (
            row["devices"] == row["fleet[0].count"] and row["replicas"] == row["servers.replicas"]
        )
        assert (row["split"], row["codec"], row["task"]) == (4, "fp32", "infer")
        summary = sweep.run(row["point"]).summary
        assert row["p95_latency_s"] == pytest.approx(summary["p95_latency_s"], nan_ok=True)
    assert m.sweep_rows(sweep, slo_s=0.5) == rows  # deterministic
    # 64 devices overload the replicas (drops, queues): each curve crosses a 0.3 s SLO between
    # 1 and 64 devices (where exactly depends on the points' seeds)
    for cap in m.capacity(rows, slo_s=0.3, by=("replicas",)):
        assert cap.status == "interpolated" and cap.devices is not None and 1 < cap.devices < 64


def test_a_missing_path_a_file_or_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"does not exist; pass a run directory"):
        load(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ResultsError, match=r"is a file, not a directory"):
        load(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match=r"neither a run nor a sweep \(it is empty\)"):
        load(tmp_path / "empty")
    with pytest.raises(ResultsError, match=r"sweep \(it holds empty, notes.txt\)"):
        load(tmp_path)
    with pytest.raises(ResultsError, match=r"is not a sweep: it has no sweep.parquet"):
        load_sweep(tmp_path)


def test_a_run_missing_a_table_names_it_and_the_run_status(tmp_path: Path, run_dir: Path) -> None:
    shutil.copytree(run_dir, tmp_path / "run")
    (tmp_path / "run" / "servers.parquet").unlink()
    with pytest.raises(ResultsError, match=r"run has no servers.parquet .*status 'complete'"):
        load(tmp_path / "run")
    data = manifest(tmp_path / "run") | {"status": "failed", "error": "OSError: disk full"}
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(data))
    (tmp_path / "run" / "requests.parquet").unlink()
    with pytest.raises(ResultsError, match=r"requests.parquet, servers.parquet .*disk full"):
        load_run(tmp_path / "run")


def test_a_generate_run_without_steps_is_an_error(tmp_path: Path, generate_dir: Path) -> None:
    shutil.copytree(generate_dir, tmp_path / "gen")
    (tmp_path / "gen" / "steps.parquet").unlink()
    with pytest.raises(ResultsError, match=r"run has no steps.parquet"):
        load_run(tmp_path / "gen")


def test_damaged_files_are_clear_errors(tmp_path: Path, run_dir: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "requests.parquet").write_bytes(b"not parquet")
    with pytest.raises(ResultsError, match=r"cannot read .*requests.parquet as Parquet"):
        load_run(run)
    (run / "manifest.json").write_text("{cut")
    with pytest.raises(ResultsError, match=r"cannot read .*manifest.json"):
        load_run(run)
    (run / "manifest.json").write_text(json.dumps({"status": "complete"}))
    with pytest.raises(ResultsError, match=r"has no 'scenario' object"):
        load_run(run)
    (run / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ResultsError, match=r"holds list, expected a JSON object"):
        load_run(run)


def test_a_sweep_directory_is_not_a_run(tmp_path: Path, sweep_dir: Path) -> None:
    with pytest.raises(ResultsError, match=r"not a run: it has no manifest.json \(it is a sweep"):
        load_run(sweep_dir)
    pq.write_table(
        pq.read_table(sweep_dir / "sweep.parquet").drop_columns(["seed"]),
        tmp_path / "sweep.parquet",
    )
    with pytest.raises(ResultsError, match=r"expected \['point', 'seed'\] first"):
        load_sweep(tmp_path)


def test_a_run_without_summary_falls_back_to_its_last_event(tmp_path: Path, run_dir: Path) -> None:
    shutil.copytree(run_dir, tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()
    run = load_run(tmp_path / "run")
    assert run.summary == {}
    last_s = max(pc.max(run.requests.column(name)).as_py() for name in STAGE_TIMES)
    assert run.sim_time_s == last_s
    assert pc.max(run.requests.column("t_done_s")).as_py() <= last_s <= load_run(run_dir).sim_time_s


def test_import_analysis_stays_light() -> None:
    code = (
        "import sys, analysis; heavy = {'torch', 'ray', 'matplotlib', 'scenarios', 'pydantic'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
