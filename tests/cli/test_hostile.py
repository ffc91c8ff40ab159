"""A corpus of bad scenarios and bad command lines, as a hostile new user would try them
(issue 17). Each case ends within seconds with exit status 2 and one message that names the
field path (or the option), leaves nothing new on disk, and loses nothing already written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cli.main import build_parser, main
from tests.fleet.simkit import write_profile

BOUND_S = 10.0  # in-process; the refusals themselves take well under a second

SCENARIO = """
name: hostile
seed: 3
duration_s: 20
mode: replay
replay_from: {profile}
model: {{name: synthetic:smollm2-135m, seq_len: 8}}
codec: fp32
fleet:
  - {{name: g, count: 3, hardware: ideal, split: 4, arrivals: {{kind: poisson, rate_per_s: 0.5}},
     uplink: {{bandwidth_mbps: 10}}, downlink: {{kind: ideal}}}}
servers: {{replicas: 2, hardware: ideal}}
"""

#: (id, --set overrides, the start of the message: its field path, and a phrase of it)
BAD_SCENARIOS = [
    ("a-hundred-million-devices", ["fleet[0].count=100000000"], "fleet[0].count: about"),
    ("a-billion-requests-per-s", ["fleet[0].arrivals.rate_per_s=1e9"], "fleet[0].arrivals: "),
    ("duration-1e300", ["duration_s=1e300"], "duration_s: about"),
    (
        "outages-every-nanosecond",
        ["fleet[0].uplink.outages={mean_gap_s: 1e-9, mean_s: 1e-9}"],
        "fleet[0].uplink.outages: about",
    ),
    ("nanosecond-windows", ["record.window_s=1e-9"], "record.window_s: "),
    (
        "failures-every-nanosecond",
        ["servers.failures={mtbf_s: 1e-9, mttr_s: 1e-9}"],
        "servers.failures: about",
    ),
    (
        "a-sweep-point-too-big",
        ["sweep.fleet[0].count=[1, 100000000]"],
        "fleet[0].count: point 1 (fleet[0].count=100000000): about",
    ),
    (
        "an-unknown-synthetic-preset",
        ["fleet[0].uplink={trace: 'synthetic:6g'}"],
        "fleet[0].uplink.trace: unknown synthetic trace '6g'",
    ),
    ("a-split-the-profile-lacks", ["fleet[0].split=5"], "replay_from: the replay profile has"),
    (
        "a-budget-and-a-rate",
        ["codec={id: slicer, max_nmse: 0.01, bits_per_element: 2}"],
        "codec: codec 'slicer': max_nmse=0.01 conflicts with bits_per_element=2",
    ),
    ("an-unknown-codec-parameter", ["codec={id: fp16, level: 3}"], "codec: codec 'fp16' has no"),
]


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(profile=write_profile(tmp_path / "profile")))
    return path


def _run(args: list[str]) -> tuple[int, float]:
    start = time.monotonic()
    code = main(args)
    return code, time.monotonic() - start


@pytest.mark.parametrize(
    ("sets", "expected"), [c[1:] for c in BAD_SCENARIOS], ids=[c[0] for c in BAD_SCENARIOS]
)
def test_a_bad_scenario_ends_in_seconds_at_its_field(
    scenario_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sets: list[str],
    expected: str,
) -> None:
    out = tmp_path / "out"
    overrides = [arg for s in sets for arg in ("--set", s)]
    for command in (
        ["validate", str(scenario_file)],
        ["run", str(scenario_file), "--out", str(out)],
    ):
        code, took_s = _run([*command, *overrides])
        err = capsys.readouterr().err
        assert code == 2 and took_s < BOUND_S, err
        assert expected in err and "Traceback" not in err
        assert not out.exists()  # refused before anything was written


def test_a_refused_run_loses_nothing_already_written(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(scenario_file), "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for sets in ([], ["fleet[0].count=100000000"], ["fleet[0].uplink={trace: 'synthetic:6g'}"]):
        overrides = [arg for s in sets for arg in ("--set", s)]
        main(["run", str(scenario_file), "--out", str(out), "--quiet", *overrides])
    capsys.readouterr()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_ignore_limits_lets_a_run_past_the_estimate_and_the_loops_still_end(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    outages = "fleet[0].uplink.outages={mean_gap_s: 1e-9, mean_s: 1e-9}"
    args = ["run", str(scenario_file), "--out", str(out), "--ignore-limits", "--set", outages]
    code, took_s = _run(args)
    err = capsys.readouterr().err
    assert code == 2 and took_s < BOUND_S
    assert "random outages: more than 10,000,000 outage windows on one link" in err
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"


def test_a_huge_outage_end_prints_short_numbers(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    windows = "fleet[0].uplink.outages=[{start_s: 1, end_s: 1e300}]"
    assert main(["run", str(scenario_file), "--out", str(tmp_path / "o"), "--set", windows]) == 0
    printed = capsys.readouterr()
    assert max(len(line) for line in (printed.out + printed.err).splitlines()) < 200


def _unwritable(tmp_path: Path) -> Path:
    """A directory nothing can be created in, even by root (immutable), or skip."""
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pass  # not root or no chattr: the mode bits may be enough
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    (folder / "probe").unlink()
    pytest.skip("cannot make a directory unwritable here")


@pytest.fixture
def locked(tmp_path: Path) -> object:
    import subprocess

    folder = _unwritable(tmp_path)
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (lambda t: t / "a-file", "is a file, not a directory"),
        (lambda t: t / "a-file" / "below", "a-file is a file, so nothing can be created below"),
    ],
    ids=["out-is-a-file", "out-below-a-file"],
)
def test_an_output_path_that_cannot_be_a_directory(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where, expected
) -> None:
    (tmp_path / "a-file").write_text("mine")
    out = where(tmp_path)
    for command in ("run", "validate"):
        assert main([command, str(scenario_file), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: " in err and expected in err and "Traceback" not in err
    assert (tmp_path / "a-file").read_text() == "mine"


def test_an_unwritable_output_directory(
    scenario_file: Path, locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for out in (locked, locked / "below", locked / "sweep"):
        sweep = ["--set", "sweep.fleet[0].count=[1, 2]"] if out.name == "sweep" else []
        code, took_s = _run(["run", str(scenario_file), "--out", str(out), *sweep])
        err = capsys.readouterr().err
        assert code == 2 and took_s < BOUND_S
        assert f"--out {out}: cannot write in {locked}" in err and "Traceback" not in err


def test_eval_takes_a_bare_codec_id_as_scenario_files_do() -> None:
    args = build_parser().parse_args(["eval", "--model", "m", "--split", "1", "--codec", "fp16"])
    assert args.codec == {"id": "fp16"}
    args = build_parser().parse_args(
        ["eval", "--model", "m", "--split", "1", "--codec", '{"id": "zstd", "level": 5}']
    )
    assert args.codec == {"id": "zstd", "level": 5}
