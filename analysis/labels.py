"""Names with units and numbers as text: the one vocabulary of figures and report tables.

``label(key)`` names a metric or parameter key with its unit (``p95_latency_s`` -> "p95 latency
(s)"), from ``LABELS`` or, for keys not listed, from the unit suffix of the key (``_s``,
``_bytes``, ``_rps``, ``_mbps``, ``_bps``, ``_j``). ``axis_label`` is the same name on a plot
axis, where three parameters read longer (``devices`` -> "fleet size (devices)"). Numbers:
``cell_text`` for table cells (NaN and None show as ``MISSING``), ``compact_number`` for labels
inside figures ("12.3k"). Pure Python, no matplotlib.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"

#: Metric and parameter keys with their units, as table headers and (mostly) axis labels.
LABELS = {
    "requests": "requests",
    "completed": "completed (requests)",
    "dropped": "dropped (requests)",
    "failed": "failed (requests)",
    "p50_latency_s": "p50 latency (s)",
    "p95_latency_s": "p95 latency (s)",
    "p99_latency_s": "p99 latency (s)",
    "mean_latency_s": "mean latency (s)",
    "device_s": "device: queue, head, encode (s)",
    "device_queue_s": "device queue (s)",
    "head_s": "head (s)",
    "encode_s": "encode (s)",
    "uplink_s": "uplink (s)",
    "server_wait_s": "server wait: dispatch, queue (s)",
    "dispatch_s": "dispatch (s)",
    "server_queue_s": "server queue (s)",
    "server_compute_s": "server compute (s)",
    "downlink_s": "downlink (s)",
    "throughput_rps": "throughput (requests/s)",
    "slo_attainment": "within the SLO (share of requests)",
    "server_utilization": "server utilisation (share of replica time)",
    "server_busy_s_per_request": "server busy time (s/request)",
    "server_busy_s_per_token": "server busy time (s/token)",
    "decode_pool_utilization": "decode pool utilisation (share of its core time)",
    "server_decode_s_per_request": "server decode (core-s/request)",
    "uplink_bytes_per_request": "uplink (bytes/request)",
    "uplink_bits_per_token": "uplink (bits/token)",
    "raw_bytes_per_request": "raw IF (bytes/request)",
    "compression_ratio": "compression ratio (raw / payload bytes)",
    "device_energy_j_per_request": "device energy (J/request)",
    "radio_energy_j_per_request": "radio energy (J/request)",
    "mean_batch_size": "batch size (mean, requests)",
    "drop_rate": "dropped (share of requests)",
    "failure_rate": "failed (share of requests)",
    "mean_agreement": "agreement with the unsplit model (mean)",
    "quality_change": "quality change (1 - agreement)",
    "p50_ttft_s": "p50 time to first token (s)",
    "p95_ttft_s": "p95 time to first token (s)",
    "p99_ttft_s": "p99 time to first token (s)",
    "mean_ttft_s": "mean time to first token (s)",
    "p50_tpot_s": "p50 time per output token (s)",
    "p95_tpot_s": "p95 time per output token (s)",
    "p99_tpot_s": "p99 time per output token (s)",
    "mean_tpot_s": "mean time per output token (s)",
    "tokens": "tokens generated",
    "tokens_per_s": "tokens per simulated second (tokens/s)",
    "tokens_per_s_per_replica": "tokens per replica (tokens/s)",
    "share_matching_32": "sequences whose first 32 tokens match the unsplit model (share)",
    "mean_tokens_matching": "leading tokens matching the unsplit model (mean, tokens)",
    "mean_running_batch": "running batch (mean, sequences)",
    "prompt_payload_bytes_mean": "prompt IF sent (bytes, mean)",
    "step_payload_bytes_mean": "per-token IF sent (bytes, mean)",
    "step_payload_bytes_var": "per-token IF sent (bytes², variance)",
    "kv_used_max_bytes": "KV cache reserved, most (bytes)",
    "devices": "devices",
    "replicas": "replicas",
    "split": "split",
    "codec": "codec",
    "point": "point",
    "seed": "seed",
}
#: Where an axis needs more words than a table column: the parameters swept along x.
AXIS_LABELS = {
    "devices": "fleet size (devices)",
    "replicas": "server replicas (count)",
    "split": "split point (block index)",
}
#: Key suffix -> unit, tried in order for keys not in ``LABELS``.
UNITS = (
    ("_bytes", "bytes"),
    ("_rps", "requests/s"),
    ("_mbps", "Mbit/s"),
    ("_bps", "bit/s"),
    ("_j", "J"),
    ("_s", "s"),
)


def label(key: str) -> str:
    """A metric key as a table header with its unit: ``p95_latency_s`` -> "p95 latency (s)";
    unknown keys get their unit from the suffix (``queue_wait_s`` -> "queue wait (s)")."""
    if key in LABELS:
        return LABELS[key]
    for suffix, unit in UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            return f"{key[: -len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def axis_label(name: str) -> str:
    """Axis label with its unit for a metric or parameter name: ``label(name)``, except the
    parameters of ``AXIS_LABELS`` (``devices`` -> "fleet size (devices)")."""
    return AXIS_LABELS.get(name) or label(name)


def short_name(name: str) -> str:
    """An axis label without its unit, for titles: ``p95_tpot_s`` -> "p95 time per output
    token"."""
    return axis_label(name).split(" (")[0]


def cell_text(value: Any) -> str:
    """A table cell: "–" for None and NaN, thousands separators for large numbers, four
    significant digits otherwise."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        size = abs(value)
        if size == 0:
            return "0"
        if size >= 1e4:
            return f"{value:,.0f}"
        if size >= 1e-3:
            return f"{value:.4g}"
        return f"{value:.3g}"
    return str(value)


def compact_number(value: float) -> str:
    """A number in three significant digits with a k/M/G suffix ("12.3k"), for text inside
    figures (bar labels, fleet sizes); "–" when not finite."""
    if not math.isfinite(value):
        return MISSING
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"
