"""Run a scenario or a sweep and write its results directory.

One run writes ``manifest.json`` (status ``running`` first, ``complete`` or ``failed`` at the
end), ``requests.parquet`` (row groups flushed as requests finish), ``servers.parquet``,
``summary.json`` and, for real runs, ``profile.parquet``: what the ``ReplayOracle`` samples
later. A sweep directory holds one run directory per point plus ``sweep.parquet``; re-running
a sweep into the same directory skips points whose manifest says ``complete``.

``replay_from`` may name a scenario file (``.yaml``/``.yml``): a *calibration*. ``run`` first
runs that scenario (``mode: real``, with the ``ray`` fields the replayed scenario sets) into
``<out>/calibration/``, unless a finished run of it is already there, and the replayed points
then replay from that directory (their manifests name it). Before any compute, the calibration
must record every (model, task, lengths, split, codec) the points replay, and the directory
must hold no run of another calibration.

A sweep prints a progress bar on stderr as its points finish (redrawn in place when stderr is
a terminal and the points run in parallel, plain lines otherwise); ``quiet=True`` silences it.

``run_id`` is derived from the resolved scenario (name plus a hash), so the same scenario and
seed give byte-identical Parquet files; wall-clock times live only in ``manifest.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fleet.oracle import Oracle, OracleError, RecordingOracle, codec_key
from scenarios import RunSpec, Scenario, expand

if TYPE_CHECKING:
    from fleet.sim import SimOutput, Simulation

RESULTS_ROOT = Path("results")
CALIBRATION_DIR = "calibration"  # where a run puts the calibration its replay_from names
SCENARIO_SUFFIXES = (".yaml", ".yml")
SKIPS_NAMED = 10  # a rerun names this many skipped points, then counts the rest


@dataclass(frozen=True)
class RunResult:
    path: Path
    summary: dict[str, Any]
    error: str | None = None  # a sweep point that failed: why


def default_out(scenario: Scenario, root: Path = RESULTS_ROOT) -> Path:
    """``results/<name>/<UTC timestamp>``, with a suffix when that directory exists."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = root / scenario.name / stamp
    path, n = base, 1
    while path.exists():
        path = base.with_name(f"{stamp}-{n}")
        n += 1
    return path


def run(scenario: Scenario, out: Path | None = None, *, quiet: bool = False) -> list[RunResult]:
    """Run every point of ``scenario`` (one point without a sweep) into ``out``; when
    ``replay_from`` names a scenario file, that calibration runs first (module docstring)."""
    out = out if out is not None else default_out(scenario)
    points = expand(scenario)
    calibration = _calibration_file(points)
    if calibration is not None:
        points = _calibrate(calibration, scenario, points, out, quiet=quiet)
    oracles: dict[str, Oracle] = {}
    try:
        if scenario.sweep is None:
            return [run_one(points[0].scenario, out, quiet=quiet, oracles=oracles)]
        return run_sweep(points, out, quiet=quiet, oracles=oracles)
    finally:
        for oracle in oracles.values():
            oracle.close()


def _calibration_file(points: Sequence[RunSpec]) -> str | None:
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


def _calibrate(
    path: str, scenario: Scenario, points: Sequence[RunSpec], out: Path, *, quiet: bool
) -> list[RunSpec]:
    """Run the calibration scenario at ``path`` into ``out/calibration`` (unless a finished
    run of it is there) and return ``points`` with their ``replay_from`` pointing there."""
    import scenarios

    ray = scenario.ray.model_dump(mode="json", include=scenario.ray.model_fields_set)
    calibration = scenarios.load(path, [f"ray.{k}={json.dumps(v)}" for k, v in ray.items()])
    if calibration.mode != "real":
        raise ValueError(
            f"replay_from: {path} is a calibration scenario, so it must run mode: real (it has "
            f"mode: {calibration.mode}); set mode: real there, or replay from a results directory"
        )
    scenarios.check(calibration)
    specs = expand(calibration)
    replayed = {
        p.index for p in points if p.scenario.mode == "replay" and p.scenario.replay_from == path
    }
    _check_coverage(path, specs, [p for p in points if p.index in replayed])
    target = out / CALIBRATION_DIR
    runs = {target / s.name if calibration.sweep else target: _run_id(s.scenario) for s in specs}
    _refuse_other_runs(target, set(runs.values()), path)
    if all(_complete(where, run_id) is not None for where, run_id in runs.items()):
        print(f"calibration {target}: finished before, skipped", file=sys.stderr)
    else:
        if not quiet:
            print(f"calibration: {len(specs)} real run(s) of {path} -> {target}", file=sys.stderr)
        if calibration.sweep is None:
            _clear_unfinished(target)
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


