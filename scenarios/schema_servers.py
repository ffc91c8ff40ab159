"""The server pool of a scenario (``Servers``): replicas, hardware, batching, routing, queue
limits, replica failures, a what-if service-time override and where IFs are decoded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scenarios.schema_base import Dtype, Strict


class Batching(Strict):
    max_batch: int = Field(default=1, ge=1, description="largest batch a replica runs")
    max_wait_s: float = Field(
        default=0.0,
        ge=0,
        description="how long the oldest queued request may wait for the batch to fill",
    )


class ServiceOverride(Strict):
    """Batch service time drawn from a distribution instead of the cost model."""

    kind: Literal["deterministic", "exponential", "lognormal"]
    mean_s: float = Field(gt=0)
    cv: float = Field(default=1.0, gt=0, description="lognormal: coefficient of variation")


class ReplicaFailures(Strict):
    """Each replica fails after Exp(mtbf_s) of up time and is repaired after Exp(mttr_s)."""

    mtbf_s: float = Field(gt=0, description="mean up time between failures of one replica")
    mttr_s: float = Field(gt=0, description="mean time to repair")
    on_failure: Literal["reroute", "drop"] = Field(
        default="reroute",
        description="what happens to the failed replica's running batch and queued requests: "
        "reroute (queue them again) or drop (reason replica_failed)",
    )


class Decode(Strict):
    """Where the servers decode IFs: a pool of host CPU cores beside the accelerators (each
    IF on one core; ``cores`` per replica, pooled), or the accelerator itself."""

    on: Literal["cpu", "gpu"] = Field(
        default="cpu",
        description="cpu: a decode pool of host cores, its own resource, before the batch "
        "queue; gpu: on the accelerator, inside each batch's busy time (published figures, "
        "an assumption the report names)",
    )
    cores: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="on: cpu: decode cores per replica (default: the server hardware "
        "entry's host_cpu_cores)",
    )

    @model_validator(mode="after")
    def _cores_on_cpu(self) -> Decode:
        if self.on == "gpu" and self.cores is not None:
            raise ValueError("cores counts host CPU cores: give it with on: cpu, or drop it")
        return self


Routing = Literal["shared-queue", "round-robin", "random", "least-loaded", "power-of-two"]


class Servers(Strict):
    replicas: int = Field(default=1, ge=1)
    hardware: str = Field(default="h100-sxm", description="a server entry of the hardware catalog")
    dtype: Dtype = Field(default="fp16", description="dtype the tail runs in")
    batching: Batching = Field(default_factory=Batching)
    routing: Routing = "shared-queue"
    queue_limit: int | None = Field(
        default=None,
        ge=0,
        description="queued requests per replica (the whole queue for shared-queue)",
    )
    service: ServiceOverride | None = None
    failures: ReplicaFailures | None = Field(
        default=None, description="replicas fail and are repaired (default: never)"
    )
    decode: Decode = Field(default_factory=Decode)
    kv_cache_bytes: float | None = Field(
        default=None,
        gt=0,
        description="task: generate: KV-cache memory per replica (default: 90% of the "
        "hardware's memory less the tail's weights)",
    )

    @model_validator(mode="before")
    @classmethod
    def _batching_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and "decode_speedup" in data:
            raise ValueError(
                "decode_speedup is gone: servers decode on a decode pool of host CPU cores "
                "(codec times from the fitted codec cost model); set servers.decode.cores "
                "(cores per replica) or servers.decode.on: gpu instead"
            )
        if isinstance(data, dict) and data.get("batching") == "none":
            return {**data, "batching": {}}
        return data
