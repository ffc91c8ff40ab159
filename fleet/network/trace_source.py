"""Where a link's trace comes from: ``load_link_trace`` maps a scenario ``LinkSpec`` onto a
``Trace`` (None for an ideal link; a constant rate; a ``synthetic:`` preset; a Mahimahi,
Pensieve or CSV file), then applies its ``scale``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fleet.network.trace_files import read_csv, read_mahimahi, read_pensieve
from fleet.network.trace_synthetic import synthetic
from fleet.network.traces import Trace, TraceError, constant

if TYPE_CHECKING:
    from scenarios.schema import LinkSpec


def load_link_trace(
    spec: LinkSpec, seed: int, *, base_dir: str | Path | None = None
) -> Trace | None:
    """The trace of a link spec: None for ideal; ``file:`` paths are relative to ``base_dir``
    (default: the working directory); ``synthetic:`` traces use ``seed``; then ``scale``."""
    if spec.kind == "ideal":
        return None
    if spec.kind == "constant":
        assert spec.bandwidth_mbps is not None  # the schema guarantees it
        trace = constant(spec.bandwidth_mbps * 1e6)
    else:
        assert spec.trace is not None
        source, _, value = spec.trace.partition(":")
        if source == "synthetic":
            trace = synthetic(value, seed)
        else:
            path = Path(value)
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            if spec.format == "mahimahi":
                trace = read_mahimahi(path)
            elif spec.format == "pensieve":
                trace = read_pensieve(path)
            elif spec.format == "csv":
                trace = read_csv(path, spec.time_column, spec.bandwidth_column)
            else:
                raise TraceError(f"trace {spec.trace!r}: format must be mahimahi, pensieve or csv")
    return trace.scaled(spec.scale)
