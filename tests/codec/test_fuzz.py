"""Fuzzing the decoders: hostile bytes must end in ``CodecError`` (or a well-formed tensor).

Two kinds of cases:

* raw mutations of valid payloads (random bytes, truncations, bit flips, insertions): almost all
  die at the container's CRC check, cheaply;
* mutations *past* the CRC: the body or the header (shape, dtype, codec number, huge declared
  sizes) is changed and the container is re-packed with a valid CRC by ``bitstream.pack`` (or
  re-checksummed by hand for headers ``pack`` cannot write), so the codecs' own body parsers see
  the hostile bytes.

Every decode runs under a per-call time limit (SIGALRM where available, and a measured wall
time) so that a hang fails visibly. The default run does ~20k cases; ``-m slow`` runs 125k.
"""

from __future__ import annotations

import signal
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from codec import bitstream
from codec.errors import CodecError
from codec.registry import available, decode_any, get_codec

TIME_LIMIT_S = 2.0
#: Declared sizes of mutated shapes stay below this many elements (far below MAX_ELEMENTS) so
#: that decoding a tiny body that declares a big tensor stays cheap; sizes above MAX_ELEMENTS
#: are fuzzed too and must be refused by the container.
DECLARED_CAP = 2**16

SEED_CONFIGS: list[dict[str, Any]] = [{"id": cid} for cid in available()] + [
    c
    for c in (
        {"id": "slicer", "blocks": 1, "max_nmse": 1e-3},
        {"id": "slicer", "granularity": "tensor", "keep": 0.3},
        {"id": "slicer", "keep_pos": 0.7, "keep_neg": 0.2, "blocks": 4},
        {"id": "rans", "bits": 4},
        {"id": "rans", "bits": 13},
        {"id": "jpeg", "format": "webp"},
        {"id": "blockwise8", "block_size": 16},
        {"id": "topk", "keep": 0.5},
        {"id": "slicer-llm", "bits": 1.0, "predict": False},
    )
    if c["id"] in available()
]


def _seed_inputs() -> list[torch.Tensor]:
    rng = np.random.default_rng(1234)
    sparse = rng.standard_normal((6, 40)).astype(np.float32)
    sparse[rng.random(sparse.shape) < 0.5] = 0
    return [
        torch.from_numpy(sparse),
        torch.from_numpy(rng.standard_normal(37).astype(np.float32)),
        torch.from_numpy(rng.standard_normal((3, 4, 5)).astype(np.float32) * 100),
        torch.tensor(2.5),
        torch.zeros(4, 4),
        torch.full((2, 9), -1.25),
        torch.from_numpy(rng.standard_normal((5, 8)).astype(np.float32)).half(),
        torch.from_numpy(rng.standard_normal((5, 8)).astype(np.float32)).bfloat16(),
        torch.zeros(0),
    ]


@dataclass
class Corpus:
    payloads: list[bytes]
    decoders: list[tuple[str, Callable[[bytes], torch.Tensor]]]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    payloads = []
    for config in SEED_CONFIGS:
        codec = get_codec(config)
        for x in _seed_inputs():
            try:
                payloads.append(codec.encode(x))
            except (CodecError, IndexError, ValueError):  # slicer refuses empty tensors (a bug)
                assert x.numel() == 0 and config["id"] == "slicer"
    decoders: list[tuple[str, Callable[[bytes], torch.Tensor]]] = [("decode_any", decode_any)]
    decoders += [(cid, get_codec(cid).decode) for cid in available()]
    return Corpus(payloads, decoders)


# -- running one case ------------------------------------------------------------------------------
class DecodeTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that no ``except Exception`` swallows it."""


@contextmanager
def alarm_handler() -> Iterator[bool]:
    """Install a SIGALRM handler for the duration (main thread on POSIX only)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield False
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise DecodeTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    cases: int = 0
    refused: int = 0
    decoded: int = 0
    non_finite: dict[str, int] = field(default_factory=dict)
    caught_by_base: dict[str, int] = field(default_factory=dict)  # see run_case
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0


