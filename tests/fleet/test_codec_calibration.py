"""``slicer calibrate-codecs``: real codec calls timed and fitted, on small sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from fleet.run.codec_calibration import calibrate_codecs, if_like
from models.codec_cost import CodecCosts


def test_the_tensor_is_seeded_and_has_massive_channels() -> None:
    x = if_like(4, seed=1)
    assert x.shape == (4, 576) and (x == if_like(4, seed=1)).all()
    assert abs(x[:, 7]).mean() > 100 * abs(x[:, 0]).mean()


def test_calibration_fits_every_setting_and_direction() -> None:
    costs, fits = calibrate_codecs([{"id": "fp16"}, {"id": "zstd"}], rows=(1, 4, 16), repeats=1)
    assert [f.config["id"] for f in fits] == ["fp16", "zstd"]
    for f in fits:
        assert [c.elements for c in f.calls["decode"]] == [576, 2304, 9216]
        assert [c.elements for c in f.calls["frame_decode"]] == [256, 576, 1152, 2048]
        for direction in ("encode", "decode", "frame_encode", "frame_decode"):
            cost = costs.get(f.key, direction)
            assert cost is not None and cost.seconds(576, 100) > 0
        assert len(f.rows()) == 6 + 8  # containers at 3 sizes, frames at 4 widths


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats"):
        calibrate_codecs([{"id": "fp16"}], repeats=0)
    with pytest.raises(ValueError, match="3 distinct sizes"):
        calibrate_codecs([{"id": "fp16"}], rows=(1, 1, 2))


def test_the_command_prints_predicted_against_measured_and_writes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "costs.yaml"
    code = main(
        ["calibrate-codecs", "--repeats", "1", "--codec", '{"id":"fp16"}', "--out", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "predicted us" in text and "worst relative error" in text
    assert CodecCosts.read(out).keys == ['{"id":"fp16"}']


def test_real_ifs_of_a_causal_lm_can_be_timed_instead() -> None:
    from fleet.run.codec_calibration import model_ifs

    x = model_ifs("smollm2-135m", 130)
    assert x.shape == (130, 576) and x.dtype.name == "float32"
    _, fits = calibrate_codecs([{"id": "fp16"}], rows=(1, 4, 16), repeats=1, ifs="smollm2-135m")
    assert [c.elements for c in fits[0].calls["frame_decode"]] == [256, 576, 1152, 2048]
    with pytest.raises(ValueError, match="causal LM"):
        model_ifs("mobilenetv2", 10)
