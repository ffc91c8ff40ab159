"""One run: a single scenario point (no sweep) simulated into its own results directory.

``run_one`` writes ``manifest.json`` (status ``running`` first, ``complete``, ``failed`` or
``interrupted`` at the end; see ``fleet.run.rundir``), ``requests.parquet`` (row groups flushed
to a part file as requests finish, renamed when whole), ``servers.parquet``, ``summary.json``
and, for real runs, ``profile.parquet`` (``task: infer``) or ``generations.parquet`` (``task:
generate``): what the ``ReplayOracle`` samples later. ``task: generate`` runs also write
``steps.parquet``. The same scenario and seed give byte-identical Parquet files. Oracles are
shared through the ``oracles`` cache a caller passes (a sweep's points reuse one actor pool);
without one, the run closes its own.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.core import decode_pool_cores
from fleet.run import rundir
from fleet.run.progress import RunProgress, number
from fleet.run.rundir import CALIBRATION_DIR
from scenarios import Scenario
from server.engine.jobs import Oracle, RecordingOracle, full_codec_key

if TYPE_CHECKING:
    from fleet.sim import SimOutput


@dataclass(frozen=True)
class RunResult:
    path: Path
    summary: dict[str, Any]
    error: str | None = None  # a sweep point that failed: why


def run_one(
    scenario: Scenario, out: Path, *, quiet: bool = False, oracles: dict[str, Oracle] | None = None
) -> RunResult:
    """One run (no sweep) into ``out``: a new or empty directory, or one where a run of the same
    scenario finished (its summary is returned; nothing runs) or did not finish (cleared and
    run again); see ``rundir.prepare``. Every table is written whole or not at all."""
    if scenario.sweep is not None:
        raise ValueError("run_one takes a single point; use run() for a sweep")
    run_id = rundir.run_id(scenario)
    done = rundir.prepare(out, run_id, keep=(CALIBRATION_DIR,))
    if done is not None:
        if not quiet:
            print(f"{scenario.name}: finished before in {out}, reused", file=sys.stderr)
        return RunResult(out, done)
    out.mkdir(parents=True, exist_ok=True)
    if oracles is None:  # a run of its own: its oracle goes when it ends
        own: dict[str, Oracle] = {}
        try:
            return run_one(scenario, out, quiet=quiet, oracles=own)
        finally:
            for oracle in own.values():
                oracle.close()
    with rundir.writing(out):
        return _run_here(scenario, out, run_id, oracles, quiet)


def _run_here(
    scenario: Scenario, out: Path, run_id: str, oracles: dict[str, Oracle], quiet: bool
) -> RunResult:
    """Simulate into the prepared directory ``out``, then summarise and mark it complete."""
    from records.summary import summarize_run

    manifest = rundir.start_manifest(scenario, run_id)
    rundir.write_json(out / "manifest.json", manifest)
    wall_start = time.perf_counter()
    try:
        oracle = _oracle(scenario, oracles)
        before = oracle.stats()  # a sweep's points share oracles: count this point's calls
        output = _simulate(scenario, oracle, run_id, out, quiet, wall_start)
    except BaseException as exc:
        status, error = rundir.ended_by(exc)
        manifest.update(status=status, error=error, ended_at=rundir.now())
        rundir.write_json(out / "manifest.json", manifest)
        raise
    decode_cores = decode_pool_cores(scenario.servers)
    summary = summarize_run(
        out,
        replicas=scenario.servers.replicas,
        generate=scenario.model.task == "generate",
        sim_time_s=output.sim_time_s,
        decode_cores=decode_cores,
        replica_failures=output.replica_failures,
        replica_down_s=output.replica_down_s,
        facts={"events": output.events, **oracle_counts(before, output.oracle)},
    )
    rundir.write_json(out / "summary.json", summary)
    wall_s = time.perf_counter() - wall_start
    manifest.update(
        status="complete",
        ended_at=rundir.now(),
        wall_s=wall_s,
        decode_cores=decode_cores,
        assumptions=list(output.assumptions),
    )
    rundir.write_json(out / "manifest.json", manifest)
    if not quiet:
        print(
            f"{scenario.name}: {output.completed:,} of {output.requests:,} requests completed "
            f"in {number(output.sim_time_s)} simulated s ({wall_s:.1f} s wall) -> {out}",
            file=sys.stderr,
        )
    return RunResult(out, summary)


def oracle_counts(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """``oracle_<counter>`` for every counter of the oracle's ``stats``: what it counted
    between ``before`` and ``after``, i.e. during one run even when earlier points of a sweep
    used the same oracle. Memo hits still count answers that an earlier point computed."""
    return {f"oracle_{k}": int(v) - int(before.get(k, 0)) for k, v in after.items()}


def _simulate(
    scenario: Scenario, oracle: Oracle, run_id: str, out: Path, quiet: bool, wall_start: float
) -> SimOutput:
    """Run the simulation, writing its tables into ``out`` as it goes."""
    from fleet.sim import Simulation
    from records import tables as records
    from records.tables import TableWriter

    keys = [full_codec_key(scenario.codec_for(g).config()) for g in scenario.fleet]
    progress = None if quiet else RunProgress(scenario, wall_start)
    generate = scenario.model.task == "generate"
    with contextlib.ExitStack() as stack:
        schema = records.GENERATE_REQUESTS_SCHEMA if generate else records.REQUESTS_SCHEMA
        requests = stack.enter_context(TableWriter(out / "requests.parquet", schema))
        step_sink = None
        if generate:
            steps = stack.enter_context(TableWriter(out / "steps.parquet", records.STEPS_SCHEMA))
            step_sink = steps.append
        sim = Simulation(
            scenario,
            oracle,
            run_id=run_id,
            codec_keys=keys,
            sink=requests.append,
            step_sink=step_sink,
            progress=progress,
        )
        output = sim.run()
    servers_schema = records.GENERATE_SERVERS_SCHEMA if generate else records.SERVERS_SCHEMA
    with TableWriter(out / "servers.parquet", servers_schema) as writer:
        writer.append(output.servers)
    if scenario.mode == "real":
        assert isinstance(oracle, RecordingOracle)
        if generate:
            with TableWriter(out / "generations.parquet", records.GENERATIONS_SCHEMA) as writer:
                writer.append(oracle.generation_rows())
        else:
            with TableWriter(out / "profile.parquet", records.PROFILE_SCHEMA) as writer:
                writer.append(oracle.profile_rows())
    return output


def _oracle(scenario: Scenario, oracles: dict[str, Oracle]) -> Oracle:
    """The oracle ``scenario`` runs on, from ``oracles`` or built into it (one Ray actor pool at
    a time: building another closes the one there)."""
    if scenario.mode == "replay":
        assert scenario.replay_from is not None
        key = f"replay:{scenario.replay_from}"
        if key not in oracles:
            from fleet.compute.replay import ReplayOracle

            oracles[key] = ReplayOracle([scenario.replay_from])
        return oracles[key]
    if not scenario.ray.enabled:
        if "local" not in oracles:
            from server.engine.local import LocalOracle

            oracles["local"] = LocalOracle()
        return oracles["local"]
    key = f"ray:{scenario.ray.model_dump_json()}:{scenario.model.name}:{scenario.model.seq_len}"
    if key not in oracles:
        from fleet.compute.ray_oracle import RayOracle

        for old in [k for k in oracles if k.startswith("ray:")]:
            oracles.pop(old).close()  # one actor pool at a time
        oracles[key] = RayOracle(scenario.ray, [(scenario.model.name, scenario.model.seq_len)])
    return oracles[key]
