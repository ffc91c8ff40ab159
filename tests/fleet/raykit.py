"""A small real-compute scenario for the Ray tests: MobileNetV2 at split 7 with SLICER, a few
cameras, one replica with batching. Ray placement does not change results, so every variant
of this scenario must write the same requests.parquet."""

from __future__ import annotations

from typing import Any

from scenarios import Scenario


def vision_scenario(devices: int = 4, requests: int = 3, **ray: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "ray-vision",
            "seed": 11,
            "requests_per_device": requests,
            "model": {"name": "mobilenetv2", "inputs": 4},
            "codec": {"id": "slicer", "max_nmse": 0.03},
            "fleet": [
                {
                    "name": "cams",
                    "count": devices,
                    "hardware": "jetson-orin-nano",
                    "split": 7,
                    "arrivals": {"kind": "poisson", "rate_per_s": 4.0},
                    "uplink": {"bandwidth_mbps": 20.0},
                }
            ],
            "servers": {"replicas": 1, "hardware": "l4", "batching": {"max_batch": 4}},
            "ray": ray,
        }
    )
