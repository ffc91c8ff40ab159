"""Sweep expansion: a scenario with a ``sweep`` block -> one validated ``RunSpec`` per point.

``sweep: {path: [values], ...}`` is a grid walked like ``itertools.product`` in file key order
(the first key varies slowest). The reserved key ``zip: {path: [values], ...}`` holds lists of
equal length walked together. The points are grid x zip: every grid point, in grid order, with
every zip row, in row order. A scenario without a sweep is one point: index 0, name ``run``,
no params, and the scenario itself with its own seed.

A point is named and seeded by its own values, never by its position, so that extending a
grid (more values, another entry's values in between) keeps every existing point's name and
seed, and a rerun reuses the points that finished. Its name is ``count=10-id=fp16`` (the last
key of each path, or the whole path where two clash, and the value), filesystem-safe; a name
that had to drop something (a file's folder, characters a file name cannot hold, length beyond
``NAME_CHARS``) ends in ``-`` and 8 hex digits of a hash of the point's values. Its seed is
``int(np.random.SeedSequence(scenario.seed, spawn_key=values_key(params)).generate_state(1,
dtype=np.uint32)[0])``, ``values_key`` being four 32-bit words of the SHA-256 of the values as
canonical JSON: distinct per point, stable across runs and machines, and changed for every
point by changing the scenario's seed; with ``seeds: shared`` every point runs with the
scenario's own seed instead (common random numbers). A value listed twice runs twice: the
second point with a name gets ``-2`` after it and ``repeat - 1`` appended to its spawn key.
``seed``, ``name`` and ``sweep`` itself cannot be swept; two entries may not set the same
place (``codec`` and ``codec.id``).

A point is applied to the data the scenario was built from (``model_dump(exclude_unset=True)``:
what the file said after validation, without filled-in defaults, so that e.g. sweeping a
link's ``trace`` re-infers its kind as the file would) and validated again; errors name the
sweep entry, the point and its value: ``sweep.fleet[0].count: point 3 (fleet[0].count=-1):
must be >= 1, got -1``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from scenarios.errors import (
    PathTuple,
    Problem,
    ScenarioError,
    format_path,
    problems_from_validation,
    show,
    show_typed,
)
from scenarios.paths import parse_path, set_in_place
from scenarios.schema import Scenario

MAX_POINTS = 100_000
MAX_PROBLEMS = 20
NAME_CHARS = 80
_UNSWEEPABLE = {
    "seed": "every point gets its own seed derived from the scenario's seed (see "
    "scenarios.sweep); change the top-level seed to change them all",
    "name": "the scenario's name names the results directory that holds every point",
    "sweep": "a sweep cannot change the sweep",
}


@dataclass(frozen=True)
class RunSpec:
    """One point of a sweep: ``scenario`` is fully validated, has ``sweep=None`` and the
    point's own seed; ``name`` is a filesystem-safe directory name like ``count=10-id=fp16``,
    from the point's values only; ``params`` maps each swept path to the point's value."""

    index: int
    name: str
    params: dict[str, Any]
    scenario: Scenario


@dataclass(frozen=True)
class _Axis:
    key: str  # as written in the file
    where: str  # the entry's path for problems: sweep.KEY or sweep.zip.KEY
    steps: PathTuple
    values: list[Any]


def point_seed(seed: int, params: dict[str, Any], repeat: int = 1) -> int:
    """The seed of the sweep point with values ``params`` of a scenario with ``seed`` (the
    ``repeat``-th point with those values: a value listed twice runs twice, seeded apart)."""
    key = values_key(params) + ((repeat - 1,) if repeat > 1 else ())
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, dtype=np.uint32)
    return int(state[0])


def values_key(params: dict[str, Any]) -> tuple[int, ...]:
    """Four 32-bit words of the SHA-256 of ``params`` as canonical JSON."""
    digest = hashlib.sha256(_canonical(params).encode()).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def point_name(shorts: Sequence[str], params: dict[str, Any]) -> str:
    """The directory name of the point with values ``params`` (module docstring)."""
    parts = [
        f"{short}={_text(value)}" for short, value in zip(shorts, params.values(), strict=True)
    ]
    text = "-".join(parts)
    safe = _safe(text)
    lossy = safe != text or any(_lossy(v) for v in params.values())
    if not lossy and len(safe) <= NAME_CHARS:
        return safe
    digest = hashlib.sha256(_canonical(params).encode()).hexdigest()[:8]
    return f"{safe[: NAME_CHARS - 9].rstrip('_-')}-{digest}"


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def _lossy(value: Any) -> bool:
    """Whether ``_text`` drops part of ``value`` (a file's folder)."""
    if isinstance(value, dict):
        return any(_lossy(v) for v in value.values())
    if isinstance(value, list):
        return any(_lossy(v) for v in value)
    return isinstance(value, str) and "/" in value


def expand(scenario: Scenario) -> list[RunSpec]:
    """Every point of ``scenario``'s sweep, validated; ``ScenarioError`` lists bad points."""
    if scenario.sweep is None:
        return [RunSpec(0, "run", {}, scenario)]
    base = scenario.model_dump(mode="python", exclude_unset=True)
    base.pop("sweep", None)
    grid, zipped = _axes(scenario.sweep, base)
    rows = [list(row) for row in zip(*(a.values for a in zipped), strict=True)] or [[]]
    axes = grid + zipped
    count = math.prod(len(a.values) for a in grid) * len(rows)
    if count > MAX_POINTS:
        raise ScenarioError.at("sweep", f"{count} points, more than {MAX_POINTS}; sweep fewer")
    shorts = _short_names(axes)
    specs: list[RunSpec] = []
    failed: dict[tuple[str, str | None, str], list[int]] = {}  # (where, label, text) -> points
    params_of: dict[int, dict[str, Any]] = {}
    seen: dict[str, int] = {}  # name -> points so far with it (a value listed twice)
    for index, (cell, row) in enumerate(
        itertools.product(itertools.product(*(a.values for a in grid)), rows)
    ):
        values = [*cell, *row]
        data = copy.deepcopy(base)
        params = {format_path(a.steps): copy.deepcopy(v) for a, v in zip(axes, values, strict=True)}
        name = point_name(shorts, params)
        repeat = seen[name] = seen.get(name, 0) + 1
        if repeat > 1:
            name = f"{name}-{repeat}"
        if scenario.seeds == "per-point":
            data["seed"] = point_seed(scenario.seed, params, repeat)
        for axis, value in zip(axes, values, strict=True):
            set_in_place(data, axis.steps, copy.deepcopy(value))
        try:
            point = Scenario.model_validate(data)
        except ValidationError as exc:
            for path, message in problems_from_validation(exc, data):
                failed.setdefault(_point_problem(axes, values, path, message), []).append(index)
            params_of[index] = params
            continue
        specs.append(RunSpec(index, name, params, point))
    if failed:
        raise ScenarioError(
            capped(
                [
                    Problem(
                        where,
                        f"{points_text(points, [params_of[i] for i in points], label)}: {text}",
                    )
                    for (where, label, text), points in failed.items()
                ]
            )
        )
    return specs


def _axes(sweep: dict[str, Any], base: dict[str, Any]) -> tuple[list[_Axis], list[_Axis]]:
    """The grid and zip entries, checked: lists of values at paths that exist, no overlaps."""
    problems: list[Problem] = []
    grid = _entries(sweep, "sweep", base, problems, allow_zip=True)
    zipped: list[_Axis] = []
    if "zip" in sweep:
        block = sweep["zip"]
        if not isinstance(block, dict) or not block:
            problems.append(
                Problem(
                    "sweep.zip", f"must be a mapping of path: [values], got {show_typed(block)}"
                )
            )
        else:
            zipped = _entries(block, "sweep.zip", base, problems, allow_zip=False)
            lengths = {a.key: len(a.values) for a in zipped}
            if len(set(lengths.values())) > 1:
                said = ", ".join(f"{key}: {n}" for key, n in lengths.items())
                problems.append(Problem("sweep.zip", f"lists must have equal lengths; got {said}"))
    if not grid and not zipped and not problems:
        problems.append(Problem("sweep", "the sweep is empty; give path: [values] or remove it"))
    axes = grid + zipped
    for i, axis in enumerate(axes):
        for other in axes[:i]:
            shorter = min(len(axis.steps), len(other.steps))
            if axis.steps[:shorter] == other.steps[:shorter]:
                problems.append(
                    Problem(axis.where, f"sets the same place as {other.where}; keep one of them")
                )
    if problems:
        raise ScenarioError(problems)
    return grid, zipped


def _entries(
    block: dict[str, Any],
    where: str,
    base: dict[str, Any],
    problems: list[Problem],
    allow_zip: bool,
) -> list[_Axis]:
    axes: list[_Axis] = []
    for key, values in block.items():
        if key == "zip" and allow_zip:
            continue
        entry = f"{where}.{key}"
        try:
            steps = parse_path(key)
        except ScenarioError as exc:
            problems.append(Problem(entry, exc.problems[0].message))
            continue
        if steps[0] in _UNSWEEPABLE:
            problems.append(Problem(entry, f"cannot be swept: {_UNSWEEPABLE[str(steps[0])]}"))
            continue
        if not isinstance(values, list) or not values:
            problems.append(
                Problem(entry, f"must be a non-empty list of values, got {show_typed(values)}")
            )
            continue
        try:
            set_in_place(copy.deepcopy(base), steps, None)
        except ScenarioError as exc:
            problems.append(Problem(entry, exc.problems[0].message))
            continue
        axes.append(_Axis(key, entry, steps, values))
    return axes


def _point_problem(
    axes: list[_Axis], values: list[Any], path: PathTuple, message: str
) -> tuple[str, str | None, str]:
    """(sweep entry, label of the values concerned, text) for a point's problem: at the entry
    that set ``path`` or a part of it, else at the entries that set its nearest neighbours
    (keys of the same mapping), else at ``sweep`` with no label."""
    pairs = list(zip(axes, values, strict=True))
    for axis, value in pairs:
        if path[: len(axis.steps)] == axis.steps:
            inner = f"{format_path(path)}: " if path != axis.steps else ""
            return axis.where, _label([axis], [value]), inner + message
    inner = f"{format_path(path)}: " if path else ""
    near = [
        (a, v) for a, v in pairs if len(a.steps) > 1 and path[: len(a.steps) - 1] == a.steps[:-1]
    ]
    if near:
        deepest = max(len(a.steps) for a, _ in near)
        near = [(a, v) for a, v in near if len(a.steps) == deepest]
        label = _label([a for a, _ in near], [v for _, v in near])
        return near[0][0].where, label, inner + message
    return "sweep", None, inner + message


def _label(axes: list[_Axis], values: list[Any]) -> str:
    return ", ".join(f"{format_path(a.steps)}={show(v)}" for a, v in zip(axes, values, strict=True))


def points_text(
    indices: Sequence[int], params: Sequence[dict[str, Any]], label: str | None = None
) -> str:
    """``point 3 (fleet[0].count=-1)`` or ``points 0-3, 6 (codec.id='x')``: the points and
    ``label``, by default the values that all of them share."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    said = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs[:10])
    said += ", ..." if len(runs) > 10 else ""
    which = f"point {said}" if len(indices) == 1 else f"points {said}"
    if label is None:
        shared = [(k, v) for k, v in params[0].items() if all(p.get(k) == v for p in params)]
        label = ", ".join(f"{k}={show(v)}" for k, v in shared)
    return f"{which} ({label})" if label else which


def capped(problems: list[Problem]) -> list[Problem]:
    """``problems`` without repeats, at most ``MAX_PROBLEMS`` of them and a line saying how
    many more there were."""
    unique = list(dict.fromkeys(problems))
    if len(unique) <= MAX_PROBLEMS:
        return unique
    rest = len(unique) - MAX_PROBLEMS
    return [*unique[:MAX_PROBLEMS], Problem("sweep", f"... and {rest} more problems like these")]


def _short_names(axes: list[_Axis]) -> list[str]:
    """The last key of each path (with indices after it), or the whole path where two clash."""
    shorts = []
    for axis in axes:
        last = max(i for i, step in enumerate(axis.steps) if isinstance(step, str))
        shorts.append(".".join(str(step) for step in axis.steps[last:]))
    full = [".".join(str(step) for step in axis.steps) for axis in axes]
    return [f if shorts.count(s) > 1 else s for s, f in zip(shorts, full, strict=True)]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{key}:{_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    if isinstance(value, str):
        return value.rsplit("/", 1)[-1]  # a file's name, not its whole path
    return show(value)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)
