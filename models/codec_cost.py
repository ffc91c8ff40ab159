"""The codec cost model: seconds per encode or decode call of one codec setting.

A call costs ``fixed_s + per_element_s * elements + per_payload_byte_s * payload_bytes``,
plus ``per_spilled_element_s`` for every element beyond ``spill_elements``, times a per-size
correction (measured over predicted at each fitted size, interpolated in log elements) for
what the terms cannot follow. The terms are a per-call overhead (container, tables, Python), a
term in the tensor's size, a term in the bytes the entropy coder reads or writes, and the extra
cost per element once the working set no longer fits the core's caches (measured here: 4 MB
tensors take 2-3x the per-element time of 0.5 MB ones for the simple casts). The spill point is
chosen by the fit among powers of two (or left out when it does not help). The terms are
fitted per codec setting (its full config key) and direction from calls timed on one core
(``fleet.run.codec_calibration``, ``slicer calibrate-codecs``) by non-negative least squares on
*relative* error, so a one-token frame and a 4 MB tensor weigh alike. ``CodecCosts`` holds the
fits of many settings and writes and reads them as YAML; nothing here imports torch or a codec.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

DIRECTIONS = ("encode", "decode")
#: optional: one step frame of a codec stream (``codec.open_encoder``), fitted on frame width
FRAME_DIRECTIONS = ("frame_encode", "frame_decode")


@dataclass(frozen=True)
class CallTime:
    """One timed call: ``elements`` values in, ``payload_bytes`` out (or in), ``seconds``."""

    elements: int
    payload_bytes: int
    seconds: float


@dataclass(frozen=True)
class CallCost:
    """The terms of one (setting, direction); ``corrections`` are (elements, measured over
    the terms' prediction) at the sizes it was fitted on, interpolated in log elements (held
    flat beyond them): what the terms cannot follow, such as SLICER's setting search, whose
    time does not grow smoothly with size. Without them the terms alone are the cost."""

    fixed_s: float
    per_element_s: float
    per_payload_byte_s: float
    spill_elements: float = math.inf
    per_spilled_element_s: float = 0.0
    corrections: tuple[tuple[float, float], ...] = ()

    def terms_s(self, elements: float, payload_bytes: float) -> float:
        spilled_s = self.per_spilled_element_s * max(0.0, elements - self.spill_elements)
        per_call_s = self.fixed_s + self.per_element_s * elements
        return per_call_s + self.per_payload_byte_s * payload_bytes + spilled_s

    def seconds(self, elements: float, payload_bytes: float) -> float:
        base_s = self.terms_s(elements, payload_bytes)
        if not self.corrections:
            return base_s
        sizes = [math.log(max(e, 1.0)) for e, _ in self.corrections]
        ratios = [r for _, r in self.corrections]
        return base_s * float(np.interp(math.log(max(elements, 1.0)), sizes, ratios))


def fit(calls: Sequence[CallTime]) -> CallCost:
    """The non-negative terms that minimise the squared relative error over ``calls``; the
    spill point is the power of two (or none) that gives the smallest worst-call error."""
    if len(calls) < 3:
        raise ValueError(f"a fit needs at least 3 timed calls of different sizes, got {len(calls)}")
    seconds = np.array([c.seconds for c in calls], dtype=np.float64)
    if not (np.isfinite(seconds).all() and (seconds > 0).all()):
        raise ValueError("timed calls must take a finite, positive number of seconds")
    elements = [c.elements for c in calls]
    candidates = [math.inf] + [
        float(2**k) for k in range(10, 31) if min(elements) <= 2**k < max(elements)
    ]
    best: tuple[float, CallCost] | None = None
    for spill in candidates if len(calls) >= 5 else [math.inf]:
        cost = _fit_at(calls, seconds, spill)
        worst = max(abs(e) for e in relative_errors(cost, calls))
        if best is None or worst < best[0] - 1e-3:  # a spill term must earn its place
            best = (worst, cost)
    assert best is not None
    return _corrected(best[1], calls)


def _corrected(cost: CallCost, calls: Sequence[CallTime]) -> CallCost:
    """``cost`` with the per-size corrections of ``calls`` (the median ratio per size)."""
    by_size: dict[int, list[float]] = {}
    for c in calls:
        predicted_s = cost.terms_s(c.elements, c.payload_bytes)
        ratio = c.seconds / predicted_s if predicted_s > 0 else 1.0
        by_size.setdefault(c.elements, []).append(ratio)
    pairs = tuple((float(e), float(np.median(r))) for e, r in sorted(by_size.items()))
    return dataclasses.replace(cost, corrections=pairs)


def _fit_at(calls: Sequence[CallTime], seconds: np.ndarray, spill: float) -> CallCost:
    from scipy.optimize import nnls

    rows = [[1.0, c.elements, c.payload_bytes] for c in calls]
    if math.isfinite(spill):
        rows = [[*r, max(0.0, c.elements - spill)] for r, c in zip(rows, calls, strict=True)]
    design = np.array(rows, dtype=np.float64)
    scale = design.max(axis=0)  # columns of similar magnitude for the solver
    scale[scale == 0] = 1.0
    terms, _ = nnls(design / scale / seconds[:, None], np.ones(len(calls)))
    values = (terms / scale).tolist()
    fixed_s, per_element_s, per_byte_s = values[:3]
    if not math.isfinite(spill):
        return CallCost(fixed_s, per_element_s, per_byte_s)
    return CallCost(fixed_s, per_element_s, per_byte_s, spill, values[3])


def relative_errors(cost: CallCost, calls: Sequence[CallTime]) -> list[float]:
    """(predicted - measured) / measured per call."""
    return [cost.seconds(c.elements, c.payload_bytes) / c.seconds - 1.0 for c in calls]


class CodecCosts:
    """Fitted costs by codec key (``server.engine.jobs.codec_key`` of a full config) and
    direction, with the machine they were measured on: its name, the Geekbench 6 single-core
    score of its core (NaN when not stated; ``models.codec_time`` scales by it) and, per codec
    id, the key of that codec's default setting (what an unfitted setting is charged as)."""

    def __init__(
        self,
        costs: Mapping[str, Mapping[str, CallCost]],
        *,
        machine: str = "unknown",
        cpu_core_score: float = math.nan,
        defaults: Mapping[str, str] | None = None,
    ) -> None:
        for key, by_direction in costs.items():
            missing = [d for d in DIRECTIONS if d not in by_direction]
            unknown = [d for d in by_direction if d not in (*DIRECTIONS, *FRAME_DIRECTIONS)]
            if missing or unknown:
                raise ValueError(f"codec cost {key}: missing {missing}, unknown {unknown}")
        if not (math.isnan(cpu_core_score) or cpu_core_score > 0):
            raise ValueError(f"cpu_core_score must be > 0 (or NaN), got {cpu_core_score!r}")
        unfitted = {i: k for i, k in (defaults or {}).items() if k not in costs}
        if unfitted:
            raise ValueError(f"codec cost defaults name keys that were not fitted: {unfitted}")
        self._costs = {key: dict(v) for key, v in costs.items()}
        self.machine = machine
        self.cpu_core_score = float(cpu_core_score)
        self.defaults = dict(defaults or {})

    @property
    def keys(self) -> list[str]:
        return sorted(self._costs)

    def get(self, key: str, direction: str) -> CallCost | None:
        return self._costs.get(key, {}).get(direction)

    def seconds(self, key: str, direction: str, elements: float, payload_bytes: float) -> float:
        """Seconds of one call; NaN for a setting that was not fitted."""
        cost = self.get(key, direction)
        if cost is None:
            return math.nan
        return cost.seconds(elements, payload_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "cpu_core_score": None if math.isnan(self.cpu_core_score) else self.cpu_core_score,
            "defaults": dict(sorted(self.defaults.items())),
            "codecs": {
                key: {d: _as_yaml(cost) for d, cost in by_direction.items()}
                for key, by_direction in sorted(self._costs.items())
            },
        }

    def write(self, path: str | Path) -> Path:
        """Write as YAML (to a temporary name, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> CodecCosts:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
            costs = {
                key: {d: _from_yaml(terms) for d, terms in by_direction.items()}
                for key, by_direction in data["codecs"].items()
            }
            score = data.get("cpu_core_score")
            return cls(
                costs,
                machine=str(data.get("machine", "unknown")),
                cpu_core_score=math.nan if score is None else float(score),
                defaults={str(k): str(v) for k, v in (data.get("defaults") or {}).items()},
            )
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(
                f"{path}: not a codec cost file ({exc}); write one with slicer calibrate-codecs"
            ) from exc


def _as_yaml(cost: CallCost) -> dict[str, Any]:
    out = asdict(cost)
    out["corrections"] = [list(pair) for pair in cost.corrections]
    return out


def _from_yaml(terms: Mapping[str, Any]) -> CallCost:
    fields = dict(terms)
    pairs = fields.pop("corrections", ())
    return CallCost(**fields, corrections=tuple((float(e), float(r)) for e, r in pairs))
