"""Small scenarios for simulator tests: a hand-written replay profile (so no model runs) and a
scenario builder with ideal hardware and links unless a test says otherwise."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from records.tables import PROFILE_SCHEMA, TableWriter
from scenarios import Scenario
from server.engine.jobs import codec_key

MODEL = "synthetic:smollm2-135m"


def fp32_key() -> str:
    from codec import get_codec

    return codec_key(get_codec({"id": "fp32"}).get_config())


def write_profile(
    directory: Path,
    *,
    payload_bytes: list[int] | None = None,
    split: int = 4,
    raw_bytes: int = 4096,
    result_bytes: int = 4,
    seq_len: int = 8,
) -> Path:
    """A profile.parquet with one row per payload size (input ids 0, 1, ...)."""
    sizes = payload_bytes or [1000]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "profile.parquet"
    n = len(sizes)
    with TableWriter(path, PROFILE_SCHEMA) as writer:
        writer.append(
            {
                "model": [MODEL] * n,
                "split": [split] * n,
                "codec": [fp32_key()] * n,
                "codec_id": ["fp32"] * n,
                "input_id": list(range(n)),
                "seq_len": [seq_len] * n,
                "raw_bytes": [raw_bytes] * n,
                "payload_bytes": sizes,
                "result_bytes": [result_bytes] * n,
                "agreement": [1.0] * n,
                "head_wall_s": [0.0] * n,
                "tail_wall_s": [0.0] * n,
                "prompts": ["lee-background"] * n,
            }
        )
    return path


def scenario(profile: Path, **changes: Any) -> Scenario:
    """A replayed scenario: ideal devices and links, one replica. ``changes`` are merged into
    the dict: nested dicts merge, except arrivals, links and service, which replace;
    ``fleet0`` merges into the first group."""
    data: dict[str, Any] = {
        "name": "t",
        "seed": 1,
        "requests_per_device": 1,
        "mode": "replay",
        "replay_from": str(profile),
        "model": {"name": MODEL, "seq_len": 8},
        "codec": {"id": "fp32"},
        "fleet": [
            {
                "name": "g",
                "count": 1,
                "hardware": "ideal",
                "split": 4,
                "arrivals": {"kind": "periodic", "period_s": 1.0},
                "uplink": {"kind": "ideal"},
                "downlink": {"kind": "ideal"},
            }
        ],
        "servers": {"replicas": 1, "hardware": "ideal"},
    }
    fleet0 = changes.pop("fleet0", {})
    _merge(data["fleet"][0], fleet0)
    _merge(data, changes)
    return Scenario.model_validate(data)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        # arrivals, links and service replace what was there; other dicts merge
        replaces = key in ("arrivals", "uplink", "downlink", "service")
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not replaces:
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def requests(run_dir: Path) -> list[dict[str, Any]]:
    """requests.parquet as rows, sorted by request id."""
    rows = pq.read_table(run_dir / "requests.parquet").to_pylist()
    return sorted(rows, key=lambda r: r["request_id"])


def simulate(s: Scenario, oracle: Any = None) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``s`` in memory (no run directory): the ``SimOutput`` and the request rows sorted by
    request id. ``oracle`` defaults to replaying ``s.replay_from``."""
    import pyarrow as pa

    from codec import get_codec
    from fleet.compute.replay import ReplayOracle
    from fleet.sim import Simulation
    from records.tables import REQUESTS_SCHEMA

    if oracle is None:
        assert s.replay_from is not None
        oracle = ReplayOracle([s.replay_from])
    keys = [codec_key(get_codec(s.codec_for(g).config()).get_config()) for g in s.fleet]
    chunks: list[pa.Table] = []
    sim = Simulation(
        s,
        oracle,
        run_id="t",
        codec_keys=keys,
        sink=lambda columns: chunks.append(pa.table(dict(columns)).cast(REQUESTS_SCHEMA)),
    )
    output = sim.run()
    rows = [row for chunk in chunks for row in chunk.to_pylist()]
    return output, sorted(rows, key=lambda r: r["request_id"])


def write_generations(directory: Path) -> Path:
    """A generations.parquet of two fp32 sequences at split 4 (8-token prompts, 3 new tokens):
    input 0 sends a 100 B prompt and frames of 50 and 60 B, input 1 a 300 B prompt and frames of
    70 and 80 B, both with 20 B of stream set-up; 3 and 1 leading tokens match."""
    from records.tables import GENERATIONS_SCHEMA

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "generations.parquet"
    with TableWriter(path, GENERATIONS_SCHEMA) as writer:
        writer.append(
            {
                "model": [MODEL] * 2,
                "split": [4, 4],
                "codec": [fp32_key()] * 2,
                "codec_id": ["fp32", "fp32"],
                "input_id": [0, 1],
                "prompt_tokens": [8, 8],
                "new_tokens": [3, 3],
                "prompt_raw_bytes": [18432, 18432],
                "prompt_payload_bytes": [100, 300],
                "setup_bytes": [20, 20],
                "step_raw_bytes": [2304, 2304],
                "step_payload_bytes": [[50, 60], [70, 80]],
                "token_bytes": [4, 4],
                "tokens_matching": [3, 1],
                "agreement": [1.0, 0.5],
                "wall_s": [0.0, 0.0],
                "prompts": ["lee-background"] * 2,
            }
        )
    return path


@contextlib.contextmanager
def shared_model_loads() -> Iterator[None]:
    """``models.load`` returns one copy per model name while inside (tests that run several
    real scenarios load each model once), with torch on one thread."""
    import pytest
    import torch

    import models

    loaded: dict[str, Any] = {}
    real_load = models.load

    def load(name: str) -> Any:
        if name not in loaded:
            loaded[name] = real_load(name)
        return loaded[name]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(models, "load", load)
            yield
    finally:
        torch.set_num_threads(threads)
