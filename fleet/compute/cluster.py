"""Start or join Ray, and size the actor pools from what the cluster has.

Without an address a local Ray instance starts with its dashboard off and quiet logs; with
``auto`` or ``HOST:PORT`` the driver joins an existing cluster (``ray start --head`` on one
machine, ``ray start --address=HEAD:6379`` on the others) and ships this project's packages
to the workers through ``runtime_env``. A failure says what was tried and what to check.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

PACKAGES = ("codec", "models", "scenarios", "fleet", "server")
MAX_DEFAULT_SHARDS = 8


class ClusterError(RuntimeError):
    """Ray could not start or be reached; the message says what to check."""


def connect(address: str | None = None) -> None:
    """Make sure this process is a Ray driver (no-op when it already is)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if address is not None:
        kwargs["address"] = address
        kwargs["runtime_env"] = {"py_modules": [_package_dir(p) for p in PACKAGES]}
    try:
        ray.init(**kwargs)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        if address is None:
            tried = "starting a local Ray instance"
            check = (
                "free memory and /dev/shm space (Ray's object store), that no stale Ray "
                "processes hold the ports (`ray stop`), or run with ray.enabled: false"
            )
        else:
            tried = f"joining the Ray cluster at {address!r}"
            check = (
                "that the cluster is up (`ray status` on the head node), the address and port "
                "(ray start --head prints it), the firewall, and that Python and Ray versions "
                "match on every node"
            )
        raise ClusterError(f"{tried} failed: {exc}. Check {check}.") from exc


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def cpus() -> int:
    """CPUs the cluster has in all (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def gpus() -> int:
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def default_shards() -> int:
    """One device shard per CPU, at most ``MAX_DEFAULT_SHARDS``."""
    return min(cpus(), MAX_DEFAULT_SHARDS)


def _package_dir(name: str) -> str:
    import importlib

    module = importlib.import_module(name)
    assert module.__file__ is not None
    return str(Path(module.__file__).parent)
