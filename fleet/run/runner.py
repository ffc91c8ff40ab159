"""Run a scenario: one point, or every point of a sweep, into a results directory.

``run`` expands the scenario, runs the calibration first when ``replay_from`` names a scenario
file (``fleet.run.calibration``), then runs one point (``fleet.run.point.run_one``) or the sweep. A
sweep directory holds one run directory per point plus ``sweep.parquet`` (one row per point:
its parameters, status and headline metrics); re-running a sweep into the same directory skips
points whose manifest says ``complete``. Points run in parallel as Ray tasks where they can
(replayed points, or real ones with ``ray.enabled: false``), otherwise in turn, sharing their
oracles. A point that fails is recorded with its error and the others go on.

A sweep prints a progress bar on stderr as its points finish (redrawn in place when stderr is
a terminal and the points run in parallel, plain lines otherwise); ``quiet=True`` silences it.
``run`` and ``run_sweep`` return one ``RunResult`` per point, in the points' order.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet.run import rundir
from fleet.run.calibration import calibrate, calibration_file
from fleet.run.estimate import Limits, enforce
from fleet.run.output import check_output
from fleet.run.point import RunResult, run_one
from fleet.run.progress import SweepBar
from fleet.run.rundir import CALIBRATION_DIR
from scenarios import RunSpec, Scenario, expand
from server.engine.jobs import Oracle

__all__ = [
    "CALIBRATION_DIR",
    "RESULTS_ROOT",
    "SKIPS_NAMED",
    "RunResult",
    "default_out",
    "run",
    "run_one",
    "run_sweep",
]

RESULTS_ROOT = Path("results")
SKIPS_NAMED = 10  # a rerun names this many skipped points, then counts the rest
CANCEL_WAIT_S = 10.0  # after an interrupt, how long running point tasks get to clean up


def default_out(scenario: Scenario, root: Path = RESULTS_ROOT) -> Path:
    """``results/<name>/<UTC timestamp>``, with a suffix when that directory exists."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = root / scenario.name / stamp
    path, n = base, 1
    while path.exists():
        path = base.with_name(f"{stamp}-{n}")
        n += 1
    return path


def run(
    scenario: Scenario,
    out: Path | None = None,
    *,
    quiet: bool = False,
    limits: Limits | None = None,
    ignore_limits: bool = False,
) -> list[RunResult]:
    """Run every point of ``scenario`` (one point without a sweep) into ``out``; when
    ``replay_from`` names a scenario file, that calibration runs first (module docstring).
    Before anything runs, every point's resource estimate is held against ``limits`` (default
    ``Limits.here()``; ``ignore_limits`` skips it) and ``out`` must be writable."""
    out = out if out is not None else default_out(scenario)
    points = expand(scenario)
    if not ignore_limits:
        enforce(points, limits if limits is not None else Limits.here())
    check_output(out)
    calibration = calibration_file(points)
    if calibration is not None:
        same_limits = functools.partial(run, limits=limits, ignore_limits=ignore_limits)
        points = calibrate(calibration, scenario, points, out, quiet=quiet, run=same_limits)
    oracles: dict[str, Oracle] = {}
    try:
        if scenario.sweep is None:
            return [run_one(points[0].scenario, out, quiet=quiet, oracles=oracles)]
        return run_sweep(points, out, quiet=quiet, oracles=oracles)
    finally:
        for oracle in oracles.values():
            oracle.close()


