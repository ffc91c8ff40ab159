"""Time codec calls on this machine and fit ``models.codec_cost`` to them.

``calibrate_codecs`` encodes and decodes a language-model-like IF (rows of 576 values, SmolLM2's
width: Student-t noise with three degrees of freedom plus two "massive" channels about 1,000x
the rest, as real residual streams have) at sizes from one token to 4 MB of float32, on one
torch thread, ``repeats`` times per size, and keeps the median of each. Per codec setting and
direction it fits the three-term cost and reports predicted against measured per size. The
tensor is synthetic and seeded, so the fit is repeatable on a machine; real IFs of other
shapes change SLICER's search, which is why the fit has a per-element term of its own.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.codec_cost import (
    DIRECTIONS,
    FRAME_DIRECTIONS,
    CallCost,
    CallTime,
    CodecCosts,
    fit,
    relative_errors,
)
from server.engine.jobs import codec_key

WIDTH = 576  # SmolLM2-135M's hidden size
#: rows per call: one token, then up to 1,820 rows = 1,048,320 float32 values (4 MB)
ROWS = (1, 8, 64, 256, 512, 1024, 1820)
#: every codec's defaults, and the settings the bundled scenarios use
SETTINGS: tuple[dict[str, Any], ...] = (
    {"id": "fp32"},
    {"id": "fp16"},
    {"id": "bf16"},
    {"id": "int8"},
    {"id": "blockwise8"},
    {"id": "zstd"},
    {"id": "topk"},
    {"id": "rans"},
    {"id": "jpeg"},
    {"id": "jpeg", "quality": 85},
    {"id": "slicer"},
    {"id": "slicer", "max_nmse": 0.001},
    {"id": "slicer", "max_nmse": 0.01},
    {"id": "slicer", "max_nmse": 0.03},
)
#: Geekbench 6 single-core score of the development machine's core (an Intel Xeon of the
#: Sapphire Rapids generation under KVM at 2.6 GHz): an estimate from listed results for that
#: part; the bundled codec costs were fitted there.
DEV_MACHINE_CPU_SCORE = 1500.0
MAX_REPEATS = 1000
#: one-row step frames of these widths (SmolLM2 576, Gemma-3-270M 640, larger models beyond)
FRAME_WIDTHS = (256, 576, 1152, 2048)


@dataclass(frozen=True)
class SettingFit:
    """One codec setting: its config as given, its full key, the calls timed per direction
    and the fitted costs."""

    config: dict[str, Any]
    key: str
    calls: dict[str, list[CallTime]]
    costs: dict[str, CallCost]

    def rows(self) -> list[list[Any]]:
        """Per direction and size: elements, payload bytes, measured and predicted us, error."""
        out = []
        for direction in (*DIRECTIONS, *FRAME_DIRECTIONS):
            if direction not in self.calls:
                continue
            calls, cost = self.calls[direction], self.costs[direction]
            for call, err in zip(calls, relative_errors(cost, calls), strict=True):
                predicted_s = cost.seconds(call.elements, call.payload_bytes)
                out.append(
                    [
                        direction,
                        call.elements,
                        call.payload_bytes,
                        call.seconds * 1e6,
                        predicted_s * 1e6,
                        100 * err,
                    ]
                )
        return out


def if_like(rows: int, seed: int = 0, width: int = WIDTH) -> np.ndarray:
    """A [rows, width] float32 tensor shaped like a residual stream (see the module text)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(rows, width)).astype(np.float32)
    x[:, 7] *= 1000.0
    x[:, width // 2] *= -800.0
    return x


def calibrate_codecs(
    settings: Sequence[dict[str, Any]] = SETTINGS,
    *,
    rows: Sequence[int] = ROWS,
    repeats: int = 5,
    machine: str = "this machine",
    cpu_core_score: float = math.nan,
    ifs: str | None = None,
) -> tuple[CodecCosts, list[SettingFit]]:
    """Time and fit every setting; the fitted costs and, per setting, the calls behind them.
    ``cpu_core_score`` is this machine's Geekbench 6 single-core score (what simulated
    hardware scales codec time against); a setting given as only its codec id becomes that
    codec's default, what unfitted settings of it are charged as; ``ifs`` names a causal LM
    whose real IFs are timed instead of the synthetic tensor."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ValueError(f"repeats must be an integer in 1..{MAX_REPEATS}, got {repeats!r}")
    if len(set(rows)) < 3 or min(rows) < 1:
        raise ValueError(f"rows needs at least 3 distinct sizes >= 1, got {list(rows)}")
    from models.timing import torch_threads

    with torch_threads(1):
        real = None if ifs is None else model_ifs(ifs, max(max(rows), 65) + 1)
        if real is None:
            tensors = {n: if_like(n, seed=n) for n in rows}
        else:  # row 0 is the first token, whose massive activations no later token has
            tensors = {n: real[1 : n + 1] for n in rows}
        fits = [_fit_setting(config, tensors, repeats, real) for config in settings]
    defaults = {f.config["id"]: f.key for f in fits if set(f.config) == {"id"}}
    costs = CodecCosts(
        {f.key: f.costs for f in fits},
        machine=machine,
        cpu_core_score=cpu_core_score,
        defaults=defaults,
    )
    return costs, fits


def model_ifs(name: str, rows: int) -> np.ndarray:
    """``rows`` rows of the causal LM ``name``'s hidden states after its middle block, over its
    sample windows in order: float32 ``[rows, width]``."""
    import torch

    import models

    model = models.load(name)
    if model.task != "causal-lm":
        raise ValueError(f"ifs must name a causal LM (its IFs are [tokens, width]), got {name!r}")
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for sample in model.samples():
            chunks.append(model.head(sample.x[None], model.num_blocks // 2)[0].numpy())
            if sum(len(c) for c in chunks) >= rows:
                break
    x = np.concatenate(chunks).astype(np.float32)
    if len(x) < rows:
        raise ValueError(f"{name}: its samples hold {len(x)} tokens, fewer than {rows}")
    return x[:rows]


def _fit_setting(
    config: dict[str, Any],
    tensors: dict[int, np.ndarray],
    repeats: int,
    real: np.ndarray | None = None,
) -> SettingFit:
    from codec import get_codec

    codec = get_codec(config)
    calls: dict[str, list[CallTime]] = {d: [] for d in DIRECTIONS}
    for x in tensors.values():
        payload = codec.encode(x)  # warm: tables, JIT, caches
        codec.decode(payload)
        encode_s = _median_s(lambda x=x: codec.encode(x), repeats)
        decode_s = _median_s(lambda p=payload: codec.decode(p), repeats)
        calls["encode"].append(CallTime(x.size, len(payload), encode_s))
        calls["decode"].append(CallTime(x.size, len(payload), decode_s))
    calls.update(_frame_calls(codec, repeats, real))
    key = codec_key(codec.get_config())
    return SettingFit(dict(config), key, calls, {d: fit(c) for d, c in calls.items()})


def _frame_calls(codec: Any, repeats: int, real: np.ndarray | None) -> dict[str, list[CallTime]]:
    """Timed step frames of a stream per width (see the module text)."""
    from codec import open_decoder, open_encoder

    calls: dict[str, list[CallTime]] = {d: [] for d in FRAME_DIRECTIONS}
    for width in FRAME_WIDTHS:
        if real is not None and real.shape[1] == width:
            prefill, x = real[1:65], real[65:66]
        else:
            prefill, x = if_like(64, seed=width, width=width), if_like(1, width + 1, width)
        encoder = open_encoder(codec, prefill)
        decoder = open_decoder(codec, encoder.setup)
        frame = encoder.encode(x)
        decoder.decode(frame)  # warm
        encode_s = _median_s(lambda x=x, e=encoder: e.encode(x), repeats)
        if _stateful_frames(codec):  # a frame decodes once per state: a fresh decoder per call
            setup = encoder.setup
            decode_s = _median_s(lambda f=frame, s=setup: open_decoder(codec, s).decode(f), repeats)
        else:
            decode_s = _median_s(lambda f=frame, d=decoder: d.decode(f), repeats)
        calls["frame_encode"].append(CallTime(width, len(frame), encode_s))
        calls["frame_decode"].append(CallTime(width, len(frame), decode_s))
    return calls


def _stateful_frames(codec: Any) -> bool:
    """Whether a stream decoder's state moves with every frame (slicer-llm predicts each frame
    from the previous decoded one), so one frame cannot be decoded twice on one decoder."""
    from codec.slicer_llm import SlicerLlm

    return isinstance(codec, SlicerLlm)


def _median_s(call: Any, repeats: int) -> float:
    """Median seconds per call over ``repeats`` samples; a sample runs the call as many times
    as fit in about 2 ms (at most 1,000), so microsecond calls are not lost in timer noise."""
    start = time.perf_counter()
    call()
    once_s = time.perf_counter() - start
    number = max(1, min(1000, int(2e-3 / max(once_s, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            call()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)
