"""The ``slicer`` command line: models, profile and eval print tables; bad input is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main


def test_models_lists_every_pretrained_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("smollm2-135m", "minilm-l6", "mobilenetv2", "efficientnet-lite0"):
        assert name in out
    assert "synthetic:llama-3-8b" in out
    assert "0..20" in out  # mobilenetv2's split points


def test_profile_prints_one_row_per_block(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "mobilenetv2"]) == 0
    out = capsys.readouterr().out
    assert "features.18" in out and "pool+classifier" in out
    assert len([line for line in out.splitlines() if "features." in line]) == 19


def test_eval_reports_bytes_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--model", "mobilenetv2", "--split", "7", "--limit", "2"]
    assert main([*args, "--codec", '{"id": "slicer", "max_nmse": 0.01}']) == 0
    out = capsys.readouterr().out
    assert "top1_agreement" in out and "100352 B as float32" in out


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_bad_codec_json_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--model", "mobilenetv2", "--split", "3", "--codec", "{bad"])
    assert "not valid JSON" in capsys.readouterr().err


def test_calibrate_writes_a_hardware_entry(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.hardware import MAX_EFFICIENCY, load_catalog

    out = tmp_path / "cpu.yaml"  # type: ignore[operator]
    args = ["calibrate", "mobilenetv2", "--repeats", "1", "--batch", "1", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "median relative error" in text and "features.18" in text
    fitted = load_catalog(out)["this-cpu"]  # the written entry passes the catalog's checks
    # one timing round on a shared machine can read a block a little faster than the
    # micro-benchmarked peak, so a fitted efficiency may sit slightly above 1
    assert 0 < fitted.efficiency_compute <= MAX_EFFICIENCY
    assert 0 < fitted.efficiency_memory <= MAX_EFFICIENCY


SCENARIO = """
name: cli-test
seed: 3
requests_per_device: 2
mode: replay
replay_from: {profile}
model: {{name: synthetic:smollm2-135m, seq_len: 8}}
codec: fp32
fleet:
  - {{name: g, count: 3, hardware: ideal, split: 4, arrivals: {{kind: periodic, period_s: 1.0}},
     uplink: {{bandwidth_mbps: 10}}, downlink: {{kind: ideal}}}}
servers: {{replicas: 1, hardware: ideal}}
"""


def _scenario_file(tmp_path: Path, extra: str = "") -> str:
    from tests.fleet.simkit import write_profile

    profile = write_profile(tmp_path / "profile")
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(profile=profile) + extra)
    return str(path)


def test_run_writes_results_and_prints_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", _scenario_file(tmp_path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "completed" in printed and str(out) in printed
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "requests.parquet", "servers.parquet", "summary.json"} <= names


def test_run_a_sweep_with_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    extra = "sweep:\n  fleet[0].count: [1, 2]\n"
    args = ["run", _scenario_file(tmp_path, extra), "--out", str(out), "--quiet"]
    assert main([*args, "--set", "servers.replicas=2"]) == 0
    assert (out / "sweep.parquet").exists()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["count=1", "count=2"]
    # a rerun skips the finished points; a different scenario into the same place is refused
    assert main([*args, "--set", "servers.replicas=2"]) == 0
    assert capsys.readouterr().err.count("finished before, skipped") == 2
    assert main(args) == 2
    assert "holds a finished run of a different scenario" in capsys.readouterr().err


def test_validate_names_field_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario_file(tmp_path)
    assert main(["validate", path]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["validate", path, "--set", "fleet[0].count=0"]) == 2
    assert "fleet[0].count: must be >= 1, got 0 (from --set" in capsys.readouterr().err


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "fleet" in schema["properties"]


def test_schema_markdown_prints_and_writes_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenarios import schema_doc

    assert main(["schema", "--markdown"]) == 0
    assert capsys.readouterr().out == schema_doc.markdown()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{schema_doc.START}\nold\n{schema_doc.END}\n\nrest\n")
    assert main(["schema", "--markdown", "--write", str(readme)]) == 0
    assert "updated" in capsys.readouterr().out
    schema_doc.check_readme(readme)  # no longer stale
    assert readme.read_text().endswith("rest\n")


def test_parallel_sweep_records_a_failing_point_and_redoes_unfinished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replayed points run as Ray tasks; a point whose profile lacks its split fails alone;
    an unfinished point directory is redone on the next run. (``slicer run`` refuses such a
    sweep before it starts, ``fleet.run.check``; ``runner.run`` does not check names, so a
    point fails while the others go on.)"""
    import pyarrow.parquet as pq

    import scenarios
    from fleet.run.runner import run

    out = tmp_path / "sweep"
    extra = "sweep:\n  fleet[0].split: [4, 5, 4]\n  zip:\n    fleet[0].count: [1, 2, 3]\n"
    path = _scenario_file(tmp_path, extra)
    args = ["run", path, "--out", str(out), "--quiet"]
    assert main(args) == 2  # split 5 is not in the profile: refused up front
    assert (
        "replay_from: points 3-5 (fleet[0].split=5): the replay profile" in capsys.readouterr().err
    )

    def run_it() -> int:
        results = run(scenarios.load(path), out, quiet=True)
        return 1 if any(r.error for r in results) else 0

    assert run_it() == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "split" in err
    table = pq.read_table(out / "sweep.parquet").to_pylist()
    assert [r["status"] for r in table] == ["complete"] * 3 + ["failed"] * 3 + ["complete"] * 3
    # an interrupted point: its manifest says running; the rerun redoes it and skips the rest
    first = out / table[0]["point"]
    manifest = json.loads((first / "manifest.json").read_text())
    (first / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    (first / "summary.json").unlink()
    assert run_it() == 1
    err = capsys.readouterr().err
    assert err.count("finished before, skipped") == 5  # 9 points - 1 unfinished - 3 failed
    assert json.loads((first / "manifest.json").read_text())["status"] == "complete"


def test_replay_without_the_split_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _scenario_file(tmp_path)
    out = tmp_path / "run"
    assert main(["run", path, "--out", str(out), "--quiet", "--set", "fleet[0].split=5"]) == 2
    err = capsys.readouterr().err
    assert "the replay profile has no rows" in err and "split=5" in err
    assert not out.exists()  # said by the checks before the run, so nothing is written


def test_run_of_a_generate_scenario_prints_token_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fleet.simkit import MODEL, write_generations

    write_generations(tmp_path / "real")
    text = f"""
name: gen-cli
seed: 2
requests_per_device: 1
mode: replay
replay_from: real
model: {{name: "{MODEL}", task: generate, seq_len: 8, max_new_tokens: 3, inputs: 2}}
codec: fp32
fleet:
  - {{name: g, count: 4, hardware: ideal, split: 4, arrivals: {{kind: periodic, period_s: 1}},
     uplink: {{bandwidth_mbps: 1}}, downlink: {{kind: ideal}}}}
servers: {{hardware: h100-sxm}}
"""
    path = tmp_path / "gen.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "p95_tpot_s" in printed and "uplink_bits_per_token" in printed
    assert "throughput_rps" not in printed
    assert (tmp_path / "out" / "steps.parquet").exists()
