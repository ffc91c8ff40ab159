"""check(): names from other packages (models, hardware, codecs) and the files a scenario needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.run.check import check
from scenarios import Problem, ScenarioError, load

BASE = Path(__file__).with_name("base.yaml")


def check_problems(*overrides: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as caught:
        check(load(BASE, overrides))
    return caught.value.problems


def test_real_names_pass() -> None:
    check(load(BASE))  # synthetic:smollm2-135m, raspberry-pi-5, ideal, h100-sxm, fp16
    check(load(BASE, ["servers.hardware=ideal", "fleet[0].split=32", "fleet[1].split=0"]))
    check(load(BASE, ["codec={id: slicer, max_nmse: 0.01}", "fleet[0].codec=int8"]))


def test_an_unknown_model_lists_the_available_ones() -> None:
    (problem,) = check_problems("model.name=synthetic:gpt-9")
    assert problem.path == "model.name"
    assert problem.message.startswith("unknown model 'synthetic:gpt-9'; available: ")
    assert "synthetic:smollm2-135m" in problem.message


def test_a_split_beyond_the_models_blocks() -> None:
    (problem,) = check_problems("fleet[1].split=33")
    assert problem == Problem(
        "fleet[1].split", "must be within 0..32 (synthetic:smollm2-135m has 32 blocks), got 33"
    )


def test_hardware_must_exist_and_stand_on_its_side() -> None:
    unknown, device_side, server_side = check_problems(
        "fleet[0].hardware=pi-6", "fleet[1].hardware=h100-sxm", "servers.hardware=laptop-cpu"
    )
    assert unknown.path == "fleet[0].hardware"
    assert unknown.message.startswith("unknown hardware 'pi-6'; fleet groups need a device entry: ")
    assert "raspberry-pi-5" in unknown.message and "h100-sxm" not in unknown.message
    assert device_side.path == "fleet[1].hardware"
    assert device_side.message.startswith("'h100-sxm' is a server entry; fleet groups need a")
    assert server_side.path == "servers.hardware"
    assert server_side.message.startswith("'laptop-cpu' is a device entry; servers need a server")
    assert "ideal" in server_side.message


def test_a_dtype_the_hardware_lacks() -> None:
    group, servers = check_problems(
        "fleet[0].dtype=bf16", "servers.hardware=a100-80gb", "servers.dtype=fp8"
    )
    assert group.path == "fleet[0].dtype"
    assert "'raspberry-pi-5' has no peak_flops_per_s for dtype 'bf16'" in group.message
    assert servers.path == "servers.dtype" and "'fp8'" in servers.message


def test_codec_configs_must_build() -> None:
    top, group = check_problems("codec.id=zip9", "fleet[1].codec={id: slicer, bogus: 1}")
    assert top.path == "codec" and "unknown codec id 'zip9'" in top.message
    assert group.path == "fleet[1].codec" and "bogus" in group.message


def test_named_files_must_exist(tmp_path: Path) -> None:
    (tmp_path / "there.log").write_text("1\n")
    found = check_problems(
        f"fleet[0].uplink={{trace: 'file:{tmp_path / 'there.log'}', format: mahimahi}}",
        f"fleet[0].downlink={{trace: 'file:{tmp_path / 'gone.log'}', format: csv}}",
        f"fleet[1].arrivals={{kind: trace, path: {tmp_path / 'arrivals.txt'}}}",
        "network.cells[0].uplink.trace=file:/no/such/cell.log",
        "network.cells[0].uplink.format=pensieve",
        "mode=replay",
        f"replay_from={tmp_path / 'runs'}",
    )
    assert [(p.path, p.message) for p in found] == [
        ("fleet[0].downlink.trace", f"bandwidth trace file not found: {tmp_path / 'gone.log'}"),
        ("fleet[1].arrivals.path", f"arrival trace file not found: {tmp_path / 'arrivals.txt'}"),
        ("network.cells[0].uplink.trace", "bandwidth trace file not found: /no/such/cell.log"),
        ("replay_from", f"not found: {tmp_path / 'runs'}"),
    ]
    (tmp_path / "runs").mkdir()  # there, but with no profile to replay: said before any run
    with pytest.raises(ScenarioError, match=r"replay_from: no profile\.parquet under"):
        check(load(BASE, ["mode=replay", f"replay_from={tmp_path / 'runs'}"]))


def test_all_problems_are_collected_into_one_error() -> None:
    found = check_problems("model.name=nope", "fleet[0].hardware=nope", "codec.id=nope")
    assert [p.path for p in found] == ["model.name", "codec", "fleet[0].hardware"]


def test_sweep_points_are_checked_and_say_which_points(tmp_path: Path) -> None:
    scenario = load(
        BASE,
        [
            "sweep.fleet[0].hardware=[raspberry-pi-5, h100-sxm, pi-6]",
            "sweep.servers.replicas=[1, 2]",
        ],
    )
    with pytest.raises(ScenarioError) as caught:
        check(scenario)
    first, second = caught.value.problems
    assert first.path == second.path == "fleet[0].hardware"
    assert first.message.startswith("points 2-3 (fleet[0].hardware='h100-sxm'): 'h100-sxm' is a")
    assert second.message.startswith("points 4-5 (fleet[0].hardware='pi-6'): unknown hardware")


def test_a_sweep_replacing_a_bad_name_in_every_point_passes() -> None:
    check(load(BASE, ["fleet[0].hardware=pi-6", "sweep.fleet[0].hardware=[raspberry-pi-5, ideal]"]))
    (problem,) = check_problems("fleet[0].hardware=pi-6", "sweep.servers.replicas=[1, 2]")
    assert problem.path == "fleet[0].hardware" and problem.message.startswith("unknown hardware")


def test_prompts_choose_a_causal_lms_text() -> None:
    s = load(BASE, ["model.prompts=lee-test"])
    assert s.model.prompts == "lee-test" and load(BASE).model.prompts == "lee-background"
    check(s)  # synthetic:smollm2-135m is a causal LM
    with pytest.raises(ScenarioError) as caught:
        load(BASE, ["model.prompts=lee-train"])
    (problem,) = caught.value.problems
    assert problem.path == "model.prompts" and "lee-test" in problem.message
    (problem,) = check_problems("model.name=mobilenetv2", "model.prompts=lee-test")
    assert problem.path == "model.prompts"
    assert "mobilenetv2 is a image-classification model" in problem.message
    assert "remove prompts: lee-test" in problem.message
    check(load(BASE, ["model.name=mobilenetv2", "fleet[0].split=3", "fleet[1].split=0"]))


def test_a_codec_cost_file_must_read_and_cover_the_codecs(tmp_path: Path) -> None:
    from models.codec_cost import CallCost, CodecCosts

    (problem,) = check_problems(f"codec_costs={tmp_path / 'none.yaml'}")
    assert problem.path == "codec_costs" and "not a codec cost file" in problem.message
    cost = CallCost(1e-5, 1e-9, 0.0)
    only_int8 = CodecCosts(
        {'{"id":"int8"}': {"encode": cost, "decode": cost}}, defaults={"int8": '{"id":"int8"}'}
    ).write(tmp_path / "costs.yaml")
    problems = check_problems(f"codec_costs={only_int8}", "fleet[0].codec=int8")
    assert [p.path for p in problems] == ["codec"]  # the fp16 that fleet[1] uses has no fit
    assert "slicer calibrate-codecs --codec" in problems[0].message


def test_a_slicer_llm_profile_must_be_the_groups_model_and_split() -> None:
    config = "{id: slicer-llm, profile: smollm2-135m/16}"
    found = check_problems(f"codec={config}", f"fleet[1].codec={config}")
    top, group = [p for p in found if p.path.endswith(".profile")]  # beside: no codec time fit
    assert top.path == "codec.profile"  # fleet[0] (split 4) takes the scenario's codec
    assert "'synthetic:smollm2-135m/4'" in top.message and "is 'smollm2-135m/16'" in top.message
    assert group.path == "fleet[1].codec.profile"
    assert "'synthetic:smollm2-135m/2'" in group.message
