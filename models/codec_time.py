"""Simulated codec durations: an encode on a device, a decode on a server's decode pool (one
host CPU core per IF) or on its accelerator. Nothing here reads a clock.

CPU calls are the fitted cost model of ``models.codec_cost`` (per call, per element, per
payload byte, cache spill), looked up by the group's full codec key, and scaled to the core
that runs them by ``reference score / hardware.cpu_core_score`` (Geekbench 6 single-core
scores: the codec cost file's machine and the hardware entry; either missing leaves the
factor at 1, and the ``ideal`` entry's infinite score makes codecs free). A codec setting that
was not fitted is charged as its codec's default setting (``CodecTimes.substitutes`` lists
those, and the report names them); a codec with no fit at all is an error that says how to
fit it. The bundled fits (``codec_costs.yaml`` beside this module) were measured on the
development machine with ``slicer calibrate-codecs``; a scenario's ``codec_costs`` names
another file.

Decoding on the accelerator (``servers.decode.on: gpu``) uses published figures, not a
measurement (no GPU was available): plain casts and per-block quantisers (``GPU_CAST_CODECS``)
decode at the hardware's achievable memory bandwidth (read the payload, write float32), and
entropy-coded codecs at ``GPU_ENTROPY_FRACTION`` of its peak memory bandwidth, DietGPU's ANS
decode (250 GB/s of output on an A100, 2.04 TB/s HBM: about 12%); a batch's decode is one
kernel launch (the hardware's ``call_overhead_s``). ``GPU_ASSUMPTION`` says so in words for
the report.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from models.codec_cost import CallCost, CodecCosts

if TYPE_CHECKING:
    from models.hardware import HardwareSpec

BUNDLED_PATH = Path(__file__).with_name("codec_costs.yaml")
FLOAT32_BYTES = 4  # IFs are float32 on both sides: raw bytes / 4 = elements
GPU_CAST_CODECS = frozenset({"fp32", "fp16", "bf16", "int8", "blockwise8"})
GPU_ENTROPY_FRACTION = 250e9 / 2.039e12
GPU_ASSUMPTION = (
    "decode on the accelerator is not measured: casts and block quantisers decode at the "
    "hardware's achievable memory bandwidth, entropy-coded codecs at 12% of its peak "
    "bandwidth (DietGPU's published ANS decode, 250 GB/s on an A100), one launch per batch"
)


class CodecCostError(ValueError):
    """A codec has no fitted cost; the message says how to fit one."""


class CodecTimes:
    def __init__(self, costs: CodecCosts) -> None:
        self.costs = costs
        self.substitutes: dict[str, str] = {}  # key charged as another fitted key
        self.frames_as_containers: set[str] = set()  # fitted keys without frame fits
        self._resolved: dict[str, str] = {}
        # a fleet sends the same few (codec, size) pairs again and again: one entry per call
        self._call_s = functools.lru_cache(maxsize=1 << 16)(self._call_uncached_s)

    @classmethod
    def read(cls, path: str | Path | None = None) -> CodecTimes:
        """The fits in ``path``, or the bundled ones."""
        return cls(_bundled() if path is None else CodecCosts.read(path))

    def resolve(self, key: str) -> str:
        """The fitted key ``key`` is charged as: itself, or its codec's default setting."""
        found = self._resolved.get(key)
        if found is not None:
            return found
        if self.costs.get(key, "encode") is not None:
            found = key
        else:
            codec_id = codec_id_of(key)
            found = self.costs.defaults.get(codec_id, "")
            if not found:
                raise CodecCostError(
                    f"codec {codec_id!r} has no fitted cost in {self.costs.machine!r}'s codec "
                    f"costs; fit it with slicer calibrate-codecs --codec '{key}' --out FILE "
                    "and name FILE in the scenario's codec_costs"
                )
            self.substitutes[key] = found
        self._resolved[key] = found
        return found

    def factor(self, hardware: HardwareSpec) -> float:
        """Codec time on ``hardware``'s core over the calibration machine's."""
        score = hardware.cpu_core_score
        if math.isinf(score):
            return 0.0
        reference = self.costs.cpu_core_score
        if math.isnan(score) or math.isnan(reference):
            return 1.0
        return reference / score

    def seconds(
        self,
        direction: str,
        key: str,
        raw_bytes: float,
        payload_bytes: float,
        hardware: HardwareSpec,
        *,
        frame: bool = False,
    ) -> float:
        """One ``direction`` ("encode" or "decode") call on one core of ``hardware`` (a
        device's CPU, or a decode-pool core of a server); ``frame``: a stream's step frame."""
        if direction not in ("encode", "decode"):
            raise ValueError(f"direction must be encode or decode, got {direction!r}")
        return self._call_s(key, direction, raw_bytes, payload_bytes, hardware, frame)

    def _call_uncached_s(
        self,
        key: str,
        direction: str,
        raw_bytes: float,
        payload_bytes: float,
        hardware: HardwareSpec,
        frame: bool,
    ) -> float:
        factor = self.factor(hardware)
        if factor == 0.0:
            return 0.0
        fitted = self.resolve(key)
        cost = self.costs.get(fitted, f"frame_{direction}") if frame else None
        if frame and cost is None:
            self.frames_as_containers.add(fitted)
        cost = cost or self.costs.get(fitted, direction)
        assert isinstance(cost, CallCost)
        return factor * cost.seconds(raw_bytes / FLOAT32_BYTES, payload_bytes)


def gpu_decode_s(
    codec_ids: list[str], raw_bytes: list[float], payload_bytes: list[float], hw: HardwareSpec
) -> float:
    """Decode of a batch of IFs on the accelerator ``hw`` (see the module text)."""
    if not codec_ids or math.isinf(hw.memory_bandwidth_bytes_per_s):
        return 0.0
    achievable = hw.memory_bandwidth_bytes_per_s * hw.efficiency_memory
    entropy = hw.memory_bandwidth_bytes_per_s * GPU_ENTROPY_FRACTION
    total_s = hw.call_overhead_s
    for codec_id, raw, payload in zip(codec_ids, raw_bytes, payload_bytes, strict=True):
        if codec_id in GPU_CAST_CODECS:
            total_s += (raw + payload) / achievable
        else:
            total_s += raw / entropy
    return total_s


def codec_id_of(key: str) -> str:
    """The codec id of a full codec key (its canonical JSON config)."""
    try:
        config = json.loads(key)
        return str(config["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CodecCostError(f"not a codec key: {key!r}") from exc


@functools.lru_cache(maxsize=1)
def _bundled() -> CodecCosts:
    return CodecCosts.read(BUNDLED_PATH)
