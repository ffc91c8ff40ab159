"""Read a results directory written by ``slicer run``: one run, or a sweep of runs.

A run directory holds ``manifest.json`` (the resolved scenario, seed, versions, status),
``requests.parquet``, ``servers.parquet``, ``summary.json`` and, for ``task: generate``,
``steps.parquet``. A sweep directory holds one run directory per point plus ``sweep.parquet``
(one row per point: ``point``, ``seed``, one JSON-text column per swept parameter path,
``status``, ``error``, then the point's summary scalars).

``load`` returns a ``Run`` or a ``Sweep``; anything that is not a readable results directory
raises ``ResultsError``, whose message says what was found, what was expected and how to fix
it. Loading only reads files: it never changes a results directory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from records.tables import STAGE_TIMES

RUN_FILES = ("manifest.json", "requests.parquet")
SWEEP_FILE = "sweep.parquet"
#: sweep.parquet's columns around the swept parameters: ``point, seed, <params>, status, ...``
_SWEEP_HEAD, _SWEEP_STATUS = ("point", "seed"), "status"
_HOW = (
    "pass a run directory (manifest.json + requests.parquet) or a sweep directory "
    "(sweep.parquet) as written by `slicer run`"
)


class ResultsError(ValueError):
    """Not a results directory, or one that cannot be read; the message says how to fix it."""


@dataclass(frozen=True)
class Run:
    """One run's files, read. ``steps`` is ``None`` unless the run is ``task: generate``."""

    path: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]
    requests: pa.Table
    servers: pa.Table
    steps: pa.Table | None

    @property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario (``manifest["scenario"]``) as plain JSON data."""
        scenario: dict[str, Any] = self.manifest["scenario"]
        return scenario

    @property
    def name(self) -> str:
        """The scenario's name (the directory's name when the scenario has none)."""
        return str(self.scenario.get("name") or self.path.name)

    @property
    def task(self) -> str:
        """``"infer"`` or ``"generate"`` (the scenario's ``model.task``)."""
        return str((self.scenario.get("model") or {}).get("task") or "infer")

    @property
    def seed(self) -> int:
        """The seed the run used (a sweep point's own seed)."""
        return int(self.manifest.get("seed", self.scenario.get("seed", 0)))

    @property
    def replicas(self) -> int:
        """Server replicas (``servers.replicas``; 1 when the scenario leaves it out)."""
        return int((self.scenario.get("servers") or {}).get("replicas") or 1)

    @property
    def decode_cores(self) -> int:
        """The decode pool's cores (``manifest.json``; 0 when the accelerators decode or the
        run predates the pool)."""
        return int(self.manifest.get("decode_cores") or 0)

    @property
    def assumptions(self) -> list[str]:
        """What the run's times assumed beyond its inputs, in words (``manifest.json``)."""
        return [str(a) for a in self.manifest.get("assumptions") or []]

    @property
    def sim_time_s(self) -> float:
        """Simulated seconds the run covered: ``summary.json``'s ``sim_time_s``, else the last
        stage time any request reached (0.0 for a run without requests)."""
        value = self.summary.get("sim_time_s")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        last = [
            np.asarray(self.requests.column(name).to_numpy(zero_copy_only=False), np.float64)
            for name in STAGE_TIMES
            if name in self.requests.column_names
        ]
        times = np.concatenate(last) if last else np.empty(0)
        times = times[~np.isnan(times)]
        return float(times.max()) if times.size else 0.0


@dataclass(frozen=True)
class Sweep:
    """A sweep directory: ``points`` is sweep.parquet, ``params`` its swept parameter columns
    (paths like ``fleet[0].count``) in file order."""

    path: Path
    points: pa.Table
    params: list[str]

    @property
    def names(self) -> list[str]:
        """Every point's directory name, in sweep order."""
        return list(self._index)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {str(p): i for i, p in enumerate(self.points.column("point").to_pylist())}

    def run(self, point: str) -> Run:
        """The run of ``point`` (its directory name, e.g. ``003-count=100``)."""
        self._row(point)
        return load_run(self.path / point)

    def values(self, point: str) -> dict[str, Any]:
        """``point``'s swept parameters: path -> value, JSON-decoded."""
        row = self._row(point)
        out: dict[str, Any] = {}
        for param in self.params:
            text = row[param]
            try:
                out[param] = json.loads(text) if isinstance(text, str) else text
            except json.JSONDecodeError as exc:
                raise ResultsError(
                    f"{self.path / SWEEP_FILE}: point {point!r}, column {param!r} holds "
                    f"{text!r}, expected JSON text; re-run the sweep to rewrite sweep.parquet"
                ) from exc
        return out

    def _row(self, point: str) -> dict[str, Any]:
        if point not in self._index:
            names = self.names
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ResultsError(
                f"{self.path}: no sweep point named {point!r}; the points are: {shown}"
            )
        row: dict[str, Any] = self.points.slice(self._index[point], 1).to_pylist()[0]
        return row


def load(path: str | Path) -> Run | Sweep:
    """A sweep when ``path`` holds ``sweep.parquet``, else a run."""
    path = _directory(path)
    if (path / SWEEP_FILE).is_file():
        return load_sweep(path)
    if (path / "manifest.json").is_file():
        return load_run(path)
    raise ResultsError(f"{path} is neither a run nor a sweep ({_found(path)}); {_HOW}")


def load_run(path: str | Path) -> Run:
    """One run directory, every table read into memory."""
    path = _directory(path)
    if not (path / "manifest.json").is_file():
        extra = " (it is a sweep: use load or load_sweep)" if (path / SWEEP_FILE).is_file() else ""
        raise ResultsError(f"{path} is not a run: it has no manifest.json{extra}; {_HOW}")
    manifest = _json(path / "manifest.json")
    if not isinstance(manifest.get("scenario"), dict):
        raise ResultsError(
            f"{path / 'manifest.json'} has no 'scenario' object (the resolved scenario); it was "
            "not written by `slicer run`, or is damaged: re-run the scenario"
        )
    summary = _json(path / "summary.json") if (path / "summary.json").is_file() else {}
    task = (manifest["scenario"].get("model") or {}).get("task") or "infer"
    needed = ["requests.parquet", "servers.parquet", *(["steps.parquet"] * (task == "generate"))]
    missing = [name for name in needed if not (path / name).is_file()]
    if missing:
        status = manifest.get("status", "unknown")
        why = f": {manifest['error']}" if manifest.get("error") else ""
        raise ResultsError(
            f"{path}: run has no {', '.join(missing)} (its manifest says status {status!r}{why}); "
            "re-run the scenario into a new directory to get complete results"
        )
    return Run(
        path=path,
        manifest=manifest,
        summary=summary,
        requests=_table(path / "requests.parquet"),
        servers=_table(path / "servers.parquet"),
        steps=_table(path / "steps.parquet") if task == "generate" else None,
    )


def load_sweep(path: str | Path) -> Sweep:
    """A sweep directory's ``sweep.parquet``; the points' runs load on demand (``Sweep.run``)."""
    path = _directory(path)
    if not (path / SWEEP_FILE).is_file():
        raise ResultsError(
            f"{path} is not a sweep: it has no {SWEEP_FILE} ({_found(path)}); {_HOW}"
        )
    points = _table(path / SWEEP_FILE)
    columns = points.column_names
    wanted = [*_SWEEP_HEAD, _SWEEP_STATUS]
    if columns[: len(_SWEEP_HEAD)] != list(_SWEEP_HEAD) or _SWEEP_STATUS not in columns:
        raise ResultsError(
            f"{path / SWEEP_FILE} has columns {columns[:6]}..., expected {wanted[:2]} first and a "
            f"{_SWEEP_STATUS!r} column; it was not written by `slicer run`: re-run the sweep"
        )
    params = columns[len(_SWEEP_HEAD) : columns.index(_SWEEP_STATUS)]
    return Sweep(path=path, points=points, params=params)


def _directory(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path} does not exist; {_HOW} (e.g. results/<scenario>/<run-id>)")
    if not path.is_dir():
        raise ResultsError(f"{path} is a file, not a directory; {_HOW}")
    return path


def _found(path: Path) -> str:
    names = sorted(p.name for p in path.iterdir())
    if not names:
        return "it is empty"
    return "it holds " + ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(
            f"cannot read {path} ({exc}); the run was interrupted while writing it or the file "
            "is damaged: re-run the scenario"
        ) from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path} holds {type(data).__name__}, expected a JSON object")
    return data


def _table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(
            f"cannot read {path} as Parquet ({exc}); the file is damaged or was cut short: "
            "re-run the scenario"
        ) from exc