def _check_coverage(path: str, specs: Sequence[RunSpec], replayed: Sequence[RunSpec]) -> None:
    """Every (model, task, seq_len, new_tokens, split, codec) that ``replayed`` needs must be
    one that a calibration point records."""

    def keys(s: Scenario) -> set[tuple[str, str, int, int, int, str]]:
        m = s.model
        return {
            (m.name, m.task, m.seq_len, m.new_tokens, g.split, _codec_key(s.codec_for(g).config()))
            for g in s.fleet
        }

    have = set().union(*(keys(s.scenario) for s in specs))
    missing = sorted(set().union(*(keys(p.scenario) for p in replayed)) - have)
    if missing:
        shown = "\n  ".join(map(str, missing[:8])) + ("\n  ..." if len(missing) > 8 else "")
        raise ValueError(
            f"replay_from: the calibration {path} does not record what this scenario replays. "
            f"Missing (model, task, seq_len, new_tokens, split, codec):\n  {shown}\nit records:"
            "\n  " + "\n  ".join(map(str, sorted(have))) + "\nadd those splits and codecs to "
            "the calibration's fleet or sweep, or replay fewer"
        )


def _refuse_other_runs(target: Path, run_ids: set[str], path: str) -> None:
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


def run_sweep(
    points: Sequence[RunSpec], out: Path, *, quiet: bool, oracles: dict[str, Oracle]
) -> list[RunResult]:
    """Run the points not finished before, in parallel on Ray where they can be (replayed
    points, or real ones with ``ray.enabled: false``; real points on Ray share one actor pool
    and run in turn). A point that fails is recorded with its error; the others go on."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    results: dict[int, RunResult] = {}
    todo = []
    for point in points:
        path = out / point.name
        done = _complete(path, _run_id(point.scenario))
        if done is not None:
            if len(results) < SKIPS_NAMED:
                print(f"{_tag(point, points)}: finished before, skipped", file=sys.stderr)
            results[point.index] = RunResult(path, done)
        else:
            _clear_unfinished(path)
            todo.append(point)
    if len(results) > SKIPS_NAMED:
        more = len(results) - SKIPS_NAMED
        print(f"... and {more} more points finished before, skipped", file=sys.stderr)
    first = points[0].scenario
    parallel = first.ray.parallel_sweep and (first.mode == "replay" or not first.ray.enabled)
    bar = None if quiet or not todo else _SweepBar(len(points), len(points) - len(todo))
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
    pq.write_table(pa.Table.from_pylist(rows), out / "sweep.parquet", compression="zstd")
    return [results[p.index] for p in points]


def _run_parallel(
    todo: Sequence[RunSpec], points: Sequence[RunSpec], out: Path, *, bar: _SweepBar | None
) -> dict[int, RunResult]:
    """One Ray task per point (one CPU each, so the cluster bounds how many run at once)."""
    import ray

    from fleet import cluster

    cluster.connect(todo[0].scenario.ray.address)
    task = ray.remote(num_cpus=1, max_retries=0)(_point_task)
    pending = {task.remote(p.scenario.model_dump(mode="json"), str(out / p.name)): p for p in todo}
    if bar is not None:
        print(f"{len(todo)} points on Ray, {cluster.cpus()} CPUs", file=sys.stderr)
        bar.in_place = sys.stderr.isatty()
        bar.show()
    results: dict[int, RunResult] = {}
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
    if bar is not None:
        bar.end_line()
    return results


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


def _clear_unfinished(path: Path) -> None:
    """Empty a point directory a previous, unfinished run left (it has our manifest)."""
    if not path.exists() or not any(path.iterdir()):
        return
    if not (path / "manifest.json").exists():
        raise FileExistsError(
            f"{path} holds files that are not a slicer run; move them or choose another --out"
        )
    shutil.rmtree(path)


def run_one(
    scenario: Scenario, out: Path, *, quiet: bool = False, oracles: dict[str, Oracle] | None = None
) -> RunResult:
    """One run (no sweep) into the new or empty directory ``out``."""
    from fleet.records import read_table
    from fleet.summary import reason_counts, summarize, summarize_generation

    if scenario.sweep is not None:
        raise ValueError("run_one takes a single point; use run() for a sweep")
    if out.exists() and any(p.name != CALIBRATION_DIR for p in out.iterdir()):
        raise FileExistsError(
            f"{out} exists and is not empty; choose another --out or delete it first"
        )
    out.mkdir(parents=True, exist_ok=True)
    if oracles is None:  # a run of its own: its oracle goes when it ends
        own: dict[str, Oracle] = {}
        try:
            return run_one(scenario, out, quiet=quiet, oracles=own)
        finally:
            for oracle in own.values():
                oracle.close()
    resolved = scenario.model_dump(mode="json")
    run_id = _run_id(scenario)
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "seed": scenario.seed,
        "mode": scenario.mode,
        "scenario": resolved,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "host": platform.node(),
        "started_at": _now(),
    }
    _write_json(out / "manifest.json", manifest)
    wall_start = time.perf_counter()
    try:
        oracle = _oracle(scenario, oracles)
        output = _simulate(scenario, oracle, run_id, out, quiet, wall_start)
    except BaseException as exc:
        manifest.update(status="failed", error=f"{type(exc).__name__}: {exc}", ended_at=_now())
        _write_json(out / "manifest.json", manifest)
        raise
    requests = read_table(out / "requests.parquet")
    summary: dict[str, Any] = summarize(
        requests,
        read_table(out / "servers.parquet"),
        replicas=scenario.servers.replicas,
        sim_time_s=output.sim_time_s,
        replica_failures=output.replica_failures,
        replica_down_s=output.replica_down_s,
    )
    if scenario.model.task == "generate":
        summary.update(
            summarize_generation(
                requests,
                read_table(out / "steps.parquet"),
                read_table(out / "servers.parquet"),
                replicas=scenario.servers.replicas,
                sim_time_s=output.sim_time_s,
            )
        )
    summary.update(reason_counts(requests))
    summary.update(sim_time_s=output.sim_time_s, events=output.events)
    summary.update({f"oracle_{k}": v for k, v in output.oracle.items()})
    _write_json(out / "summary.json", summary)
    wall_s = time.perf_counter() - wall_start
    manifest.update(status="complete", ended_at=_now(), wall_s=wall_s)
    _write_json(out / "manifest.json", manifest)
    if not quiet:
        print(
            f"{scenario.name}: {output.completed:,} of {output.requests:,} requests completed "
            f"in {output.sim_time_s:.1f} simulated s ({wall_s:.1f} s wall) -> {out}",
            file=sys.stderr,
        )
    return RunResult(out, summary)


def _simulate(
    scenario: Scenario, oracle: Oracle, run_id: str, out: Path, quiet: bool, wall_start: float
) -> SimOutput:
    """Run the simulation, writing its tables into ``out`` as it goes."""
    from fleet import records
    from fleet.records import TableWriter
    from fleet.sim import Simulation

    keys = [_codec_key(scenario.codec_for(g).config()) for g in scenario.fleet]
    progress = None if quiet else _Progress(scenario, wall_start)
    generate = scenario.model.task == "generate"
    with contextlib.ExitStack() as stack:
        if generate:
            from fleet.sim_generate import GenerateSimulation

            requests = stack.enter_context(
                TableWriter(out / "requests.parquet", records.GENERATE_REQUESTS_SCHEMA)
            )
            steps = stack.enter_context(TableWriter(out / "steps.parquet", records.STEPS_SCHEMA))
            sim: Simulation = GenerateSimulation(
                scenario,
                oracle,
                step_sink=steps.append,
                run_id=run_id,
                codec_keys=keys,
                sink=requests.append,
                progress=progress,
            )
        else:
            requests = stack.enter_context(
                TableWriter(out / "requests.parquet", records.REQUESTS_SCHEMA)
            )
            sim = Simulation(
                scenario,
                oracle,
                run_id=run_id,
                codec_keys=keys,
                sink=requests.append,
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
    if scenario.mode == "replay":
        assert scenario.replay_from is not None
        key = f"replay:{scenario.replay_from}"
        if key not in oracles:
            from fleet.replay import ReplayOracle

            oracles[key] = ReplayOracle([scenario.replay_from])
        return oracles[key]
    if not scenario.ray.enabled:
        if "local" not in oracles:
            from fleet.local import LocalOracle

            oracles["local"] = LocalOracle()
        return oracles["local"]
    key = f"ray:{scenario.ray.model_dump_json()}:{scenario.model.name}:{scenario.model.seq_len}"
    if key not in oracles:
        from fleet.ray_oracle import RayOracle

        for old in [k for k in oracles if k.startswith("ray:")]:
            oracles.pop(old).close()  # one actor pool at a time
        oracles[key] = RayOracle(scenario.ray, [(scenario.model.name, scenario.model.seq_len)])
    return oracles[key]


def _codec_key(config: dict[str, Any]) -> str:
    """The key of a codec's full config, defaults filled in, so equal codecs replay alike."""
    from codec import get_codec

    return codec_key(get_codec(config).get_config())