def run_case(
    outcome: Outcome,
    decoder: tuple[str, Callable[[bytes], torch.Tensor]],
    payload: bytes,
    alarm: bool,
) -> None:
    name, decode = decoder
    outcome.cases += 1
    result: torch.Tensor | None = None
    start = time.perf_counter()
    try:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
        try:
            result = decode(payload)
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except CodecError as exc:
        outcome.refused += 1
        if "malformed payload body" in str(exc):
            # another exception the codec's own checks missed, converted by Codec.decode
            key = str(exc).split(":")[0]
            outcome.caught_by_base[key] = outcome.caught_by_base.get(key, 0) + 1
    except DecodeTimeout:
        outcome.failures.append(f"{name}: decode hung (> {TIME_LIMIT_S} s): {payload.hex()}")
    except Exception as exc:
        outcome.failures.append(f"{name}: {type(exc).__name__}: {exc}: {payload.hex()}")
    elapsed = time.perf_counter() - start
    outcome.slowest = max(outcome.slowest, elapsed)
    if elapsed > TIME_LIMIT_S:
        outcome.failures.append(f"{name}: decode took {elapsed:.2f} s: {payload.hex()}")
    if result is None:
        return
    outcome.decoded += 1
    header, _ = bitstream.unpack(payload)
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if not isinstance(result, torch.Tensor) or result.shape != torch.Size(header.shape):
        outcome.failures.append(f"{name}: decoded {result!r} for shape {header.shape}")
    elif result.dtype != dtypes[header.dtype]:
        outcome.failures.append(f"{name}: decoded {result.dtype} for {header.dtype}")
    elif result.numel() and not torch.isfinite(result).all():
        key = f"codec number {header.codec_num}"
        outcome.non_finite[key] = outcome.non_finite.get(key, 0) + 1


