"""The bundled scenario library: every file validates and documents how to run it, and a
shortened version of each runs end to end through ``fleet.run.runner.run``.

Shortened means tiny fleets, a few simulated seconds, one or two inputs and a small sweep, in
this process (``ray.enabled: false``, ``ray.parallel_sweep: false``); the overrides below are
what ``slicer run FILE --set ...`` would take. Real models load once per module and are shared
by every run (``models.load`` is memoised here); the quickstart's shortened calibration also
feeds the cluster-large replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import scenarios
from fleet.run.calibration import check_coverage
from fleet.run.check import check
from fleet.run.runner import CALIBRATION_DIR, RunResult, run
from tests.fleet.simkit import shared_model_loads
from tests.scenarios import golden

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "scenarios"
BUNDLED = sorted(LIBRARY.glob("*.yaml"))
SMALL = ["ray.enabled=false", "ray.parallel_sweep=false", "model.inputs=2"]
SLICER = {"id": "slicer", "max_nmse": 0.001}


@pytest.fixture(scope="module", autouse=True)
def _shared_models() -> Iterator[None]:
    with shared_model_loads():
        yield


def _set(path: str, value: Any) -> str:
    """A ``--set`` override; the value as JSON, which YAML reads back as the same value."""
    return f"{path}={json.dumps(value)}"


def _run(name: str, out: Path, overrides: Sequence[str]) -> list[RunResult]:
    """Load the bundled ``name`` with the overrides, check it, run it, expect no failure, and
    find the tables it wrote equal to the recorded ones (``golden``)."""
    scenario = scenarios.load(LIBRARY / f"{name}.yaml", [*SMALL, *overrides])
    check(scenario)
    results = run(scenario, out, quiet=True)
    assert [r.error for r in results] == [None] * len(results)
    for result in results:
        assert result.summary["completed"] > 0
        assert json.loads((result.path / "manifest.json").read_text())["status"] == "complete"
    golden.check(name, [r.path for r in results])
    return results


def _swept(name: str, key: str) -> list[Any]:
    """The values the bundled ``name`` sweeps at ``key``."""
    sweep = scenarios.load(LIBRARY / f"{name}.yaml").sweep
    assert sweep is not None
    values: list[Any] = sweep[key]
    return values


def _payloads(result: RunResult) -> set[int]:
    return set(pq.read_table(result.path / "requests.parquet").column("payload_bytes").to_pylist())


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_every_bundled_scenario_validates(path: Path) -> None:
    check(scenarios.load(path))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_every_bundled_scenario_says_what_it_shows_and_how_to_run_it(path: Path) -> None:
    text = path.read_text()
    header = text[: text.index("\nname:")]
    assert header.startswith("# ") and len(header.splitlines()) >= 3, "a header comment"
    assert f"slicer run scenarios/{path.name}" in header, "the command that runs it"


def test_the_library_has_every_scenario_the_issue_names() -> None:
    names = {p.stem for p in BUNDLED}
    wanted = {
        "quickstart",
        "vision-split-sweep",
        "llm-fleet-scaling",
        "codec-shootout",
        "heterogeneous-cells",
        "cluster-large",
    }
    assert wanted <= names


@pytest.mark.parametrize("name", ["quickstart", "cluster-large"])
def test_the_quickstart_calibration_covers_every_point_replayed_from_it(name: str) -> None:
    main = scenarios.load(LIBRARY / f"{name}.yaml")
    assert main.replay_from == str(LIBRARY / "quickstart-calibration.yaml")
    calibration = scenarios.load(main.replay_from)
    check_coverage(main.replay_from, scenarios.expand(calibration), scenarios.expand(main))


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart, shortened: its calibration (one split, fp16 and SLICER, two phones)
    written to a file that replay_from names, then a replayed sweep of two fleet sizes."""
    tmp = tmp_path_factory.mktemp("quickstart")
    calibration = scenarios.load(
        LIBRARY / "quickstart-calibration.yaml",
        [
            "model.inputs=2",
            "fleet[0].count=2",
            "requests_per_device=1",
            "fleet[0].split=16",
            _set("sweep", {"codec": ["fp16", SLICER]}),
        ],
    )
    short = tmp / "calibration.yaml"
    short.write_text(yaml.safe_dump(calibration.model_dump(mode="json", exclude_unset=True)))
    out = tmp / "out"
    results = _run(
        "quickstart",
        out,
        [
            _set("replay_from", str(short)),
            "duration_s=10",
            "fleet[0].split=16",
            _set("sweep", {"codec": ["fp16", SLICER], "fleet[0].count": [5, 50]}),
        ],
    )
    assert len(results) == 4
    return out


