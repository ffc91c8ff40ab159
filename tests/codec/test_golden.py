"""Golden payloads: bytes written by an earlier build must keep decoding to the same tensor.

Each ``GOLDEN`` entry names a codec config, a deterministic input (a fixed numpy seed) and a
payload file under ``tests/fixtures/codec`` with, beside it, the tensor it decoded to when it was
written (``.npy``, float32). The test asserts that the stored payload still decodes (with
``decode_any`` and with the codec) bit for bit to that tensor, and that it is within the codec's
stated tolerance of the input. Encoders may improve without touching these files; a decoder or
format change that breaks old payloads fails here. Run with ``SLICER_REGEN_GOLDEN=1`` to
(re)write the files after a deliberate format change (and bump the format version).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from codec import bitstream
from codec.registry import available, decode_any, get_codec
from tests.codec.checker import (
    TORCH_DTYPES,
    check_tolerance,
    input_values,
    same_bits,
    tolerance_for,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codec"
REGENERATE = os.environ.get("SLICER_REGEN_GOLDEN") == "1"
MAX_FIXTURE_BYTES = 20_000


@dataclass(frozen=True)
class Golden:
    file: str
    config: dict[str, Any]
    shape: tuple[int, ...]
    seed: int
    dtype: str = "float32"
    spike: float | None = None  # one massive activation at [0, 3] (flat index 3 for 1-D)
    sparsity: float = 0.0

    def input(self) -> torch.Tensor:
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal(self.shape).astype(np.float32)
        if self.sparsity:
            x[rng.random(self.shape) < self.sparsity] = 0.0
        if self.spike is not None:
            x.reshape(x.shape[0] if x.ndim > 1 else 1, -1)[0, 3] = self.spike
        return torch.from_numpy(x).to(TORCH_DTYPES[self.dtype])


GOLDEN = [
    Golden("fp32_16x64.bin", {"id": "fp32"}, (16, 64), seed=100),
    Golden("fp16_16x64.bin", {"id": "fp16"}, (16, 64), seed=101),
    Golden("bf16_16x64_bfloat16.bin", {"id": "bf16"}, (16, 64), seed=102, dtype="bfloat16"),
    Golden("int8_16x64.bin", {"id": "int8"}, (16, 64), seed=103),
    Golden("blockwise8_16x64.bin", {"id": "blockwise8", "block_size": 64}, (16, 64), seed=104),
    Golden("zstd_16x64_sparse.bin", {"id": "zstd", "level": 3}, (16, 64), seed=105, sparsity=0.7),
    Golden("topk_16x64.bin", {"id": "topk", "keep": 0.25}, (16, 64), seed=106),
    Golden("slicer_token_1x576.bin", {"id": "slicer", "max_nmse": 0.01}, (1, 576), seed=107),
    Golden(
        "slicer_feature_map_8x4x4.bin",
        {"id": "slicer", "max_nmse": 1e-3, "blocks": 2, "keep": 0.5},
        (8, 4, 4),
        seed=108,
    ),
    Golden(
        "slicer_16x64_spike_float16.bin",
        {"id": "slicer", "max_nmse": 0.05, "keep_pos": 0.5, "keep_neg": 0.2, "blocks": 4},
        (16, 64),
        seed=109,
        dtype="float16",
        spike=2e4,
    ),
    Golden(
        "slicer_tensor_granularity_64.bin",
        {"id": "slicer", "max_nmse": 0.01, "granularity": "tensor"},
        (64,),
        seed=110,
    ),
    Golden("rans_16x64_sparse.bin", {"id": "rans", "bits": 8}, (16, 64), seed=111, sparsity=0.5),
    Golden("jpeg_4x16x16.bin", {"id": "jpeg", "quality": 90}, (4, 16, 16), seed=112),
    Golden("webp_4x16x16.bin", {"id": "jpeg", "quality": 90, "format": "webp"}, (4, 16, 16), 113),
    # decodes against the shipped profile smollm2-135m/16: a new profile must regenerate it
    Golden("slicer_llm_8x576.bin", {"id": "slicer-llm", "bits": 2.0}, (8, 576), seed=114),
    Golden("slicer_llm_2x3x4_float16.bin", {"id": "slicer-llm"}, (2, 3, 4), seed=115),
]


@pytest.mark.parametrize("case", GOLDEN, ids=lambda g: g.file)
def test_golden_payload(case: Golden) -> None:
    if case.config["id"] not in available():
        pytest.skip(f"codec {case.config['id']!r} is not registered")
    codec = get_codec(case.config)
    x = case.input()
    path = FIXTURES / case.file
    expected_path = path.with_suffix(".npy")
    if REGENERATE:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        payload = codec.encode(x)
        path.write_bytes(payload)
        np.save(expected_path, codec.decode(payload).to(torch.float32).numpy())
    assert path.exists(), f"{path} is missing; run with SLICER_REGEN_GOLDEN=1 to create it"
    stored = path.read_bytes()
    assert len(stored) < MAX_FIXTURE_BYTES

    header, _ = bitstream.unpack(stored)
    assert header.codec_num == codec.numeric_id
    assert header.shape == case.shape and header.dtype == case.dtype

    decoded = decode_any(stored)
    assert same_bits(codec.decode(stored), decoded)
    expected = torch.from_numpy(np.load(expected_path)).to(decoded.dtype)
    assert same_bits(decoded, expected), (
        f"{case.file}: the stored payload no longer decodes to the tensor it decoded to when "
        "it was written; old payloads must keep decoding"
    )
    values, _ = input_values(x)
    check_tolerance(values, decoded, tolerance_for(codec, x), case.file)


def test_every_fixture_is_in_the_table() -> None:
    known = {g.file for g in GOLDEN}
    stray = sorted(p.name for p in FIXTURES.glob("*.bin") if p.name not in known)
    stray += sorted(
        p.name for p in FIXTURES.glob("*.npy") if p.with_suffix(".bin").name not in known
    )
    assert not stray, f"fixtures without a GOLDEN entry: {stray}"


def test_golden_inputs_are_deterministic() -> None:
    for case in GOLDEN:
        assert same_bits(case.input(), case.input())