def run_sweep(
    points: Sequence[RunSpec], out: Path, *, quiet: bool, oracles: dict[str, Oracle]
) -> list[RunResult]:
    """Run the points not finished before, in parallel on Ray where they can be (replayed
    points, or real ones with ``ray.enabled: false``; real points on Ray share one actor pool
    and run in turn). A point that fails is recorded with its error; the others go on."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[int, RunResult] = {}
    todo = []
    for point in points:
        path = out / point.name
        done = rundir.prepare(path, rundir.run_id(point.scenario))
        if done is not None:
            if len(results) < SKIPS_NAMED:
                print(f"{_tag(point, points)}: finished before, skipped", file=sys.stderr)
            results[point.index] = RunResult(path, done)
        else:
            todo.append(point)
    if len(results) > SKIPS_NAMED:
        more = len(results) - SKIPS_NAMED
        print(f"... and {more} more points finished before, skipped", file=sys.stderr)
    first = points[0].scenario
    parallel = first.ray.parallel_sweep and (first.mode == "replay" or not first.ray.enabled)
    bar = None if quiet or not todo else SweepBar(len(points), len(points) - len(todo))
    if parallel and len(todo) > 1:
        results.update(_run_parallel(todo, points, out, bar=bar))
    else:
        for point in todo:
            if bar is not None:
                bar.show(f"running {point.name}")
            try:
                result = run_one(point.scenario, out / point.name, quiet=quiet, oracles=oracles)
            except Exception as exc:  # recorded; the other points go on
                result = _failed_point(point, points, out, exc)
            results[point.index] = result
            if bar is not None:
                bar.done += 1
        if bar is not None:
            bar.show()
    _write_sweep_table(points, results, out / "sweep.parquet")
    return [results[p.index] for p in points]


def _write_sweep_table(
    points: Sequence[RunSpec], results: dict[int, RunResult], path: Path
) -> None:
    """``sweep.parquet``: one row per point, its parameters, status and headline metrics."""
    import pyarrow as pa

    from records.tables import write_table_atomic

    rows = []
    for point in points:
        result = results[point.index]
        params = {k: json.dumps(v) for k, v in point.params.items()}
        status = {"status": "failed" if result.error else "complete", "error": result.error}
        rows.append({"point": point.name, "seed": point.scenario.seed, **params, **status})
        # nested values (counts by reason) go in as JSON text: one flat column each
        rows[-1].update(
            {k: json.dumps(v) if isinstance(v, dict) else v for k, v in result.summary.items()}
        )
    write_table_atomic(pa.Table.from_pylist(rows), path)


def _run_parallel(
    todo: Sequence[RunSpec], points: Sequence[RunSpec], out: Path, *, bar: SweepBar | None
) -> dict[int, RunResult]:
    """One Ray task per point (one CPU each, so the cluster bounds how many run at once)."""
    import ray

    from fleet.compute import cluster

    cluster.connect(todo[0].scenario.ray.address)
    task = ray.remote(num_cpus=1, max_retries=0)(_point_task)
    pending = {task.remote(p.scenario.model_dump(mode="json"), str(out / p.name)): p for p in todo}
    if bar is not None:
        print(f"{len(todo)} points on Ray, {cluster.cpus()} CPUs", file=sys.stderr)
        bar.in_place = sys.stderr.isatty()
        bar.show()
    results: dict[int, RunResult] = {}
    try:
        _collect(pending, points, out, results, bar)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the running points end as interrupted
        for ref in pending:
            ray.cancel(ref)  # a KeyboardInterrupt inside the task: its run_one cleans up
        ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_S)
        raise
    if bar is not None:
        bar.end_line()
    return results


def _collect(
    pending: dict[Any, RunSpec],
    points: Sequence[RunSpec],
    out: Path,
    results: dict[int, RunResult],
    bar: SweepBar | None,
) -> None:
    """Take finished point tasks off ``pending`` into ``results`` until none is left."""
    import ray

    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        point = pending.pop(ready[0])
        try:
            results[point.index] = RunResult(out / point.name, ray.get(ready[0]))
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            if bar is not None:
                bar.end_line()
            results[point.index] = _failed_point(point, points, out, cause)
        if bar is not None:
            bar.done += 1
            bar.show()


def _point_task(scenario: dict[str, Any], path: str) -> dict[str, Any]:
    """What a Ray task runs for one sweep point (a module-level function, so workers can
    import it)."""
    return run_one(Scenario.model_validate(scenario), Path(path), quiet=True).summary


def _failed_point(
    point: RunSpec, points: Sequence[RunSpec], out: Path, exc: BaseException
) -> RunResult:
    error = f"{type(exc).__name__}: {exc}"
    print(f"{_tag(point, points)}: FAILED: {error}", file=sys.stderr)
    return RunResult(out / point.name, {}, error)


def _tag(point: RunSpec, points: Sequence[RunSpec]) -> str:
    return f"[{point.index + 1}/{len(points)}] {point.name}"
