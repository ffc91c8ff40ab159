"""benchmarks.llm_tasks keeps an earlier run's rows that a new run does not redo, so models and
codecs can be added one run at a time to the same table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import llm_tasks


def _row(model: str, split: int | None, codec_id: str | None) -> dict[str, Any]:
    return {"model": model, "split": split, "codec": codec_id and {"id": codec_id}}


def _earlier(path: Path, rows: list[dict[str, Any]], tasks: list[str]) -> Path:
    path.write_text(json.dumps({"seed": llm_tasks.SEED, "tasks": tasks, "rows": rows}))
    return path


def test_a_run_of_some_codecs_keeps_the_other_codecs_rows(tmp_path: Path) -> None:
    rows = [_row("m", None, None), _row("m", 4, "fp16"), _row("m", 4, "slicer-llm")]
    rows.append(_row("other", 4, "slicer-llm"))
    path = _earlier(tmp_path / "llm_tasks.json", rows, ["piqa"])
    kept = llm_tasks.kept_rows(path, ["m"], ["piqa"], {"slicer-llm"})
    assert kept == [_row("m", 4, "fp16"), _row("other", 4, "slicer-llm")]


def test_a_run_of_every_codec_redoes_the_whole_model(tmp_path: Path) -> None:
    rows = [_row("m", None, None), _row("m", 4, "fp16"), _row("other", 4, "fp16")]
    path = _earlier(tmp_path / "llm_tasks.json", rows, ["piqa"])
    assert llm_tasks.kept_rows(path, ["m"], ["piqa"]) == [_row("other", 4, "fp16")]
    assert llm_tasks.kept_rows(path, ["m"], ["boolq"]) == []


def test_slicer_llm_runs_with_the_profile_of_its_model_and_split() -> None:
    (only,) = llm_tasks.codecs_at("gemma-3-270m", 10, {"slicer-llm"})
    assert only == {"id": "slicer-llm", "profile": "gemma-3-270m/10", "bits": llm_tasks.LLM_BITS}
    assert len(llm_tasks.codecs_at("gemma-3-270m", 10)) == len(llm_tasks.CODECS) + 1
