"""The ``slicer`` command line: models, profile and eval print tables; bad input is an error."""

from __future__ import annotations

import pytest

from fleet.cli import main


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
