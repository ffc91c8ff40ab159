"""Real compute on Ray: the actor classes alone, the RayOracle against the LocalOracle, an
actor killed mid-run, and a two-node local cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch

from fleet.compute.shards import DeviceShard
from fleet.run.runner import run_one
from fleet.sim import Simulation
from server.engine.jobs import HeadJob, TailJob, codec_key, full_codec_key
from server.engine.local import LocalOracle
from server.engine.workers import ServerWorker
from tests.fleet.raykit import vision_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    from fleet.compute import cluster

    cluster.connect(None)
    yield
    cluster.shutdown()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Actors run torch on one thread; so does the in-process reference, for equal bits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_actor_classes_work_without_ray() -> None:
    key = codec_key({"id": "fp16"})
    jobs = [HeadJob(i, "mobilenetv2", 7, key, i, 0) for i in range(3)]
    meta, payloads = DeviceShard().heads(jobs)
    local = LocalOracle()
    for job, m, payload in zip(jobs, meta, payloads, strict=True):
        expected = local.submit_heads([job])[0].result()
        assert not isinstance(m, str)
        assert (m[0], m[1]) == (expected.raw_bytes, expected.payload_bytes)
        assert payload == expected.payload
    tails = [
        TailJob(j.request_id, j.model, 7, key, j.input_id, 0, local_head(local, j)) for j in jobs
    ]
    out = ServerWorker().tails(tails, [payloads], [(0, i) for i in range(3)])
    for tail, got in zip(tails, out, strict=True):
        expected_tail = local.submit_tails([tail])[0].result()
        assert not isinstance(got, str)
        assert (got[0], got[1]) == (expected_tail.agreement, expected_tail.result_bytes)
    bad = HeadJob(9, "mobilenetv2", 99, key, 0, 0)
    meta, _ = DeviceShard().heads([bad])
    assert isinstance(meta[0], str) and "split" in meta[0]


def local_head(local: LocalOracle, job: HeadJob) -> Any:
    return local.submit_heads([job])[0].result()


def test_ray_run_equals_local_run(ray_local: None, tmp_path: Path) -> None:
    on_ray = run_one(vision_scenario(device_shards=2), tmp_path / "ray", quiet=True)
    local = run_one(vision_scenario(enabled=False), tmp_path / "local", quiet=True)
    assert (on_ray.path / "requests.parquet").read_bytes() == (
        local.path / "requests.parquet"
    ).read_bytes()
    assert on_ray.summary["completed"] == 12
    # the memo answered repeats: 4 inputs, so at most 4 distinct heads reached the actors
    assert on_ray.summary["oracle_ray_calls"] <= 2 * 12
    assert on_ray.summary["oracle_head_memo_hits"] >= 12 - 4
    profile = pq.read_table(on_ray.path / "profile.parquet")
    assert profile.num_rows <= 4 and set(profile.column("split").to_pylist()) == {7}


def _simulate(scenario: Any, oracle: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def sink(columns: dict[str, Any]) -> None:
        n = len(columns["request_id"])
        rows.extend({k: columns[k][i] for k in columns} for i in range(n))

    keys = [full_codec_key(scenario.codec_for(g).config()) for g in scenario.fleet]
    Simulation(scenario, oracle, run_id="t", codec_keys=keys, sink=sink, lookahead=2).run()
    return rows


def _killing_oracle(scenario: Any, after_calls: int) -> Any:
    """A RayOracle that kills its first device shard right after its n-th heads call to the
    actors (prefetches included), while that call is in flight."""
    import ray

    from fleet.compute.ray_oracle import RayOracle

    class Killer(RayOracle):
        calls = 0

        def _send_heads(self, shard: int, batch: Any) -> Any:
            ref = super()._send_heads(shard, batch)
            self.calls += 1
            if self.calls == after_calls:
                ray.kill(self.shards[0], no_restart=False)
            return ref

    return Killer(scenario.ray, [(scenario.model.name, scenario.model.seq_len)])


def test_killed_actor_restarts_and_loses_no_request(ray_local: None) -> None:
    scenario = vision_scenario(devices=6, requests=4, device_shards=1, max_restarts=2)
    oracle = _killing_oracle(scenario, after_calls=3)
    try:
        rows = _simulate(scenario, oracle)
    finally:
        oracle.close()
    ids = sorted(int(r["request_id"]) for r in rows)
    assert ids == list(range(24))  # every request exactly once
    assert {r["status"] for r in rows} == {"completed"}


def test_actor_that_stays_dead_fails_its_requests(ray_local: None) -> None:
    scenario = vision_scenario(devices=4, requests=3, device_shards=1, max_restarts=0)
    oracle = _killing_oracle(scenario, after_calls=2)
    try:
        rows = _simulate(scenario, oracle)
    finally:
        oracle.close()
    assert sorted(int(r["request_id"]) for r in rows) == list(range(12))
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all("Actor" in r["reason"] for r in failed)


def test_two_node_cluster_places_actors_on_both_and_matches_one_node(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.fleet.two_node", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["nodes"] == 2
    shard_nodes = {node for role, node, _ in report["placement"] if role == "device-shard"}
    assert len(shard_nodes) == 2
    two = (tmp_path / "two-nodes" / "requests.parquet").read_bytes()
    one = (tmp_path / "one-node" / "requests.parquet").read_bytes()
    assert two == one


def test_ray_start_failure_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from fleet.compute import cluster

    def refuse(**kwargs: Any) -> None:
        raise ConnectionError("could not reach the GCS at 10.0.0.9:6379")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(cluster.ClusterError) as caught:
        cluster.connect("10.0.0.9:6379")
    text = str(caught.value)
    assert "joining the Ray cluster at '10.0.0.9:6379' failed" in text
    assert "could not reach the GCS" in text and "ray status" in text
    with pytest.raises(cluster.ClusterError, match="starting a local Ray instance failed"):
        cluster.connect(None)
