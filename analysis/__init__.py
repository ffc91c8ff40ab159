"""Read results, compute metrics, draw plots and write reports.

``import analysis`` is light: it loads the readers (``analysis.load``), the metrics
(``analysis.metrics``) and sizing at an SLO (``analysis.sizing``), all numpy and pyarrow only.
Plots (``analysis.plots``, matplotlib) and reports (``analysis.report``) are imported from
their own modules when needed.
"""

from analysis.load import ResultsError, Run, Sweep, load, load_run, load_sweep
from analysis.metrics import (
    STAGES,
    codec_label,
    device_energy_j_per_request,
    drop_rate,
    failure_rate,
    latency,
    quality,
    run_labels,
    run_metrics,
    server_busy_s_per_request,
    server_busy_s_per_token,
    server_utilization,
    slo_attainment,
    stage_breakdown,
    sweep_rows,
    throughput_rps,
    token_latency,
    uplink_bits_per_token,
    uplink_bytes_per_request,
)
from analysis.sizing import Capacity, capacity, replicas_needed

__all__ = [
    "STAGES",
    "Capacity",
    "ResultsError",
    "Run",
    "Sweep",
    "capacity",
    "codec_label",
    "device_energy_j_per_request",
    "drop_rate",
    "failure_rate",
    "latency",
    "load",
    "load_run",
    "load_sweep",
    "quality",
    "replicas_needed",
    "run_labels",
    "run_metrics",
    "server_busy_s_per_request",
    "server_busy_s_per_token",
    "server_utilization",
    "slo_attainment",
    "stage_breakdown",
    "sweep_rows",
    "throughput_rps",
    "token_latency",
    "uplink_bits_per_token",
    "uplink_bytes_per_request",
]
