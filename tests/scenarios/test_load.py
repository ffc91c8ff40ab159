"""The scenario loader: errors name the field path and the file line, overrides, and paths."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import scenarios
from scenarios import Problem, ScenarioError, load, loads, parse_override, set_path
from scenarios.paths import parse_path

BASE = Path(__file__).with_name("base.yaml")

# Line numbers below refer to this text: 6 is "- name: g", 10 "arrivals:", 12 "rate_per_s".
TEXT = """\
name: t
duration_s: 10
model:
  name: synthetic:smollm2-135m
fleet:
  - name: g
    count: 3
    hardware: raspberry-pi-5
    split: 1
    arrivals:
      kind: poisson
      rate_per_s: 2
"""


def problems(text: str, *overrides: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as caught:
        loads(text, "t.yaml", overrides)
    return caught.value.problems


def one(text: str, *overrides: str) -> Problem:
    found = problems(text, *overrides)
    assert len(found) == 1, found
    return found[0]


def test_the_bundled_test_scenario_loads() -> None:
    s = load(BASE)
    assert s.name == "base" and s.seed == 7 and s.duration_s == 30.0
    assert [g.name for g in s.fleet] == ["pis", "phones"]
    assert s.fleet[0].uplink is not None and s.fleet[0].uplink.kind == "constant"
    assert s.fleet[1].arrivals.kind == "periodic"
    assert s.servers.batching.max_batch == 8 and s.servers.routing == "shared-queue"
    assert loads(TEXT).codec.id == "fp16"  # the default codec


def test_negative_rate_names_the_path_without_the_union_tag_and_its_line() -> None:
    problem = one(TEXT.replace("rate_per_s: 2", "rate_per_s: -5"))
    assert problem == Problem("fleet[0].arrivals.rate_per_s", "must be > 0, got -5", 12)
    assert str(problem) == "fleet[0].arrivals.rate_per_s: must be > 0, got -5 (line 12)"


def test_one_problem_is_one_line_after_the_file_name() -> None:
    with pytest.raises(ScenarioError) as caught:
        loads(TEXT.replace("count: 3", "count: 0"), "my.yaml")
    assert str(caught.value) == "my.yaml: fleet[0].count: must be >= 1, got 0 (line 7)"


def test_unknown_key_lists_the_allowed_keys_and_a_close_match() -> None:
    problem = one(TEXT.replace("rate_per_s: 2", "rate_per_s: 2\n      rate_per_sec: 3"))
    assert problem.path == "fleet[0].arrivals.rate_per_sec" and problem.line == 13
    assert problem.message == (
        "unknown key; allowed here: kind, rate_per_s (did you mean rate_per_s?)"
    )
    top = one(TEXT + "colour: red\n")
    assert top.path == "colour" and top.line == 13
    assert top.message.startswith("unknown key; allowed here: name, description, seed, ")


def test_strict_types_name_the_type_that_arrived() -> None:
    problem = one(TEXT.replace("count: 3", 'count: "5"'))
    assert (problem.path, problem.line) == ("fleet[0].count", 7)
    assert problem.message == "must be an integer, got '5' (a string)"
    assert one(TEXT.replace("count: 3", "count: 2.5")).message == (
        "must be an integer, got 2.5 (a number)"
    )
    assert one(TEXT.replace("count: 3", "count: true")).message == (
        "must be an integer, got true (a boolean)"
    )
    assert one(TEXT.replace("name: t", "name: 5")).message == "must be a string, got 5 (an integer)"
    assert one(TEXT.replace("count: 3", "count:")).message == "must be an integer, got null"


def test_missing_keys_report_their_parent_mapping_line() -> None:
    assert one(TEXT.replace("model:\n  name: synthetic:smollm2-135m\n", "")) == Problem(
        "model", "required", 1
    )
    assert one(TEXT.replace("      rate_per_s: 2\n", "")) == Problem(
        "fleet[0].arrivals.rate_per_s", "required", 10
    )
    assert one(TEXT.replace("    split: 1\n", "")) == Problem("fleet[0].split", "required", 6)


def test_a_bad_arrivals_kind_lists_the_kinds() -> None:
    problem = one(TEXT.replace("kind: poisson", "kind: posson"))
    assert (problem.path, problem.line) == ("fleet[0].arrivals.kind", 11)
    assert problem.message == "must be one of poisson, periodic, on-off, trace; got 'posson'"
    missing = one(TEXT.replace("      kind: poisson\n", ""))
    assert (missing.path, missing.line) == ("fleet[0].arrivals.kind", 10)
    assert missing.message == "required: one of poisson, periodic, on-off, trace"


def test_literals_names_and_infinities() -> None:
    dtype = one(TEXT.replace("split: 1", "split: 1\n    dtype: fp64"))
    assert dtype.message == "must be one of fp32, tf32, fp16, bf16, fp8, int8; got 'fp64'"
    name = one(TEXT.replace("name: g", "name: my group"))
    assert name.path == "fleet[0].name" and "letters, digits" in name.message
    assert one(TEXT.replace("rate_per_s: 2", "rate_per_s: .inf")).message == (
        "must be a finite number, got inf"
    )
    empty = problems(TEXT.replace("fleet:\n", "fleet: []\nx:\n"))[0]
    assert empty == Problem("fleet", "must have at least 1 item(s), got 0", 5)


def test_duplicate_yaml_keys_name_the_key_and_both_lines() -> None:
    problem = one(TEXT.replace("count: 3", "count: 3\n    count: 4"))
    assert problem.path == "fleet[0].count" and problem.line == 8
    assert "duplicate key 'count': first on line 7, again on line 8" in problem.message


def test_yaml_syntax_errors_give_the_line() -> None:
    problem = one(TEXT.replace("    split: 1", "    split: [1"))
    assert problem.path == "" and problem.line is not None and problem.line >= 9
    assert problem.message.startswith("invalid YAML")
    assert one("name: x\n  bad: y: z\n").line == 2


def test_the_top_level_must_be_a_mapping() -> None:
    problem = one("- 1\n- 2\n")
    assert problem.message.startswith("the top level must be a mapping")
    assert "got [1, 2] (a list)" in problem.message
    assert "empty" in one("# nothing here\n").message


def test_a_group_naming_an_undefined_cell() -> None:
    problem = one(TEXT.replace("split: 1", "split: 1\n    cell: tower"))
    assert (problem.path, problem.line) == ("fleet[0].cell", 10)
    assert "names cell 'tower', which network.cells does not define" in problem.message


def test_a_group_with_its_own_uplink_in_a_cell_with_one() -> None:
    text = BASE.read_text().replace(
        "    cell: tower\n", "    cell: tower\n    uplink: {bandwidth_mbps: 5}\n"
    )
    problem = one(text)
    assert problem.path == "fleet[1].uplink" and problem.line == 23
    assert problem.message == (
        "group 'phones' sets its own uplink but shares the uplink of cell 'tower'; "
        "remove one of them"
    )


def test_validator_messages_point_at_the_field_and_drop_the_pydantic_prefix() -> None:
    problem = one(TEXT.replace("split: 1", "split: 1\n    uplink: {kind: constant}"))
    assert problem == Problem(
        "fleet[0].uplink.bandwidth_mbps", "a constant link needs bandwidth_mbps", 10
    )
    twice = one(TEXT + TEXT[TEXT.index("  - name: g") :])
    assert twice.path == "fleet[1].name" and "already used by fleet[0]" in twice.message


def test_several_problems_are_reported_at_once() -> None:
    text = TEXT.replace("count: 3", "count: -1").replace("rate_per_s: 2", "rate_per_s: 0")
    with pytest.raises(ScenarioError) as caught:
        loads(text + "extra: 1\n", "many.yaml")
    err = caught.value
    assert [p.path for p in err.problems] == [
        "fleet[0].count",
        "fleet[0].arrivals.rate_per_s",
        "extra",
    ]
    lines = str(err).splitlines()
    assert lines[0] == "many.yaml: 3 problems"
    assert lines[1] == "  fleet[0].count: must be >= 1, got -1 (line 7)"


def test_scenario_errors_pickle_and_are_value_errors() -> None:
    err = ScenarioError([Problem("a.b", "bad", 3), Problem("c", "worse")], "s.yaml")
    again: ScenarioError = pickle.loads(pickle.dumps(err))
    assert isinstance(again, ValueError)
    assert again.problems == err.problems and str(again) == str(err)


def test_parse_override_reads_values_as_yaml() -> None:
    assert parse_override("fleet[0].count=100") == ("fleet[0].count", 100)
    assert parse_override("servers.batching.max_wait_s=0.01") == (
        "servers.batching.max_wait_s",
        0.01,
    )
    assert parse_override("codec.id=fp16") == ("codec.id", "fp16")
    assert parse_override("codec={id: slicer, max_nmse: 0.01}") == (
        "codec",
        {"id": "slicer", "max_nmse": 0.01},
    )
    assert parse_override("description=a=b") == ("description", "a=b")
    assert parse_override("duration_s=") == ("duration_s", None)
    for bad in ("count", "=5", "fleet[x].count=1", "a..b=1", "codec={id: [}"):
        with pytest.raises(ScenarioError):
            parse_override(bad)


def test_paths_parse_keys_indices_and_sweep_entries() -> None:
    assert parse_path("fleet[0].arrivals.rate_per_s") == ("fleet", 0, "arrivals", "rate_per_s")
    assert parse_path("a[1][2].b") == ("a", 1, 2, "b")
    assert parse_path("sweep.fleet[0].count") == ("sweep", "fleet[0].count")
    assert parse_path("sweep.zip.codec.id") == ("sweep", "zip", "codec.id")
    assert parse_path("sweep") == ("sweep",)


def test_set_path_copies_creates_keys_and_needs_existing_indices() -> None:
    data: dict[str, Any] = {"fleet": [{"count": 1}], "servers": None}
    out = set_path(data, "fleet[0].count", 5)
    assert out["fleet"][0]["count"] == 5 and data["fleet"][0]["count"] == 1
    assert set_path(data, "servers.batching.max_batch", 4)["servers"] == {
        "batching": {"max_batch": 4}
    }
    with pytest.raises(ScenarioError, match=r"fleet has 1 item\(s\), so \[3\] does not exist"):
        set_path(data, "fleet[3].count", 1)
    with pytest.raises(ScenarioError, match="has no key 'x'"):
        set_path(data, "fleet[0].count.x", 1)
    with pytest.raises(ScenarioError, match="does not exist"):
        set_path(data, "groups[0].count", 1)


def test_overrides_apply_in_order_with_typed_values() -> None:
    s = load(
        BASE,
        [
            "fleet[0].count=100",
            "codec={id: slicer, max_nmse: 0.01}",
            "servers.batching.max_wait_s=0.01",
            "fleet[1].dtype=fp32",
            "fleet[1].dtype=bf16",
            "seed=3",
        ],
    )
    assert s.fleet[0].count == 100 and s.seed == 3 and s.fleet[1].dtype == "bf16"
    assert s.codec.config() == {"id": "slicer", "max_nmse": 0.01}
    assert s.servers.batching.max_wait_s == 0.01 and s.servers.batching.max_batch == 8


def test_override_problems_say_which_override() -> None:
    found = problems(TEXT, "servers.colour=red", "fleet[0].count=0")
    assert [str(p) for p in found] == [  # in the schema's field order
        "fleet[0].count: must be >= 1, got 0 (from --set fleet[0].count=0)",
        "servers.colour: unknown key; allowed here: replicas, hardware, dtype, batching, "
        "routing, queue_limit, service, failures, decode, kv_cache_bytes "
        "(from --set servers.colour=red)",
    ]
    bad = one(TEXT, "fleet[3].count=1")
    assert bad.path == "fleet[3].count" and bad.origin == "from --set fleet[3].count=1"
    assert "fleet has 1 item(s), so [3] does not exist" in bad.message
    assert one(TEXT, "count").origin == "from --set count"


def test_relative_paths_resolve_against_the_file_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    text = TEXT.replace("kind: poisson\n      rate_per_s: 2", "kind: trace\n      path: arr.txt")
    text = text.replace("split: 1", 'split: 1\n    uplink: {trace: "file:up.log", format: csv}')
    text += "mode: replay\nreplay_from: ../runs/r1\n"
    (tmp_path / "sub" / "s.yaml").write_text(text)
    s = load(tmp_path / "sub" / "s.yaml")
    sub = tmp_path / "sub"
    assert s.fleet[0].arrivals.path == str(sub / "arr.txt")  # type: ignore[union-attr]
    assert s.fleet[0].uplink is not None and s.fleet[0].uplink.trace == f"file:{sub / 'up.log'}"
    assert s.replay_from == str(tmp_path / "runs" / "r1")
    assert loads(text, base_dir=tmp_path).replay_from == str(tmp_path.parent / "runs" / "r1")
    absolute = load(sub / "s.yaml", ["replay_from=/data/r2"])
    assert absolute.replay_from == "/data/r2"


def test_loads_and_overrides_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = TEXT + "mode: replay\nreplay_from: runs/a\n"
    assert loads(text).replay_from == str(tmp_path / "runs" / "a")
    s = load(BASE, ["fleet[0].uplink={trace: 'file:t.log', format: mahimahi}"])
    assert s.fleet[0].uplink is not None and s.fleet[0].uplink.trace == f"file:{tmp_path / 't.log'}"
    assert os.path.isabs(load(BASE, ["mode=replay", "replay_from=r"]).replay_from or "")


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the scenario file"):
        load(tmp_path / "nope.yaml")


def test_bad_sweeps_are_reported_under_sweep_with_lines() -> None:
    problem = one(TEXT + "sweep:\n  fleet[0].count: [1, 2, -1]\n")
    assert problem.path == "sweep.fleet[0].count" and problem.line == 14
    assert problem.message == "point 2 (fleet[0].count=-1): must be >= 1, got -1"
    zipped = one(TEXT + "sweep:\n  zip:\n    fleet[0].split: 3\n")
    assert (zipped.path, zipped.line) == ("sweep.zip.fleet[0].split", 15)


def test_a_codec_may_be_given_by_its_id() -> None:
    assert loads(TEXT + "codec: slicer\n").codec.config() == {"id": "slicer"}


def test_json_schema_describes_the_scenario() -> None:
    schema = scenarios.json_schema()
    assert {"name", "model", "fleet", "sweep"} <= set(schema["properties"])


def test_importing_scenarios_does_not_import_torch() -> None:
    code = "import scenarios, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_decode_speedup_is_gone_and_says_what_replaces_it() -> None:
    bad = one(TEXT, "servers.decode_speedup=8")
    assert bad.path == "servers"
    assert "servers.decode.cores" in bad.message and "on: gpu" in bad.message


def test_decode_cores_count_host_cpus() -> None:
    bad = one(TEXT, "servers.decode={on: gpu, cores: 8}")
    assert bad.path == "servers.decode" and "give it with on: cpu" in bad.message
    assert one(TEXT, "servers.decode.cores=0").path == "servers.decode.cores"
