"""Calibrate-then-replay: ``replay_from`` naming a scenario file (``.yaml``/``.yml``).

``calibrate`` first runs that scenario (``mode: real``, with the ``ray`` fields the replayed
scenario sets) into ``<out>/calibration/`` through the run function it is given (the runner
passes its own ``run``, so this module never imports the runner), unless a finished run of it
is already there, and returns the replayed points pointing their ``replay_from`` at that
directory (so their manifests name it). Before any compute it checks that the calibration
records every (model, task, lengths, split, codec) the points replay, and that the directory
holds no run of another calibration: replay reads every profile below it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from fleet.run import rundir
from fleet.run.check import check
from fleet.run.point import RunResult
from fleet.run.rundir import CALIBRATION_DIR
from scenarios import RunSpec, Scenario, ScenarioError, expand, load
from scenarios.schema import AdaptivePolicy, CodecSpec
from server.engine.jobs import OracleError, full_codec_key

__all__ = [
    "CALIBRATION_DIR",
    "RunScenario",
    "calibrate",
    "calibration_file",
    "check_coverage",
    "heads",
    "refuse_other_runs",
]

SCENARIO_SUFFIXES = (".yaml", ".yml")


class RunScenario(Protocol):
    """What runs the calibration scenario: every point of it into ``out`` (the runner's
    ``run``)."""

    def __call__(
        self, scenario: Scenario, out: Path | None = None, *, quiet: bool = False
    ) -> list[RunResult]: ...


def calibration_file(points: Sequence[RunSpec]) -> str | None:
    """The scenario file the replayed points name in ``replay_from``, if they name one."""
    files = {
        p.scenario.replay_from
        for p in points
        if p.scenario.mode == "replay"
        and p.scenario.replay_from is not None
        and Path(p.scenario.replay_from).suffix.lower() in SCENARIO_SUFFIXES
    }
    if len(files) > 1:
        raise ValueError(
            f"replay_from: the points name {len(files)} calibration scenarios ({sorted(files)}); "
            "a run takes one: sweep splits and codecs inside that calibration file instead"
        )
    return files.pop() if files else None


def calibrate(
    path: str,
    scenario: Scenario,
    points: Sequence[RunSpec],
    out: Path,
    *,
    quiet: bool,
    run: RunScenario,
) -> list[RunSpec]:
    """Run the calibration scenario at ``path`` into ``out/calibration`` with ``run`` (unless
    a finished run of it is there) and return ``points`` with their ``replay_from`` pointing
    there."""
    ray = scenario.ray.model_dump(mode="json", include=scenario.ray.model_fields_set)
    calibration = load(path, [f"ray.{k}={json.dumps(v)}" for k, v in ray.items()])
    if calibration.mode != "real":
        raise ValueError(
            f"replay_from: {path} is a calibration scenario, so it must run mode: real (it has "
            f"mode: {calibration.mode}); set mode: real there, or replay from a results directory"
        )
    check(calibration)
    specs = expand(calibration)
    replayed = {
        p.index for p in points if p.scenario.mode == "replay" and p.scenario.replay_from == path
    }
    check_coverage(path, specs, [p for p in points if p.index in replayed])
    target = out / CALIBRATION_DIR
    runs = {
        target / s.name if calibration.sweep else target: rundir.run_id(s.scenario) for s in specs
    }
    refuse_other_runs(target, set(runs.values()), path)
    if all(rundir.complete(where, run_id) is not None for where, run_id in runs.items()):
        print(f"calibration {target}: finished before, skipped", file=sys.stderr)
    else:
        if not quiet:
            print(f"calibration: {len(specs)} real run(s) of {path} -> {target}", file=sys.stderr)
        if calibration.sweep is None:
            rundir.clear_unfinished(target)
        failed = [r for r in run(calibration, target, quiet=quiet) if r.error]
        if failed:
            raise OracleError(
                f"the calibration {path} failed at {failed[0].path}: {failed[0].error}; fix "
                "that scenario and run again (its finished points are kept)"
            )
    where = os.path.abspath(target)
    return [
        dataclasses.replace(p, scenario=p.scenario.model_copy(update={"replay_from": where}))
        if p.index in replayed
        else p
        for p in points
    ]


Key = tuple[str, str, str, int, int, int, str]


def heads(s: Scenario) -> list[tuple[str, Key]]:
    """Every (field path, (model, task, prompts, seq_len, new_tokens, split, codec)) a run of
    ``s`` computes: each group's own head and, for an adaptive group, each option's."""
    m = s.model

    def key(split: int, codec: CodecSpec) -> Key:
        return (
            m.name,
            m.task,
            m.prompts,
            m.seq_len,
            m.new_tokens,
            split,
            full_codec_key(codec.config()),
        )

    out = []
    for i, g in enumerate(s.fleet):
        out.append((f"fleet[{i}].split", key(g.split, s.codec_for(g))))
        if isinstance(g.policy, AdaptivePolicy):
            for j, option in enumerate(g.policy.options):
                codec = option.codec if option.codec is not None else s.codec_for(g)
                out.append((f"fleet[{i}].policy.options[{j}]", key(option.split, codec)))
    return out


def check_coverage(path: str, specs: Sequence[RunSpec], replayed: Sequence[RunSpec]) -> None:
    """Every (model, task, prompts, seq_len, new_tokens, split, codec) that ``replayed`` needs,
    an adaptive group's heads included, must be one that a calibration point records; else a
    ``ScenarioError`` at ``replay_from`` naming the field of each missing head."""
    have = {k for s in specs for _, k in heads(s.scenario)}
    missing = sorted(
        {(field, k) for p in replayed for field, k in heads(p.scenario) if k not in have}
    )
    if missing:
        rows = [f"{field}: {k}" for field, k in missing]
        shown = "\n  ".join(rows[:8]) + ("\n  ..." if len(rows) > 8 else "")
        raise ScenarioError.at(
            "replay_from",
            f"the calibration {path} does not record what this scenario replays. "
            "Missing (model, task, prompts, seq_len, new_tokens, split, codec):"
            f"\n  {shown}\nit records:"
            "\n  " + "\n  ".join(map(str, sorted(have))) + "\nadd those splits and codecs to "
            "the calibration's fleet or sweep, or replay fewer",
        )


def refuse_other_runs(target: Path, run_ids: set[str], path: str) -> None:
    """``target`` must hold no run that the calibration at ``path`` does not make: replay reads
    every profile below it."""
    for manifest in [target / "manifest.json", *sorted(target.glob("*/manifest.json"))]:
        try:
            run_id = json.loads(manifest.read_text()).get("run_id")
        except (OSError, ValueError):
            continue
        if run_id not in run_ids:
            raise FileExistsError(
                f"{manifest.parent} holds run {run_id}, which the calibration {path} does not "
                f"make (did that file change?); delete {target} to calibrate again, or choose "
                "another --out"
            )