def _run_id(scenario: Scenario) -> str:
    """Name plus a hash of what decides the results: the resolved scenario without its
    ``ray`` section (where compute runs does not change what it computes)."""
    return f"{scenario.name}-{_digest(scenario.model_dump(mode='json', exclude={'ray'}))}"


def _complete(path: Path, run_id: str) -> dict[str, Any] | None:
    """The summary of a finished run of the same scenario at ``path``, else None. A finished
    run of another scenario there is an error: a sweep never mixes two scenarios' points."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        if manifest.get("status") != "complete":
            return None
        summary: dict[str, Any] = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("run_id") != run_id:
        raise FileExistsError(
            f"{path} holds a finished run of a different scenario (run_id "
            f"{manifest.get('run_id')}, this point is {run_id}); choose another --out"
        )
    return summary


class _Progress:
    """One status line on stderr: simulated time, requests done, simulated-to-wall rate;
    redrawn in place on a terminal, only the final line otherwise."""

    def __init__(self, scenario: Scenario, wall_start: float) -> None:
        self._end_s = scenario.duration_s
        self._wall_start = wall_start
        self._last_wall = 0.0
        self._in_place = sys.stderr.isatty()

    def __call__(self, now_s: float, done: int, total: int) -> None:
        wall = time.perf_counter()
        final = done >= total
        if not final and (not self._in_place or wall - self._last_wall < 0.5):
            return
        self._last_wall = wall
        elapsed = max(wall - self._wall_start, 1e-9)
        horizon = f"/{self._end_s:g}" if self._end_s else ""
        line = (
            f"sim {now_s:,.1f}{horizon} s | {done:,}/{total:,} requests | "
            f"{now_s / elapsed:,.1f}x real time"
        )
        line = "\r" + line if self._in_place else line
        print(line, end="\n" if final else "", file=sys.stderr, flush=True)


class _SweepBar:
    """A sweep's progress on stderr, e.g. ``[#######.............] 7/24 points, 1m12s elapsed,
    ~2m30s left``. ``done`` counts finished points (skipped ones included); the time left is
    extrapolated from the points run since the bar was made. Redrawn in place when
    ``in_place`` (a terminal, points in parallel); otherwise plain lines: every ``show`` with a
    note, else only at the start, the end and every 5% of the points or 10 s."""

    WIDTH = 20
    PLAIN_EVERY_S = 10.0

    def __init__(self, total: int, done: int, stream: TextIO | None = None) -> None:
        self.total, self.done, self._skipped = total, done, done
        self.stream = stream if stream is not None else sys.stderr
        self.in_place = False
        self._start = time.perf_counter()
        self._open = False  # an in-place line is on screen without its newline
        self._shown: tuple[int, float] | None = None  # (done, when) of the last plain line

    def text(self, elapsed_s: float) -> str:
        filled = self.WIDTH * self.done // max(self.total, 1)
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} points, "
            f"{_clock(elapsed_s)} elapsed"
        )
        ran = self.done - self._skipped
        if ran > 0 and self.done < self.total:
            line += f", ~{_clock(elapsed_s / ran * (self.total - self.done))} left"
        return line

    def show(self, note: str = "") -> None:
        now = time.perf_counter()
        line = self.text(now - self._start) + (f" | {note}" if note else "")
        if self.in_place:
            print(f"\r{line}\x1b[K", end="", file=self.stream, flush=True)
            self._open = True
            return
        if not note and self._shown is not None and self.done < self.total:
            done, when = self._shown
            if self.done - done < max(1, self.total // 20) and now - when < self.PLAIN_EVERY_S:
                return
        print(line, file=self.stream, flush=True)
        self._shown = (self.done, now)

    def end_line(self) -> None:
        """Finish an in-place line, so that what is printed next starts on its own."""
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False


def _clock(seconds: float) -> str:
    """``42s``, ``3m07s``, ``1h05m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite(data), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _finite(data: Any) -> Any:
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("slicer-fleet", "numpy", "torch", "simpy", "pyarrow", "pydantic"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None