# -- mutations -------------------------------------------------------------------------------------
def recrc(data: bytes) -> bytes:
    """Replace the trailing CRC32 with a valid one."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def raw_mutation(rng: np.random.Generator, payloads: list[bytes]) -> bytes:
    """A payload mangled without regard for its CRC."""
    p = bytearray(payloads[rng.integers(len(payloads))])
    op = rng.integers(8)
    if op == 0:  # random bytes, often with a valid magic byte
        p = bytearray(rng.integers(0, 256, rng.integers(0, 80), dtype=np.uint8).tobytes())
        if p and rng.random() < 0.5:
            p[0] = bitstream.MAGIC
    elif op == 1:  # truncation
        p = p[: rng.integers(len(p))]
    elif op == 2:  # bit flips
        for _ in range(rng.integers(1, 5)):
            j = rng.integers(len(p))
            p[j] ^= 1 << rng.integers(8)
    elif op == 3:  # overwritten bytes
        for _ in range(rng.integers(1, 4)):
            p[rng.integers(len(p))] = rng.integers(256)
    elif op == 4:  # inserted byte
        p.insert(int(rng.integers(len(p) + 1)), int(rng.integers(256)))
    elif op == 5:  # deleted byte
        del p[rng.integers(len(p))]
    elif op == 6:  # two payloads glued, or a payload with a tail
        p += payloads[rng.integers(len(payloads))][: rng.integers(1, 64)]
    else:  # a random prefix cut off
        p = p[rng.integers(1, len(p)) :]
    return bytes(p)


def _mutate_body(rng: np.random.Generator, body: bytearray, payloads: list[bytes]) -> bytearray:
    op = rng.integers(9)
    if op == 0 and body:
        for _ in range(rng.integers(1, 9)):
            j = int(rng.integers(len(body)))
            body[j] ^= 1 << int(rng.integers(8))
    elif op == 1 and body:
        for _ in range(rng.integers(1, 4)):
            special = int(rng.choice(np.array([0, 1, 0x7F, 0x80, 0xFF])))
            body[rng.integers(len(body))] = (
                special if rng.random() < 0.7 else int(rng.integers(256))
            )
    elif op == 2:
        body = body[: rng.integers(len(body) + 1)]
    elif op == 3:
        body += rng.integers(0, 256, rng.integers(1, 16), dtype=np.uint8).tobytes()
    elif op == 4:
        body = bytearray(rng.integers(0, 256, len(body), dtype=np.uint8).tobytes())
    elif op == 5:  # the body of another payload
        _, other = bitstream.unpack(payloads[rng.integers(len(payloads))])
        body = bytearray(other)
    elif op == 6 and body:  # a zeroed or 0xFF-filled run
        j = int(rng.integers(len(body)))
        k = min(len(body), j + int(rng.integers(1, 9)))
        body[j:k] = bytes([int(rng.choice([0, 0xFF]))]) * (k - j)
    elif op == 7 and len(body) > 1:  # two bytes swapped
        i, j = (int(v) for v in rng.integers(len(body), size=2))
        body[i], body[j] = body[j], body[i]
    elif op == 8 and body:  # a byte inserted or deleted in the middle
        j = int(rng.integers(len(body)))
        if rng.random() < 0.5:
            del body[j]
        else:
            body.insert(j, int(rng.integers(256)))
    return body


def _mutate_shape(rng: np.random.Generator, shape: list[int]) -> list[int]:
    op = rng.integers(6)
    if op == 0 and shape:
        k = rng.integers(len(shape))
        shape[k] = max(0, shape[k] + int(rng.choice([-2, -1, 1, 2])))
    elif op == 1:
        shape = [int(d) for d in rng.integers(0, 12, rng.integers(0, 5))]
    elif op == 2 and shape:
        k = rng.integers(len(shape))
        shape[k] = int(rng.choice([0, 1, 2**8, 2**12, 2**16]))
    elif op == 3:
        shape = shape[::-1] if rng.random() < 0.5 else [*shape, 1]
    elif op == 4 and shape:
        shape = shape[1:]
    else:
        shape = [int(np.prod(shape))]
    while int(np.prod(shape)) > DECLARED_CAP:
        shape = [max(1, d // 4) for d in shape]
    return shape


def past_crc_mutation(rng: np.random.Generator, payloads: list[bytes]) -> bytes:
    """A payload whose body or header is mangled and re-packed with a valid CRC."""
    header, view = bitstream.unpack(payloads[rng.integers(len(payloads))])
    body = bytearray(view)
    shape, dtype, number = list(header.shape), header.dtype, header.codec_num
    op = rng.integers(10)
    if op < 5:
        body = _mutate_body(rng, body, payloads)
    elif op < 7:
        shape = _mutate_shape(rng, shape)
        if rng.random() < 0.5:
            body = _mutate_body(rng, body, payloads)
    elif op == 7:
        dtype = bitstream.DTYPES[rng.integers(len(bitstream.DTYPES))]
    elif op == 8:  # another codec's decoder on this body (or an unknown number)
        number = int(rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 200, 255]))
    else:
        return raw_header(rng, bytes(body))
    return bitstream.pack(number, dtype, tuple(shape), bytes(body))


def raw_header(rng: np.random.Generator, body: bytes) -> bytes:
    """Headers ``pack`` would not write (bad version or dtype code, too many dimensions, huge
    or overlong sizes), with a valid CRC."""
    version, dtype_code = bitstream.FORMAT_VERSION, int(rng.integers(3))
    shape: list[int] = [int(d) for d in rng.integers(0, 5, rng.integers(0, 3))]
    op = rng.integers(5)
    if op == 0:
        version = int(rng.choice([0, 2, 15]))
    elif op == 1:
        dtype_code = int(rng.integers(3, 16))
    elif op == 2:
        shape = [1] * int(rng.integers(bitstream.MAX_NDIM + 1, 60))
    elif op == 3:  # declared sizes beyond MAX_ELEMENTS, per dimension or in product
        big = bitstream.MAX_ELEMENTS
        shape = [int(rng.choice([big + 1, 2**40, 2**63])), 1] if rng.random() < 0.5 else [big, 4]
    out = bytearray((bitstream.MAGIC, (version << 4) | dtype_code, int(rng.integers(1, 11))))
    if op == 4:  # an overlong varint for ndim
        out += b"\x80" * int(rng.integers(9, 12)) + b"\x01"
    else:
        bitstream.write_varint(out, len(shape))
        for dim in shape:
            bitstream.write_varint(out, dim)
    return recrc(bytes(out + body + b"\x00\x00\x00\x00"))


# -- the fuzz runs ---------------------------------------------------------------------------------
def fuzz(corpus: Corpus, n_raw: int, n_past_crc: int, seed: int) -> Outcome:
    rng = np.random.default_rng(seed)
    outcome = Outcome()
    with alarm_handler() as alarm, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_raw):
            payload = raw_mutation(rng, corpus.payloads)
            run_case(outcome, corpus.decoders[rng.integers(len(corpus.decoders))], payload, alarm)
        for i in range(n_past_crc):
            payload = past_crc_mutation(rng, corpus.payloads)
            # dispatch by the codec number, and every tenth case also a fixed codec's decoder
            run_case(outcome, corpus.decoders[0], payload, alarm)
            if i % 10 == 0:
                decoder = corpus.decoders[1 + rng.integers(len(corpus.decoders) - 1)]
                run_case(outcome, decoder, payload, alarm)
    return outcome


def report(outcome: Outcome) -> str:
    lines = [
        f"{outcome.cases} cases: {outcome.refused} refused with CodecError, {outcome.decoded} "
        f"decoded; slowest {outcome.slowest:.3f} s; non-finite outputs {outcome.non_finite}; "
        f"errors only caught by Codec.decode's catch-all {outcome.caught_by_base}",
        f"{len(outcome.failures)} failures (first 10):",
        *outcome.failures[:10],
    ]
    return "\n".join(lines)


def test_corpus_covers_every_codec(corpus: Corpus) -> None:
    numbers = {bitstream.unpack(p)[0].codec_num for p in corpus.payloads}
    assert numbers == {get_codec(cid).numeric_id for cid in available()}


def test_fuzz_decoders(corpus: Corpus) -> None:
    outcome = fuzz(corpus, n_raw=100_000, n_past_crc=25_000, seed=0)
    print(report(outcome))
    assert outcome.cases >= 125_000
    assert not outcome.failures, report(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_decoders_long(corpus: Corpus, seed: int) -> None:
    outcome = fuzz(corpus, n_raw=100_000, n_past_crc=100_000, seed=seed)
    print(report(outcome))
    assert outcome.cases >= 200_000
    assert not outcome.failures, report(outcome)


def test_past_crc_mutations_reach_the_codecs(corpus: Corpus) -> None:
    """Re-packed payloads pass the container check, so the codec parsers really see them."""
    rng = np.random.default_rng(7)
    opened = 0
    for _ in range(500):
        try:
            bitstream.unpack(past_crc_mutation(rng, corpus.payloads))
            opened += 1
        except CodecError:
            pass
    assert opened > 400


def test_huge_declared_sizes_are_refused_by_the_container() -> None:
    body = b"\x00" * 8
    for shape in [(bitstream.MAX_ELEMENTS + 1,), (2**20, 2**20), (2**14, 2**14, 2**14)]:
        payload = bitstream.pack(1, "float32", shape, body)
        with pytest.raises(CodecError, match="limit"):
            decode_any(payload)
    raw = bytearray((bitstream.MAGIC, bitstream.FORMAT_VERSION << 4, 1, 1))
    bitstream.write_varint(raw, 2**63)
    with pytest.raises(CodecError, match="limit"):
        decode_any(recrc(bytes(raw + body + b"\x00" * 4)))


@pytest.mark.parametrize("cid", available())
def test_every_truncation_and_single_bit_flip(cid: str) -> None:
    """Exhaustive on one small payload per codec: every prefix, every single bit flip, and
    every single bit flip of the body re-packed with a valid CRC."""
    codec = get_codec(cid)
    rng = np.random.default_rng(3)
    payload = codec.encode(torch.from_numpy(rng.standard_normal((3, 16)).astype(np.float32)))
    header, view = bitstream.unpack(payload)
    body = bytes(view)
    outcome = Outcome()
    decoder = (cid, codec.decode)
    with alarm_handler() as alarm, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for cut in range(len(payload)):
            run_case(outcome, decoder, payload[:cut], alarm)
        for bit in range(8 * len(payload)):
            flipped = bytearray(payload)
            flipped[bit // 8] ^= 1 << (bit % 8)
            run_case(outcome, decoder, bytes(flipped), alarm)
        for bit in range(8 * len(body)):
            flipped = bytearray(body)
            flipped[bit // 8] ^= 1 << (bit % 8)
            packed = bitstream.pack(header.codec_num, header.dtype, header.shape, bytes(flipped))
            run_case(outcome, decoder, packed, alarm)
    assert outcome.refused >= len(payload) * 9  # every truncation and raw flip is refused
    assert not outcome.failures, report(outcome)


def test_zstd_frame_declaring_a_huge_size_is_refused_before_decompression() -> None:
    """A ~1 KB zstd frame of zeros declaring 32 MB: python-zstandard allocates the declared size
    whatever ``max_output_size`` says, so the decoder must check the frame header first (a
    30 KB payload for a [4, 4] tensor used to make it allocate and fill 1 GB)."""
    if "zstd" not in available():
        pytest.skip("zstd is not registered")
    import zstandard

    frame = zstandard.ZstdCompressor(level=1).compress(b"\x00" * 2**25)
    assert zstandard.frame_content_size(frame) == 2**25 and len(frame) < 4_000
    payload = bitstream.pack(get_codec("zstd").numeric_id, "float32", (4, 4), frame)
    start = time.perf_counter()
    with pytest.raises(CodecError, match="frame size"):
        decode_any(payload)
    assert time.perf_counter() - start < 0.5
