"""The ``task: generate`` event loop: exact per-token schedules, continuous batching across
devices, KV admission, drops, records and determinism. A scripted oracle stands in for the
model, so no weights load."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from codec import get_codec
from fleet.sim import Simulation
from records.metrics import token_figures
from records.tables import GENERATE_REQUESTS_SCHEMA, GENERATE_SERVERS_SCHEMA, STEPS_SCHEMA
from scenarios import Scenario
from server.engine.jobs import Done, GenJob, GenResult, codec_key
from tests.fleet.simkit import MODEL, scenario

PROMPT_BYTES, SETUP_BYTES, FRAMES = 100, 20, (50, 60)


class ScriptedOracle:
    """Every sequence gets the same bytes: a 100 B prompt, 20 B set-up, frames of 50 and 60 B
    (three tokens), 4 B tokens; it remembers the jobs it was given."""

    def __init__(self, frames: Sequence[int] = FRAMES) -> None:
        self.frames = tuple(frames)
        self.jobs: list[GenJob] = []

    def submit_generations(self, jobs: Sequence[GenJob]) -> list[Done[GenResult]]:
        self.jobs += jobs
        result = GenResult(
            prompt_raw_bytes=8 * 2304,
            prompt_payload_bytes=PROMPT_BYTES,
            setup_bytes=SETUP_BYTES,
            step_raw_bytes=2304,
            step_payload_bytes=self.frames,
            token_bytes=4,
            tokens_matching=2,
            agreement=0.5,
        )
        return [Done(result) for _ in jobs]

    def submit_heads(self, jobs: Sequence[Any]) -> list[Any]:
        raise AssertionError("a generate run submits no head jobs")

    def submit_tails(self, jobs: Sequence[Any]) -> list[Any]:
        raise AssertionError("a generate run submits no tail jobs")

    works_ahead = False

    def prefetch(self, jobs: Sequence[Any]) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {"gen_calls": len(self.jobs)}

    def close(self) -> None:
        pass


def _scenario(**changes: Any) -> Scenario:
    """simkit's scenario as a generate run: 8-token prompts, 3 new tokens, one device sending
    at t = 0 over a 1000 B/s uplink."""
    fleet0 = {
        "arrivals": {"kind": "periodic", "period_s": 100.0, "phase_s": 0.0},
        "uplink": {"bandwidth_mbps": 0.008},  # 1000 B/s
        **changes.pop("fleet0", {}),
    }
    model = {"task": "generate", "max_new_tokens": 3, **changes.pop("model", {})}
    return scenario(Path("unused"), seed=3, model=model, fleet0=fleet0, **changes)


def _run(s: Scenario, oracle: Any = None) -> tuple[Any, list[dict[str, Any]], pa.Table, pa.Table]:
    """The output, request rows by id, the steps table and the servers table."""
    oracle = oracle or ScriptedOracle()
    keys = [codec_key(get_codec(s.codec_for(g).config()).get_config()) for g in s.fleet]
    requests: list[pa.Table] = []
    steps: list[pa.Table] = []
    sim = Simulation(
        s,
        oracle,
        step_sink=lambda c: steps.append(pa.table(dict(c)).cast(STEPS_SCHEMA)),
        run_id="t",
        codec_keys=keys,
        sink=lambda c: requests.append(pa.table(dict(c)).cast(GENERATE_REQUESTS_SCHEMA)),
    )
    output = sim.run()
    rows = sorted((r for t in requests for r in t.to_pylist()), key=lambda r: r["request_id"])
    step_table = pa.concat_tables(steps) if steps else STEPS_SCHEMA.empty_table()
    servers = pa.table(output.servers).cast(GENERATE_SERVERS_SCHEMA)
    return (
        output,
        rows,
        step_table.sort_by([("request_id", "ascending"), ("step", "ascending")]),
        servers,
    )


def test_one_sequence_runs_the_exact_per_token_schedule() -> None:
    output, rows, steps, _ = _run(_scenario())
    (row,) = rows
    # prompt + set-up 120 B at 1000 B/s; ideal server and downlink; frames of 50 and 60 B
    assert row["status"] == "completed"
    assert row["t_uplink_end_s"] == pytest.approx(0.12)
    assert row["t_done_s"] == pytest.approx(0.23)
    assert row["ttft_s"] == pytest.approx(0.12)
    assert row["tpot_s"] == pytest.approx((0.23 - 0.12) / 2)
    assert row["payload_bytes"] == PROMPT_BYTES + SETUP_BYTES + sum(FRAMES)
    assert row["uplink_bits_per_token"] == pytest.approx(8 * 230 / 3)
    assert row["result_bytes"] == 12 and row["tokens_done"] == 3 and row["new_tokens"] == 3
    assert row["tokens_matching"] == 2 and row["agreement"] == 0.5
    assert row["raw_bytes"] == 8 * 2304 + 2 * 2304
    assert steps.column("step").to_pylist() == [0, 1, 2]
    assert steps.column("payload_bytes").to_pylist() == [120, 50, 60]
    assert steps.column("t_uplink_end_s").to_pylist() == pytest.approx([0.12, 0.17, 0.23])
    assert steps.column("t_step_start_s").to_pylist() == pytest.approx([0.0, 0.12, 0.17])
    assert steps.column("t_token_done_s").to_pylist() == pytest.approx([0.12, 0.17, 0.23])
    assert steps.column("batch_size").to_pylist() == [1, 1, 1]
    assert output.completed == 1


def test_sequences_share_decode_steps_and_busy_time_adds_up() -> None:
    s = _scenario(
        fleet0={"count": 4, "uplink": {"kind": "ideal"}},
        servers={"hardware": "h100-sxm", "batching": {"max_batch": 8}},
    )
    oracle = ScriptedOracle()
    output, rows, steps, servers = _run(s, oracle)
    assert [r["status"] for r in rows] == ["completed"] * 4
    # four prompts at the same instant: one step serves all, and so does every later one
    assert steps.column("batch_size").to_pylist() == [4] * 12
    busy_s = sum(steps.column("server_busy_s").to_pylist())
    assert busy_s == pytest.approx(sum(servers.column("busy_s").to_pylist()))
    assert servers.column("tokens").to_pylist() and sum(servers.column("tokens").to_pylist()) == 12
    assert sum(servers.column("batches").to_pylist()) == 3  # one prefill step, two decodes
    assert len(oracle.jobs) == 4 and {j.new_tokens for j in oracle.jobs} == {3}
    summary = token_figures(
        pa.Table.from_pylist(rows, schema=GENERATE_REQUESTS_SCHEMA),
        steps,
        servers,
        replicas=1,
        sim_time_s=output.sim_time_s,
    )
    assert summary["mean_running_batch"] == 4.0 and summary["tokens"] == 12
    assert summary["step_payload_bytes_mean"] == 55.0 and summary["step_payload_bytes_var"] == 25.0
    assert summary["share_matching_32"] == 0.0  # 2 of 3 tokens match
    assert summary["server_busy_s_per_token"] == pytest.approx(busy_s / 12)


def test_a_bigger_batch_costs_less_server_time_per_token() -> None:
    def per_token_s(count: int) -> float:
        s = _scenario(
            fleet0={"count": count, "uplink": {"kind": "ideal"}},
            servers={"hardware": "h100-sxm", "batching": {"max_batch": 64}},
        )
        _, rows, _, _ = _run(s)
        return sum(r["server_busy_s"] for r in rows) / (3 * count)

    assert per_token_s(16) < per_token_s(1) / 4  # weights are read once per step


def test_kv_memory_makes_a_sequence_wait_for_admission() -> None:
    from models.durations import ModelCosts

    per_token = ModelCosts(MODEL, 8).kv_bytes_per_token(4, 32, "fp16")
    s = _scenario(
        fleet0={"count": 2, "uplink": {"kind": "ideal"}},
        # room for one sequence of 8 + 3 tokens, not two
        servers={"hardware": "h100-sxm", "kv_cache_bytes": 1.5 * 11 * per_token},
    )
    _, rows, steps, servers = _run(s)
    first, second = rows
    assert steps.column("batch_size").to_pylist() == [1] * 6
    assert second["t_server_start_s"] == pytest.approx(first["t_server_end_s"])
    assert max(servers.column("kv_used_max_bytes").to_pylist()) == pytest.approx(11 * per_token)
    assert max(servers.column("queue_len_max").to_pylist()) >= 1


def test_a_full_admission_queue_drops_the_sequence() -> None:
    from models.durations import ModelCosts

    per_token = ModelCosts(MODEL, 8).kv_bytes_per_token(4, 32, "fp16")
    s = _scenario(
        fleet0={"count": 2, "uplink": {"kind": "ideal"}},
        servers={"hardware": "h100-sxm", "kv_cache_bytes": 11 * per_token, "queue_limit": 0},
    )
    _, rows, _, servers = _run(s)
    assert [r["status"] for r in rows] == ["completed", "dropped"]
    assert rows[1]["reason"] == "queue_full" and rows[1]["tokens_done"] == 0
    assert sum(servers.column("dropped").to_pylist()) == 1


def test_a_device_runs_one_sequence_at_a_time() -> None:
    s = _scenario(
        requests_per_device=2,
        fleet0={"arrivals": {"kind": "periodic", "period_s": 0.05, "phase_s": 0.0}},
    )
    _, rows, _, _ = _run(s)
    first, second = rows
    assert second["t_arrival_s"] == pytest.approx(0.05)
    assert second["t_head_start_s"] == pytest.approx(first["t_done_s"])  # it queued
    assert second["ttft_s"] == pytest.approx(first["t_done_s"] - 0.05 + 0.12)


def test_the_same_seed_gives_the_same_rows() -> None:
    s = _scenario(
        fleet0={"count": 5, "arrivals": {"kind": "poisson", "rate_per_s": 2.0}},
        requests_per_device=3,
        servers={"hardware": "h100-sxm", "replicas": 2, "routing": "power-of-two"},
    )
    a, b = _run(s), _run(s)
    assert a[1] == b[1]
    assert a[2].equals(b[2]) and a[3].equals(b[3])


@pytest.mark.parametrize("routing", ["round-robin", "random", "least-loaded", "shared-queue"])
def test_every_routing_completes_every_sequence(routing: str) -> None:
    s = _scenario(
        fleet0={"count": 6, "uplink": {"kind": "ideal"}},
        servers={"hardware": "h100-sxm", "replicas": 3, "routing": routing},
    )
    _, rows, steps, _ = _run(s)
    assert all(r["status"] == "completed" for r in rows)
    assert steps.num_rows == 18
    if routing in ("round-robin", "least-loaded", "shared-queue"):
        assert sorted(r["replica_id"] for r in rows) == [0, 0, 1, 1, 2, 2]


def test_a_sequence_needing_more_kv_than_a_replica_has_is_a_clear_error() -> None:
    s = _scenario(servers={"hardware": "h100-sxm", "kv_cache_bytes": 10.0})
    with pytest.raises(ValueError, match="KV cache"):
        _run(s)


def test_runner_writes_steps_and_generation_metrics(tmp_path: Path) -> None:
    from fleet.run.runner import run_one

    s = _scenario(fleet0={"count": 3})
    result = run_one(s, tmp_path / "run", quiet=True, oracles={"replay:unused": ScriptedOracle()})
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {
        "requests.parquet",
        "steps.parquet",
        "servers.parquet",
        "summary.json",
    }
    summary = result.summary
    assert summary["tokens"] == 9 and summary["completed"] == 3
    assert summary["uplink_bits_per_token"] == pytest.approx(8 * 230 / 3)
    assert summary["p50_ttft_s"] > 0 and summary["mean_agreement"] == 0.5


def test_a_replayed_generate_run_spends_the_recorded_bytes(tmp_path: Path) -> None:
    from fleet.run.runner import run_one
    from records.tables import read_table
    from tests.fleet.simkit import write_generations

    profile = tmp_path / "real"
    write_generations(profile)
    s = _scenario(replay_from=str(profile), fleet0={"count": 6}, model={"inputs": 2})
    run_one(s, tmp_path / "run", quiet=True)
    requests = read_table(tmp_path / "run" / "requests.parquet").to_pylist()
    by_input = {r["input_id"]: r for r in requests}
    assert by_input[0]["payload_bytes"] == 100 + 20 + 50 + 60
    assert by_input[1]["payload_bytes"] == 300 + 20 + 70 + 80
    assert {r["tokens_matching"] for r in requests} == {3, 1}
    steps = read_table(tmp_path / "run" / "steps.parquet")
    assert steps.num_rows == 3 * len(requests)
    assert set(steps.column("payload_bytes").to_pylist()) == {120, 320, 50, 60, 70, 80}


def test_every_if_of_a_sequence_is_decoded_on_the_pool_or_in_the_step() -> None:
    from models.codec_time import CodecTimes, gpu_decode_s
    from models.hardware import get_hardware
    from tests.fleet.simkit import fp32_key

    h100 = get_hardware("h100-sxm")
    _, (row,), _, _ = _run(_scenario(servers={"hardware": "h100-sxm"}))
    times = CodecTimes.read()
    # the prompt (8 x 2304 B float32, 100 B) and two frames: each IF on one pool core
    expected_s = times.seconds("decode", fp32_key(), 8 * 2304, PROMPT_BYTES, h100) + sum(
        times.seconds("decode", fp32_key(), 2304, f, h100, frame=True) for f in FRAMES
    )
    assert row["server_decode_s"] == pytest.approx(expected_s)
    pool_busy_s = row["server_busy_s"]

    on_gpu = _scenario(servers={"hardware": "h100-sxm", "decode": {"on": "gpu"}})
    _, (row,), _, _ = _run(on_gpu)
    gpu_s = gpu_decode_s(["fp32"], [8 * 2304.0], [float(PROMPT_BYTES)], h100) + sum(
        gpu_decode_s(["fp32"], [2304.0], [float(f)], h100) for f in FRAMES
    )
    assert row["server_decode_s"] == pytest.approx(gpu_s)
    assert row["server_busy_s"] == pytest.approx(pool_busy_s + gpu_s)
