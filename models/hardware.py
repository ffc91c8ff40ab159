"""The hardware catalog: peak compute per dtype, memory bandwidth and capacity, power, and the
cost model's efficiency factors and overheads for edge devices and servers.

``hardware.yaml`` beside this module holds the bundled entries, each number with its source.
``get_hardware(name, extra)`` returns one frozen ``HardwareSpec``; ``extra`` maps entry names to
field dicts that override fields of an entry of that name (``peak_flops_per_s`` merges per
dtype) or add a new one, complete or derived from another with ``base: <entry>``. Every entry,
bundled or given, is validated: unknown keys, missing fields, non-numbers and negative numbers
raise ``HardwareError`` naming the entry and the field.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATALOG_PATH = Path(__file__).with_name("hardware.yaml")
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")
KINDS = ("device", "server", "any")
#: Efficiencies above 1 are allowed for calibrated entries whose nominal peak (a micro-benchmark)
#: understates what a workload achieves, e.g. weights served from cache; 4 catches unit slips.
MAX_EFFICIENCY = 4.0

# Numeric fields: (smallest allowed, whether the smallest itself is allowed, largest allowed).
_NUMBER_FIELDS: dict[str, tuple[float, bool, float]] = {
    "memory_bandwidth_bytes_per_s": (0.0, False, math.inf),
    "memory_capacity_bytes": (0.0, False, math.inf),
    "idle_power_w": (0.0, True, math.inf),
    "active_power_w": (0.0, True, math.inf),
    "efficiency_compute": (0.0, False, MAX_EFFICIENCY),
    "efficiency_memory": (0.0, False, MAX_EFFICIENCY),
    "call_overhead_s": (0.0, True, math.inf),
    "block_overhead_s": (0.0, True, math.inf),
    "cpu_core_score": (0.0, False, math.inf),
    "host_cpu_cores": (0.0, True, 1.0e6),
}
#: fields a new entry may leave out, with what leaving them out means (see ``HardwareSpec``)
_OPTIONAL = {"description": "", "cpu_core_score": math.nan, "host_cpu_cores": 1.0}
_FIELDS = ("kind", "description", "peak_flops_per_s", *_NUMBER_FIELDS)


class HardwareError(ValueError):
    """A hardware entry or name is wrong; the message names the entry, the field and the fix."""


@dataclass(frozen=True)
class HardwareSpec:
    """One catalog entry. ``peak_flops_per_s`` is a tuple of (dtype, FLOP/s) pairs so that the
    spec stays hashable and picklable; read it with ``peak(dtype)``."""

    name: str
    kind: str  # "device" | "server" | "any"
    description: str
    peak_flops_per_s: tuple[tuple[str, float], ...]
    memory_bandwidth_bytes_per_s: float
    memory_capacity_bytes: float
    idle_power_w: float
    active_power_w: float
    efficiency_compute: float
    efficiency_memory: float
    call_overhead_s: float
    block_overhead_s: float
    #: Geekbench 6 single-core score of the CPU core that runs codecs (a device's own CPU, a
    #: server's host CPU): codec times scale by the calibration machine's score over this.
    #: NaN: as fast as the machine the codec costs were measured on.
    cpu_core_score: float = math.nan
    #: servers: host CPU cores beside one accelerator that decode IFs (the decode pool)
    host_cpu_cores: int = 1

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.peak_flops_per_s)

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s (ops/s for int8) in ``dtype``."""
        for name, flops_per_s in self.peak_flops_per_s:
            if name == dtype:
                return flops_per_s
        raise HardwareError(
            f"hardware {self.name!r} has no peak_flops_per_s for dtype {dtype!r}; it lists "
            f"{list(self.dtypes)}: pick one of those or add the dtype in an extra entry"
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry's fields as ``hardware.yaml`` writes them (without the name)."""
        fields: dict[str, Any] = {"kind": self.kind, "description": self.description}
        fields["peak_flops_per_s"] = dict(self.peak_flops_per_s)
        fields.update({f: getattr(self, f) for f in _NUMBER_FIELDS})
        if math.isnan(self.cpu_core_score):
            del fields["cpu_core_score"]  # left out: as fast as the calibration machine
        return fields


def spec_from_dict(name: str, fields: Mapping[str, Any]) -> HardwareSpec:
    """Validate one complete entry and build its spec."""
    if not isinstance(fields, Mapping):
        raise HardwareError(
            f"hardware entry {name!r}: must be a mapping of fields, got {type(fields).__name__}"
        )
    unknown = [k for k in fields if k not in _FIELDS]
    if unknown:
        raise HardwareError(
            f"hardware entry {name!r}: unknown field {unknown[0]!r}; allowed: {list(_FIELDS)}"
        )
    missing = [k for k in _FIELDS if k not in fields and k not in _OPTIONAL]
    if missing:
        raise HardwareError(
            f"hardware entry {name!r}: missing field {missing[0]!r}; a new entry needs all of "
            f"{list(_FIELDS)} ({sorted(_OPTIONAL)} optional), or 'base: <entry>' to start "
            "from another"
        )
    kind = fields["kind"]
    if kind not in KINDS:
        raise HardwareError(f"hardware entry {name!r}: kind must be one of {KINDS}, got {kind!r}")
    numbers = {
        f: _number(name, f, fields[f], *_NUMBER_FIELDS[f])
        for f in _NUMBER_FIELDS
        if f in fields or f not in _OPTIONAL
    }
    cores = numbers.pop("host_cpu_cores", 1.0)
    if cores != int(cores):
        raise HardwareError(
            f"hardware entry {name!r}: host_cpu_cores must be a whole number of cores, got "
            f"{fields['host_cpu_cores']!r}"
        )
    if numbers["active_power_w"] < numbers["idle_power_w"]:
        raise HardwareError(
            f"hardware entry {name!r}: active_power_w ({numbers['active_power_w']}) is below "
            f"idle_power_w ({numbers['idle_power_w']}); swap or fix them"
        )
    return HardwareSpec(
        name=name,
        kind=str(kind),
        description=str(fields.get("description", "")),
        peak_flops_per_s=_peaks(name, fields["peak_flops_per_s"]),
        host_cpu_cores=int(cores),
        **numbers,
    )


def _peaks(name: str, peaks: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(peaks, Mapping) or not peaks:
        raise HardwareError(
            f"hardware entry {name!r}: peak_flops_per_s must map dtypes to FLOP/s, e.g. "
            f"{{fp32: 1.0e+12}}, got {peaks!r}"
        )
    for dtype in peaks:
        if dtype not in DTYPES:
            raise HardwareError(
                f"hardware entry {name!r}: peak_flops_per_s has unknown dtype {dtype!r}; "
                f"allowed: {list(DTYPES)}"
            )
    if "fp32" not in peaks:
        raise HardwareError(f"hardware entry {name!r}: peak_flops_per_s must list fp32")
    field = "peak_flops_per_s"
    return tuple(
        (d, _number(name, f"{field}.{d}", peaks[d], 0.0, False, math.inf))
        for d in DTYPES
        if d in peaks
    )


def _number(name: str, field: str, value: Any, lo: float, lo_ok: bool, hi: float) -> float:
    """A float in range; numeric strings are accepted because YAML 1.1 reads ``1e9`` as one."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int | float) or math.isnan(number):
        raise HardwareError(f"hardware entry {name!r}: {field} must be a number, got {value!r}")
    low_bad = number < lo or (number == lo and not lo_ok)
    if low_bad or number > hi:
        bounds = f"{'>=' if lo_ok else '>'} {lo:g}" + (f" and <= {hi:g}" if hi < math.inf else "")
        raise HardwareError(f"hardware entry {name!r}: {field} must be {bounds}, got {value!r}")
    return float(number)


def read_entries(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The raw field dicts of a catalog file (the bundled one by default), unvalidated."""
    if path is None:
        return copy.deepcopy(_bundled_entries())
    return _read_yaml(Path(path))


@functools.lru_cache(maxsize=1)
def _bundled_entries() -> dict[str, dict[str, Any]]:
    return _read_yaml(CATALOG_PATH)


def _read_yaml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise HardwareError(f"hardware catalog {path}: cannot read it ({exc})") from exc
    except yaml.YAMLError as exc:
        raise HardwareError(f"hardware catalog {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise HardwareError(f"hardware catalog {path}: must map entry names to field mappings")
    return {str(k): v for k, v in data.items()}


def merge_entries(
    entries: Mapping[str, Mapping[str, Any]], extra: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``entries`` with ``extra`` applied in order: a known name gets its fields overridden
    (``peak_flops_per_s`` per dtype), a new name starts empty or from ``base: <entry>``."""
    if not isinstance(extra, Mapping):
        raise HardwareError(
            f"extra hardware must map entry names to field mappings, got {type(extra).__name__}"
        )
    merged = {name: dict(fields) for name, fields in entries.items()}
    for name, fields in extra.items():
        if not isinstance(fields, Mapping):
            raise HardwareError(
                f"hardware entry {name!r}: must be a mapping of fields, got {type(fields).__name__}"
            )
        own = dict(fields)
        base_name = own.pop("base", None)
        if base_name is not None and base_name not in merged:
            raise HardwareError(
                f"hardware entry {name!r}: base {base_name!r} is not an entry; known: "
                f"{sorted(merged)}"
            )
        start = merged.get(base_name if base_name is not None else name, {})
        entry = dict(start)
        if isinstance(start.get("peak_flops_per_s"), Mapping) and isinstance(
            own.get("peak_flops_per_s"), Mapping
        ):
            own["peak_flops_per_s"] = {**start["peak_flops_per_s"], **own["peak_flops_per_s"]}
        entry.update(own)
        merged[name] = entry
    return merged


def load_catalog(path: str | Path | None = None) -> dict[str, HardwareSpec]:
    """Every entry of a catalog file (the bundled one by default), validated."""
    return {name: spec_from_dict(name, f) for name, f in read_entries(path).items()}


def catalog(extra: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, HardwareSpec]:
    """The bundled catalog with ``extra`` entries applied, all validated."""
    merged = merge_entries(read_entries(), extra or {})
    return {name: spec_from_dict(name, fields) for name, fields in merged.items()}


def get_hardware(name: str, extra: Mapping[str, Mapping[str, Any]] | None = None) -> HardwareSpec:
    """One entry of the bundled catalog with ``extra`` applied; unknown names list the known."""
    specs = catalog(extra)
    if name not in specs:
        raise HardwareError(f"unknown hardware {name!r}; known: {sorted(specs)}")
    return specs[name]
