"""The servers' load: accelerator busy time (the servers table) and decode-pool time (the
requests table's ``server_decode_s``), each figure defined once; ``records.metrics`` re-exports
them beside every other figure.

* ``server_utilization`` is total ``busy_s`` over ``replicas x sim_time_s``;
  ``server_busy_s_per_request`` the same total over completed requests (and
  ``records.metrics.server_busy_s_per_token`` over tokens delivered). Work spent on requests
  that later failed or were dropped is charged to those served, so that busy time per request
  = utilisation x replicas / throughput, the identity capacity planning uses.
* ``decode_pool_utilization`` is the decode time of every request (``server_decode_s``, core-
  seconds) over ``decode_cores x sim_time_s``: NaN when the accelerators decode
  (``decode_cores`` 0) or the run predates the column. ``server_decode_s_per_request`` is the
  same total over completed requests, charged like busy time.
"""

from __future__ import annotations

import pyarrow as pa

from records.columns import NAN, check_replicas, column, completed, ratio


def server_busy_s(servers: pa.Table) -> float:
    """Total ``busy_s`` of the servers table. Reads ``busy_s``."""
    return float(column(servers, "busy_s", "servers").sum())


def server_utilization(servers: pa.Table, replicas: int, sim_time_s: float) -> float:
    """Total ``busy_s`` over ``replicas * sim_time_s`` (NaN when ``sim_time_s`` is 0). Reads
    ``busy_s``."""
    check_replicas(replicas)
    return server_busy_s(servers) / (replicas * sim_time_s) if sim_time_s > 0 else NAN


def server_busy_s_per_request(requests: pa.Table, servers: pa.Table) -> float:
    """Total ``busy_s`` of the servers over completed requests. Reads ``status``; ``busy_s``."""
    return ratio(server_busy_s(servers), int(completed(requests).sum()))


def server_decode_s(requests: pa.Table) -> float:
    """Total ``server_decode_s`` of every request (NaN for runs without the column)."""
    if "server_decode_s" not in requests.column_names:
        return NAN
    return float(column(requests, "server_decode_s").sum())


def server_decode_s_per_request(requests: pa.Table) -> float:
    """Total ``server_decode_s`` over completed requests. Reads ``status``,
    ``server_decode_s``."""
    return ratio(server_decode_s(requests), int(completed(requests).sum()))


def decode_pool_utilization(requests: pa.Table, decode_cores: int, sim_time_s: float) -> float:
    """Total ``server_decode_s`` over ``decode_cores * sim_time_s``; NaN without a pool
    (``decode_cores`` 0) or simulated time. Reads ``server_decode_s``."""
    if decode_cores < 0:
        raise ValueError(f"decode_cores must be >= 0, got {decode_cores}")
    if decode_cores == 0 or sim_time_s <= 0:
        return NAN
    return server_decode_s(requests) / (decode_cores * sim_time_s)
