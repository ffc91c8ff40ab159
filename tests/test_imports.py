"""Light imports stay light: importing the simulator, the scenarios, the result tables, the
analysis, the server side or the CLI loads neither torch nor ray (DESIGN: heavy imports happen
inside the functions that need them). Each module is imported in a fresh interpreter, since this
test process may already hold torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import models
import models.profiles

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray")
LIGHT_MODULES = [
    "fleet",
    "fleet.sim",
    "scenarios",
    "records",
    "analysis",
    "server",
    "models.hardware",
    "models.cost",
    "cli.main",
]

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))))
"""


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_import_loads_no_torch_or_ray(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module, *HEAVY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded == [], f"import {module} loaded {loaded}; move that import into the function"


def test_models_names_load_lazily_and_completely() -> None:
    assert models.__all__ == sorted(models._HOMES)
    assert set(models.__all__) <= set(dir(models))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = models.no_such_name  # type: ignore[attr-defined]
    # the submodule models.profiles must not shadow the function models.profile
    assert callable(models.profile) and models.profile is models.profiles.profile
