"""The file contents ``fleet.run.check`` reads before a run: bandwidth traces (files parsed,
``synthetic:`` presets known), arrival traces, and replay profiles (whether they answer every
group's model, split and codec). Each file is read once per ``check`` call; nothing is cached
between calls. Every method returns why a thing is wrong, or None.
"""

from __future__ import annotations

from typing import Any

from fleet.arrivals import ArrivalError, read_arrival_trace
from fleet.compute.replay import ReplayOracle
from fleet.network.trace_source import load_link_trace
from fleet.network.traces import TraceError
from scenarios.schema import LinkSpec, Scenario
from server.engine.jobs import GenJob, HeadJob, OracleError, full_codec_key


class FileChecks:
    """What one ``check`` call read, so that groups and sweep points reuse it."""

    def __init__(self) -> None:
        self._traces: dict[str, str | None] = {}
        self._arrivals: dict[str, str | None] = {}
        self._replays: dict[str, ReplayOracle | str] = {}

    def trace_problem(self, link: LinkSpec) -> str | None:
        """Why the link's trace cannot be loaded (an unknown preset, a file that does not
        parse), else None."""
        key = link.model_dump_json(include={"trace", "format", "time_column", "bandwidth_column"})
        if key not in self._traces:
            try:
                load_link_trace(link, seed=0)
                self._traces[key] = None
            except (TraceError, OSError) as exc:
                self._traces[key] = str(exc)
        return self._traces[key]

    def arrival_trace_problem(self, path: str) -> str | None:
        if path not in self._arrivals:
            try:
                read_arrival_trace(path)
                self._arrivals[path] = None
            except ArrivalError as exc:
                self._arrivals[path] = str(exc)
        return self._arrivals[path]

    def replay(self, path: str) -> ReplayOracle | str:
        """The profiles at ``path`` loaded as the run would, or why they cannot be."""
        if path not in self._replays:
            try:
                self._replays[path] = ReplayOracle([path])
            except (OracleError, OSError, ValueError) as exc:
                self._replays[path] = str(exc)
        return self._replays[path]

    def replay_gap(
        self, oracle: ReplayOracle, scenario: Scenario, split: int, codec: dict[str, Any]
    ) -> str | None:
        """Why ``oracle`` cannot answer a request of ``scenario`` at ``split`` with ``codec``:
        one job asked exactly as the simulation asks it."""
        m = scenario.model
        key = full_codec_key(codec)
        try:
            if m.task == "generate":
                job = GenJob(0, m.name, split, key, 0, m.seq_len, m.new_tokens, m.prompts)
                oracle.submit_generations([job])
            else:
                oracle.submit_heads(
                    [HeadJob(0, m.name, split, key, 0, m.seq_len, prompts=m.prompts)]
                )
        except OracleError as exc:
            return str(exc)
        return None
