"""The bookkeeping files of one run directory: its run id, ``manifest.json`` and JSON writing.

``run_id`` is derived from the resolved scenario (name plus a hash), so the same scenario and
seed give the same id and byte-identical Parquet files; wall-clock times, versions, the git
commit, the host and the process id live only in ``manifest.json``. A manifest says
``running`` while a run goes on and ``complete``, ``failed`` or ``interrupted`` (SIGINT,
SIGTERM) at its end. ``prepare`` decides what a new run into a directory does: reuse a
``complete`` run of the same scenario, clear one that did not finish (unless its process still
holds the directory's lock, ``writing``) and run again, or refuse a finished run of another
scenario and files that are not a run. JSON files are written atomically (temporary file, then
rename), non-finite floats as null.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scenarios import Scenario

CALIBRATION_DIR = "calibration"  # where a run puts the calibration its replay_from names
LOCK_FILE = ".lock"  # held while a run writes its directory


def run_id(scenario: Scenario) -> str:
    """Name plus a hash of what decides the results: the resolved scenario without its
    ``ray`` section (where compute runs does not change what it computes)."""
    return f"{scenario.name}-{_digest(scenario.model_dump(mode='json', exclude={'ray'}))}"


def start_manifest(scenario: Scenario, run_id: str) -> dict[str, Any]:
    """The manifest of a run that starts now: status ``running``, the resolved scenario, seed,
    versions, git commit, host and start time."""
    return {
        "run_id": run_id,
        "status": "running",
        "seed": scenario.seed,
        "mode": scenario.mode,
        "scenario": scenario.model_dump(mode="json"),
        "versions": versions(),
        "git_commit": git_commit(),
        "host": platform.node(),
        "pid": os.getpid(),
        "started_at": now(),
    }


def complete(path: Path, run_id: str) -> dict[str, Any] | None:
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


def prepare(path: Path, run_id: str, keep: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Make ``path`` ready for the run ``run_id``: the summary of a finished run of it there
    (reuse it), else None after clearing what an unfinished run left (every entry but those
    named in ``keep``). Raises ``FileExistsError`` for a finished run of another scenario,
    for a run whose process still runs on this host, and for files that are not a run."""
    if not path.exists():
        return None
    if not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a run directory; choose another --out")
    entries = [p for p in path.iterdir() if p.name not in keep]
    if not entries:
        return None
    manifest = _manifest(path)
    if manifest is None:
        raise FileExistsError(
            f"{path} holds files that are not a slicer run; move them or choose another --out"
        )
    summary = complete(path, run_id)
    if summary is not None:
        return summary
    if manifest.get("status") == "running" and _locked(path):
        raise FileExistsError(
            f"{path}: a run is still writing there (process {manifest.get('pid')} on "
            f"{manifest.get('host')}); wait for it or stop it"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return None


def clear_unfinished(path: Path) -> None:
    """Empty a point directory a previous, unfinished run left (it has our manifest)."""
    if not path.exists() or not any(path.iterdir()):
        return
    if not (path / "manifest.json").exists():
        raise FileExistsError(
            f"{path} holds files that are not a slicer run; move them or choose another --out"
        )
    shutil.rmtree(path)


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Hold ``path/.lock`` (an advisory ``flock``) while a run writes there, so that another
    run into the same directory is refused; the system drops the lock when the process ends,
    however it ends, and the file goes when the run does."""
    lock = path / LOCK_FILE
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def _locked(path: Path) -> bool:
    try:
        with (path / LOCK_FILE).open("r") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the ``slicer`` command's handler: a run ends as
    it does on Ctrl-C (``KeyboardInterrupt``), marked ``interrupted``, with no table half
    written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def ended_by(exc: BaseException) -> tuple[str, str]:
    """(status, error) of a run that ``exc`` ended: ``interrupted`` for Ctrl-C and SIGTERM."""
    if isinstance(exc, Terminated):
        return "interrupted", "interrupted by SIGTERM"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted by SIGINT (Ctrl-C)"
    return "failed", f"{type(exc).__name__}: {exc}"


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON with sorted keys, replacing ``path`` atomically."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite(data), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def now() -> str:
    """The UTC time to the second, ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Python's version and those of the distributions that decide results."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in ("slicer-fleet", "numpy", "torch", "simpy", "pyarrow", "pydantic"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, or None outside one."""
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


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _finite(data: Any) -> Any:
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data
