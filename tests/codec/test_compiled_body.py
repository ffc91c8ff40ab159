"""The compiled SLICER body writer and reader (``codec._slicer_write``, ``codec._slicer_read``)
give exactly the bytes and values of the Python ones (``codec._slicer_stream``), and the
compiled rANS encoder (``codec._ans_code``) writes exactly constriction's words."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from codec import (
    _model_bank,
    _slicer_fused,
    _slicer_read,
    _slicer_stream,
    _slicer_write,
    bitstream,
    entropy,
)
from codec._slicer_plan import plan_rows, verify
from codec.registry import get_codec
from tests.codec import reference_kernels

CONFIGS: list[dict[str, Any]] = [
    {"id": "slicer", "max_nmse": 1e-3},
    {"id": "slicer", "max_nmse": 0.01, "keep": 0.3, "blocks": 2},
    {"id": "slicer", "max_nmse": 0.05, "granularity": "tensor"},
    {"id": "slicer", "max_nmse": 1e-5},  # rows stored verbatim
    {"id": "slicer", "max_nmse": 0.01, "blocks": 1, "keep": 0.9},
    {"id": "slicer", "max_nmse": 0.02, "blocks": 3, "keep": 0.5},
    {"id": "slicer", "max_nmse": 0.003, "blocks": 16, "keep": 0.05},
]


def _tensor(rng: np.random.Generator, case: int) -> np.ndarray:
    """Heavy-tailed rows, sometimes sparse, one-dimensional, wide or tiny."""
    n_rows, n = int(rng.integers(1, 9)), int(rng.choice([1, 7, 64, 576, 1500]))
    x = rng.standard_t(3, size=(n_rows, n)).astype(np.float32) * np.float32(rng.random() * 4)
    if case % 3 == 1:
        x[rng.random(x.shape) < 0.6] = 0
    if case % 5 == 2:
        x[0, 0] = 300.0  # a massive activation
    if case % 7 == 3:
        return x[0]
    return x


def _settings(seed: int) -> list[tuple[np.ndarray, float, Any, str]]:
    """(rows, budget, setting, granularity) of a dozen encodes."""
    rng = np.random.default_rng(seed)
    out = []
    for case in range(12):
        codec = get_codec(CONFIGS[(seed + case) % len(CONFIGS)])
        rows = codec._rows(_tensor(rng, case))
        assert codec.max_nmse is not None
        setting = codec._choose_setting(rows, codec.max_nmse, "float32")
        out.append((rows, codec.max_nmse, setting, codec.granularity))
    return out


def _plans(seed: int) -> list[tuple[np.ndarray, Any, str]]:
    out = []
    for rows, nmse, setting, granularity in _settings(seed):
        plan = plan_rows(rows, nmse, setting)
        verify(rows, plan, nmse, "float32")
        out.append((rows, plan, granularity))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_fused_encoder_gives_the_staged_bytes_or_hands_over(seed: int) -> None:
    handed_over = 0
    for rows, nmse, setting, granularity in _settings(seed):
        plan = plan_rows(rows, nmse, setting)
        verify(rows, plan, nmse, "float32")
        staged = _slicer_stream.write(rows, plan, granularity)
        fused = _slicer_fused.encode(rows, nmse, setting, granularity)
        if fused is None:
            handed_over += 1
            assert plan.mode.any()  # only rows stored verbatim hand over (all are small)
        else:
            assert fused == staged
    assert handed_over < 12


@pytest.mark.parametrize("seed", range(8))
def test_compiled_writer_gives_the_python_writers_bytes(seed: int) -> None:
    for rows, plan, granularity in _plans(seed):
        assert _slicer_write.write(rows, plan, granularity) == _slicer_stream.write(
            rows, plan, granularity
        )


@pytest.mark.parametrize("seed", range(8))
def test_compiled_reader_gives_the_python_readers_values(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for case in range(12):
        codec = get_codec(CONFIGS[(seed + case) % len(CONFIGS)])
        x = _tensor(rng, case)
        header, body = bitstream.unpack(codec.encode(x))
        want = _slicer_stream.read(body, header.shape)
        got = _slicer_read.read(body, header.shape)
        assert got.dtype == np.float32
        assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()


def test_compiled_reader_takes_payloads_without_verbatim_rows_itself() -> None:
    codec = get_codec(CONFIGS[0])
    x = np.random.default_rng(3).standard_normal((4, 576)).astype(np.float32)
    _header, body = bitstream.unpack(codec.encode(x))
    fixed, bank = _model_bank.fixed_models(), _model_bank.bank()
    tables = (bank.left, bank.buckets, bank.slot_of, fixed.probs, fixed.meta)
    data = np.frombuffer(body, dtype=np.uint8)
    _, ok = _slicer_read._read(
        data,
        x.size,
        4,
        tables,
        _slicer_read.cut_table(),
        _slicer_read.LEVELS_F32,
        _slicer_read._LEVELS,
    )
    assert ok


def _random_streams(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    streams = []
    for _ in range(int(rng.integers(1, 6))):
        alphabet = int(rng.choice([2, 3, 5, 16, 65, 300, 4096]))
        probs = rng.random(alphabet) ** 6
        if rng.random() < 0.2:  # one certain symbol: the state may stay 0
            probs[:] = 0
            probs[0] = 1
        p = entropy._normalise(probs)
        streams.append((rng.choice(alphabet, size=int(rng.integers(1, 700)), p=p), probs))
    return streams


@pytest.mark.parametrize("seed", range(5))
def test_compiled_rans_encoder_writes_constrictions_words(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        streams = _random_streams(rng)
        encoder = entropy.StreamEncoder()
        for symbols, probs in streams:
            encoder.add(symbols, probs)
        assert encoder.finish() == reference_kernels.constriction_words(streams)


def test_pairwise_sum_and_pack_factor_are_numpys() -> None:
    rng = np.random.default_rng(1)
    for n in [*range(1, 300), 1000, 1024, 2047, 2048, 3001, 4095, 4096]:
        a = rng.random(n) ** (1 + 5 * rng.random())
        assert _model_bank.pairwise_sum(a, 0, n) == a.sum()
    for alphabet in range(1, 4097):
        assert _model_bank.pack_factor(alphabet) == entropy.pack_factor(alphabet)


def test_bank_tables_equal_the_entropy_modules() -> None:
    """Fixed models built in their slot, and histogram models in the scratch slot, have the
    left cumulatives and buckets of ``entropy._decoder_model``."""
    bank, models = _model_bank.Bank(), _model_bank.fixed_models()
    for number in range(0, _model_bank.N_MODELS, 7):
        given = _model_bank._given(number)
        if given is None:
            continue
        slot = _model_bank.fixed_slot(
            bank.left, bank.buckets, bank.slot_of, models.probs, models.meta, number
        )
        left, buckets, _ = entropy._decoder_model(entropy._key(given))
        assert bank.left[slot, : left.size].tolist() == left.tolist()
        assert bank.buckets[slot].tolist() == buckets.tolist()
    rng = np.random.default_rng(2)
    for alphabet in (2, 3, 4, 16, 65, 256, 4096):
        counts = rng.integers(0, 50, size=alphabet) * (rng.random(alphabet) < 0.5)
        counts[0] += 1
        slot = _model_bank.histogram_slot(bank.left, bank.buckets, counts, counts.sum())
        left, buckets, _ = entropy._decoder_model(entropy._key(counts / counts.sum()))
        assert bank.left[slot, : left.size].tolist() == left.tolist()
        assert bank.buckets[slot].tolist() == buckets.tolist()


def test_a_full_bank_starts_again() -> None:
    bank, fixed = _model_bank.Bank(), _model_bank.fixed_models()
    numbers = [m for m in range(_model_bank.N_MODELS) if fixed.meta[m, 1]][: _model_bank.SLOTS + 5]
    for number in numbers:
        slot = _model_bank.fixed_slot(
            bank.left, bank.buckets, bank.slot_of, fixed.probs, fixed.meta, number
        )
        assert 0 <= slot < _model_bank.SLOTS - 1
    assert bank.slot_of[numbers[-1]] >= 0 and bank.slot_of[numbers[0]] == -1


@pytest.mark.parametrize("seed", range(4))
def test_stream_frames_are_the_python_paths_bytes(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SLICER stream's set-up and frames, compiled end to end, against the same stream with
    the fused encoder off and the Python writer and reader in place."""
    import codec as package
    from codec import slicer

    rng = np.random.default_rng(200 + seed)
    prefill = rng.standard_t(3, size=(16, 576)).astype(np.float32)
    steps = [rng.standard_t(3, size=(1, 576)).astype(np.float32) for _ in range(24)]
    codec = get_codec({"id": "slicer", "max_nmse": [1e-3, 1e-2, 1e-4, 3e-3][seed]})

    def frames() -> tuple[bytes, list[bytes], list[np.ndarray]]:
        encoder = package.open_encoder(codec, prefill)
        decoder = package.open_decoder(codec, encoder.setup)
        sent = [encoder.encode(step) for step in steps]
        return encoder.setup, sent, [decoder.decode(f).numpy() for f in sent]

    compiled = frames()
    monkeypatch.setattr(_slicer_fused, "encode", lambda *args: None)
    monkeypatch.setattr(slicer, "write", _slicer_stream.write)
    monkeypatch.setattr(slicer, "read", _slicer_stream.read)
    python = frames()
    assert compiled[:2] == python[:2]
    for got, want in zip(compiled[2], python[2], strict=True):
        assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()
