"""Run the Ray test scenario on a two-node local cluster and then on one node; print JSON.

Run as a script (``python -m tests.fleet.two_node OUT``) so that its Ray instances never meet
the test process's own."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from fleet.compute import cluster as fleet_cluster
    from fleet.run.runner import run_one
    from tests.fleet.raykit import vision_scenario

    two = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    two.add_node(num_cpus=1)
    two.wait_for_nodes()
    ray.init(address=two.address, include_dashboard=False, logging_level="WARNING")
    from fleet.compute.ray_oracle import RayOracle

    scenario = vision_scenario(device_shards=2, server_workers=1)
    oracle = RayOracle(scenario.ray, [("mobilenetv2", scenario.model.seq_len)])
    placement = oracle.where()
    oracle.close()
    run_one(scenario, out / "two-nodes", quiet=True)
    nodes = len(ray.nodes())
    ray.shutdown()
    two.shutdown()

    fleet_cluster.connect(None)
    run_one(vision_scenario(device_shards=2, server_workers=1), out / "one-node", quiet=True)
    fleet_cluster.shutdown()
    print(json.dumps({"nodes": nodes, "placement": placement}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