def test_quickstart_calibrates_then_replays_fp16_and_slicer(quickstart: Path) -> None:
    calibrated = sorted((quickstart / CALIBRATION_DIR).glob("*/profile.parquet"))
    assert len(calibrated) == 2
    sweep = pq.read_table(quickstart / "sweep.parquet").to_pylist()
    assert [r["status"] for r in sweep] == ["complete"] * 4
    for row in sweep:
        manifest = json.loads((quickstart / row["point"] / "manifest.json").read_text())
        assert manifest["scenario"]["replay_from"] == str(quickstart / CALIBRATION_DIR)
    fp16 = sweep[0]["uplink_bytes_per_request"]
    slicer = sweep[2]["uplink_bytes_per_request"]
    assert 2 * slicer < fp16  # SLICER's payloads, replayed from the real calibration


def test_cluster_large_replays_at_its_split(quickstart: Path, tmp_path: Path) -> None:
    results = _run(
        "cluster-large",
        tmp_path / "out",
        [
            _set("replay_from", str(quickstart / CALIBRATION_DIR)),
            "fleet[0].count=300",
            "fleet[0].split=16",
            "duration_s=5",
            _set("sweep", {"servers.replicas": [4, 8]}),
        ],
    )
    assert [r.summary["requests"] > 50 for r in results] == [True, True]


def test_vision_split_sweep_runs_every_codec_it_sweeps(tmp_path: Path) -> None:
    codecs = _swept("vision-split-sweep", "codec")
    results = _run(
        "vision-split-sweep",
        tmp_path / "out",
        [
            "fleet[0].count=2",
            "fleet[0].split=11",
            "duration_s=4",
            _set("sweep", {"codec": codecs}),
        ],
    )
    assert len(results) == len(codecs) == 4
    fp16, *others = (max(_payloads(r)) for r in results)
    assert all(size < fp16 for size in others)


def test_codec_shootout_runs_every_codec_on_the_real_feature(tmp_path: Path) -> None:
    codecs = _swept("codec-shootout", "codec")
    results = _run(
        "codec-shootout",
        tmp_path / "out",
        [
            "model.inputs=1",
            "fleet[0].count=1",
            "duration_s=null",
            "requests_per_device=1",
            _set("sweep", {"codec": codecs}),
        ],
    )
    families = {c if isinstance(c, str) else c["id"] for c in codecs}
    every = {"fp16", "bf16", "int8", "blockwise8", "zstd", "topk", "rans", "jpeg", "slicer"}
    assert families == every
    sent = [r.summary["uplink_bytes_per_request"] for r in results]
    fp16 = sent[codecs.index("fp16")]
    assert sent[codecs.index("bf16")] == fp16
    assert codecs[-1] == {"id": "slicer", "max_nmse": 0.03} and sent[-1] < fp16 / 4


def test_heterogeneous_cells_runs_every_group(tmp_path: Path) -> None:
    groups = scenarios.load(LIBRARY / "heterogeneous-cells.yaml").fleet
    counts = [f"fleet[{i}].count=2" for i in range(len(groups))]
    (result,) = _run("heterogeneous-cells", tmp_path / "out", [*counts, "duration_s=5"])
    seen = set(pq.read_table(result.path / "requests.parquet").column("group").to_pylist())
    assert seen == {g.name for g in groups}


def test_llm_fleet_scaling_generates_tokens(tmp_path: Path) -> None:
    results = _run(
        "llm-fleet-scaling",
        tmp_path / "out",
        [
            "model.inputs=1",
            "model.seq_len=16",
            "model.max_new_tokens=2",
            "duration_s=10",
            _set("sweep", {"fleet[0].count": [2, 4]}),  # 4 and 8 requests expected
        ],
    )
    for result in results:
        steps = pq.read_table(result.path / "steps.parquet")
        assert steps.num_rows > 0


def test_phones_vs_pis_runs_both_groups(tmp_path: Path) -> None:
    (result,) = _run(
        "phones-vs-pis",
        tmp_path / "out",
        ["fleet[0].count=2", "fleet[1].count=2", "duration_s=5"],
    )
    seen = set(pq.read_table(result.path / "requests.parquet").column("group").to_pylist())
    assert seen == {"phones", "pis"}
