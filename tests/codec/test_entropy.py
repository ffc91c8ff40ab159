"""``codec.entropy`` (rANS streams, models, histograms) and ``codec.bitstream`` (container)."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from codec import bitstream, entropy
from codec.bitstream import Reader, write_section, write_varint
from codec.errors import CodecError
from codec.registry import decode_any, get_codec


def _recrc(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


# -- rANS streams ----------------------------------------------------------------------------------
def _draw(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)


def _streams(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(symbols, model) pairs over alphabets 2, 9, 65, 256 and 4096, with different models."""
    rng = np.random.default_rng(seed)
    hist65 = rng.integers(0, 50, 65).astype(np.float64)
    hist65[::7] = 0
    hist65[3] = 400
    streams = []
    for probs, n in (
        (entropy.bernoulli(0.1), 20_000),
        (entropy.bernoulli(0.5), 3_001),
        (entropy.geometric(-3.0, 9), 10_000),
        (hist65 / hist65.sum(), 8_000),
        (entropy.uniform(256), 4_000),
        (entropy.geometric(2.0, 256), 4_000),
        (entropy.geometric(-8.0, 4096), 6_000),
    ):
        streams.append((_draw(rng, probs, n), np.asarray(probs)))
    return streams


def _ideal_bytes(streams: list[tuple[np.ndarray, np.ndarray]]) -> float:
    total = 0.0
    for symbols, probs in streams:
        counts = np.bincount(symbols, minlength=len(probs))
        total += entropy.cost_bits(counts, probs)
    return total / 8


def test_streams_round_trip_in_order() -> None:
    streams = _streams()
    encoder = entropy.StreamEncoder()
    for symbols, probs in streams:
        encoder.add(symbols, probs)
    data = encoder.finish()
    assert len(data) % 4 == 0
    decoder = entropy.StreamDecoder(data)
    for symbols, probs in streams:
        decoded = decoder.take(probs, symbols.size)
        assert decoded.dtype == np.int64
        np.testing.assert_array_equal(decoded, symbols)
    decoder.finish()


@pytest.mark.parametrize("index", range(len(_streams())))
def test_each_stream_costs_at_most_one_percent_over_ideal(index: int) -> None:
    symbols, probs = _streams(seed=1)[index]
    encoder = entropy.StreamEncoder()
    encoder.add(symbols, probs)
    data = encoder.finish()
    ideal = _ideal_bytes([(symbols, probs)])
    assert len(data) <= 1.01 * ideal + 8, (len(data), ideal)
    decoder = entropy.StreamDecoder(data)
    np.testing.assert_array_equal(decoder.take(probs, symbols.size), symbols)
    decoder.finish()


def test_shared_stack_costs_at_most_one_percent_over_ideal() -> None:
    streams = _streams(seed=2)
    encoder = entropy.StreamEncoder()
    for symbols, probs in streams:
        encoder.add(symbols, probs)
    ideal = _ideal_bytes(streams)
    size = len(encoder.finish())
    assert size <= 1.01 * ideal + 8, (size, ideal)
    # and the model cost is never below the empirical entropy (the i.i.d. limit)
    assert encoder.empirical_bits() / 8 <= ideal + 1e-6


def test_rare_symbols_and_odd_lengths_round_trip() -> None:
    """Symbols a model gives (nearly) no probability, and lengths not a multiple of the packing."""
    probs = entropy.bernoulli(1e-6)
    symbols = np.zeros(1_001, dtype=np.int64)
    symbols[[0, 500, 1_000]] = 1
    skewed = np.array([0.999] + [0.001 / 63] * 63)
    rare = np.array([63, 0, 0, 17, 0], dtype=np.int64)
    encoder = entropy.StreamEncoder()
    encoder.add(symbols, probs)
    encoder.add(rare, skewed)
    encoder.add(np.zeros(0, dtype=np.int64), entropy.uniform(9))  # empty: ignored
    decoder = entropy.StreamDecoder(encoder.finish())
    np.testing.assert_array_equal(decoder.take(probs, symbols.size), symbols)
    assert decoder.take(entropy.uniform(9), 0).size == 0
    np.testing.assert_array_equal(decoder.take(skewed, rare.size), rare)
    decoder.finish()


def test_empty_encoder() -> None:
    data = entropy.StreamEncoder().finish()
    decoder = entropy.StreamDecoder(data)
    decoder.finish()


@pytest.mark.parametrize(
    ("alphabet", "factor"),
    [
        (0, 1),
        (1, 1),
        (2, 12),
        (3, 7),
        (4, 6),
        (8, 4),
        (9, 3),
        (16, 3),
        (64, 2),
        (65, 1),
        (256, 1),
        (4096, 1),
        (5000, 1),
    ],
)
def test_pack_factor(alphabet: int, factor: int) -> None:
    assert entropy.pack_factor(alphabet) == factor
    if alphabet > 1:
        assert alphabet**factor <= entropy.SUPER_ALPHABET or factor == 1
        assert alphabet ** (factor + 1) > entropy.SUPER_ALPHABET


def test_models_are_distributions() -> None:
    for probs in (
        entropy.bernoulli(0.3),
        entropy.bernoulli(0.0),
        entropy.bernoulli(1.0),
        entropy.geometric(-5.0, 17),
        entropy.geometric(5.0, 17),
        entropy.geometric(0.0, 4),
        entropy.uniform(7),
    ):
        assert (probs > 0).all() and math.isclose(float(probs.sum()), 1.0)
    decaying = entropy.geometric(-5.0, 17)
    assert (np.diff(decaying) < 0).all()
    np.testing.assert_allclose(entropy.geometric(0.0, 4), entropy.uniform(4))


def test_entropy_bits_and_cost_bits() -> None:
    symbols = np.array([0, 0, 1, 1], dtype=np.int64)
    assert entropy.entropy_bits(symbols, 2) == pytest.approx(4.0)
    assert entropy.entropy_bits(np.zeros(0, np.int64), 2) == 0.0
    assert entropy.cost_bits(np.array([2, 2]), entropy.uniform(2)) == pytest.approx(4.0)


def _encoded(index: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    symbols, probs = _streams(seed=3)[index]
    encoder = entropy.StreamEncoder()
    encoder.add(symbols, probs)
    return symbols, probs, encoder.finish()


def _decodes_cleanly(data: bytes, probs: np.ndarray, count: int) -> bool:
    """Whether a (damaged) section decodes ``count`` symbols and passes ``finish``."""
    try:
        decoder = entropy.StreamDecoder(data)
        decoder.take(probs, count)
        decoder.finish()
    except CodecError:
        return False
    return True


@pytest.mark.parametrize("index", range(len(_streams())))
def test_rans_section_cut_inside_a_word_raises(index: int) -> None:
    _, _, data = _encoded(index)
    for cut in (1, 2, 3, 5, 6, 7, len(data) - 1, len(data) - 3):
        for truncated in (data[:-cut], data[cut:]):
            with pytest.raises(CodecError, match="multiple of 4"):
                entropy.StreamDecoder(truncated)


# A rANS stack that runs out of words keeps decoding from its initial state, so a section cut
# by whole words is not always detected here: the container's CRC32 is the integrity check
# (tests/codec/test_fuzz.py), and counts are bounded by the declared shape.


def test_most_truncations_of_skewed_streams_raise() -> None:
    """What the stack check catches on its own: every non-empty truncation of a skewed
    binary stream."""
    symbols, probs, data = _encoded(0)
    for cut in range(4, len(data), 4):
        assert not _decodes_cleanly(data[:-cut], probs, symbols.size), cut


def test_extra_rans_data_raises() -> None:
    symbols, probs = _streams()[2]
    encoder = entropy.StreamEncoder()
    encoder.add(symbols, probs)
    data = encoder.finish()
    decoder = entropy.StreamDecoder(data)
    decoder.take(probs, symbols.size - 30)  # the stream holds more than is taken
    with pytest.raises(CodecError, match="more data"):
        decoder.finish()


# -- histograms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("alphabet", [1, 2, 9, 65, 256, 4096])
def test_histogram_round_trip(alphabet: int) -> None:
    rng = np.random.default_rng(alphabet)
    counts = rng.integers(0, 1000, alphabet).astype(np.float64)
    counts[rng.random(alphabet) < 0.6] = 0
    counts[-1] = 2**40  # the largest count the reader accepts
    out = bytearray(b"\x99")
    entropy.write_histogram(out, counts)
    assert len(out) - 1 == entropy.histogram_size_bytes(counts)
    reader = Reader(bytes(out))
    assert reader.u8() == 0x99
    np.testing.assert_array_equal(entropy.read_histogram(reader, alphabet), counts)
    reader.done()


def test_empty_histogram_round_trip() -> None:
    out = bytearray()
    entropy.write_histogram(out, np.zeros(5))
    assert bytes(out) == b"\x00"
    np.testing.assert_array_equal(entropy.read_histogram(Reader(bytes(out)), 5), np.zeros(5))


def _histogram_bytes(*values: int) -> bytes:
    out = bytearray()
    for v in values:
        write_varint(out, v)
    return bytes(out)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_histogram_bytes(1, 9, 5), "limit"),  # a gap past the alphabet of 8
        (_histogram_bytes(2, 3, 1, 4, 1), "outside alphabet"),  # symbols 3 then 8
        (_histogram_bytes(9), "limit"),  # 9 used symbols of 8
        (_histogram_bytes(1, 0, 2**41), "limit"),  # count too large
        (_histogram_bytes(2, 0, 1), "truncated"),
        (b"", "truncated"),
    ],
)
def test_bad_histograms_raise(data: bytes, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        entropy.read_histogram(Reader(data), 8)


# -- bitstream: varints and the Reader -------------------------------------------------------------
VARINTS = [0, 1, 127, 128, 255, 300, 16_383, 16_384, 2**21, 2**32 - 1, 2**32, 2**56, 2**63 - 1]


def test_varint_round_trip() -> None:
    out = bytearray()
    for v in VARINTS:
        write_varint(out, v)
    reader = Reader(bytes(out))
    assert [reader.varint() for _ in VARINTS] == VARINTS
    reader.done()


@pytest.mark.parametrize(("value", "size"), [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3)])
def test_varint_sizes(value: int, size: int) -> None:
    out = bytearray()
    write_varint(out, value)
    assert len(out) == size


def test_varint_errors() -> None:
    with pytest.raises(CodecError, match="varint"):
        write_varint(bytearray(), -1)
    out = bytearray()
    write_varint(out, 1_000)
    with pytest.raises(CodecError, match="limit"):
        Reader(bytes(out)).varint(limit=999)
    assert Reader(bytes(out)).varint(limit=1_000) == 1_000
    with pytest.raises(CodecError, match="longer than 10 bytes"):
        Reader(b"\x80" * 11 + b"\x00").varint()
    with pytest.raises(CodecError, match="truncated"):
        Reader(b"\x80\x80").varint()
    big = bytearray()
    write_varint(big, 2**64 - 1)
    with pytest.raises(CodecError, match="limit"):
        Reader(bytes(big)).varint()


def test_reader_bounds() -> None:
    reader = Reader(b"\x01\x02\x03\x04\x05", "test data")
    assert reader.u8() == 1 and reader.remaining == 4
    with pytest.raises(CodecError, match="test data is truncated"):
        reader.take(5)
    with pytest.raises(CodecError, match="truncated"):
        reader.take(-1)
    with pytest.raises(CodecError, match="truncated"):
        reader.array("<f4", 2)
    with pytest.raises(CodecError, match="truncated"):
        reader.array("<f2", -1)
    np.testing.assert_array_equal(reader.array("u1", 2), [2, 3])
    with pytest.raises(CodecError, match="truncated"):
        reader.f32()
    with pytest.raises(CodecError, match="trailing"):
        reader.done()
    assert reader.f16() == float(np.frombuffer(b"\x04\x05", "<f2")[0])
    reader.done()
    with pytest.raises(CodecError, match="truncated"):
        reader.u8()


def test_reader_sections() -> None:
    out = bytearray()
    write_section(out, b"abc")
    write_section(out, b"")
    reader = Reader(bytes(out))
    assert reader.section() == b"abc" and reader.section() == b""
    reader.done()
    with pytest.raises(CodecError):
        Reader(b"\x05abc").section()  # declares 5 bytes, has 3


def test_reader_f32() -> None:
    assert Reader(struct.pack("<f", 1.5)).f32() == 1.5


# -- bitstream: the container ----------------------------------------------------------------------
def test_pack_unpack_round_trip() -> None:
    for dtype in bitstream.DTYPES:
        for shape in [(), (0,), (576,), (3, 0, 5), (2, 3, 4, 5)]:
            payload = bitstream.pack(7, dtype, shape, b"body")
            header, body = bitstream.unpack(payload)
            assert (header.codec_num, header.dtype, header.shape) == (7, dtype, shape)
            assert header.numel == math.prod(shape)
            assert bytes(body) == b"body"
            assert bitstream.unpack(bytearray(payload))[0] == header
            assert bitstream.unpack(memoryview(payload))[0] == header


def test_container_overhead_of_a_token() -> None:
    assert len(bitstream.pack(10, "float32", (576,), b"")) == 10


def test_crc_mismatch() -> None:
    payload = bytearray(get_codec("fp16").encode(np.ones((2, 3), np.float32)))
    payload[8] ^= 0x10
    with pytest.raises(CodecError, match="CRC32"):
        bitstream.unpack(bytes(payload))
    with pytest.raises(CodecError, match="CRC32"):
        decode_any(bytes(payload))


def test_wrong_magic() -> None:
    payload = bytearray(bitstream.pack(1, "float32", (1,), b"\x00" * 4))
    payload[0] = 0xA6
    with pytest.raises(CodecError, match="not a slicer-fleet payload"):
        bitstream.unpack(_recrc(bytes(payload)))


@pytest.mark.parametrize("version", [0, 2, 15])
def test_wrong_version(version: int) -> None:
    payload = bytearray(bitstream.pack(1, "float32", (1,), b"\x00" * 4))
    payload[1] = (version << 4) | (payload[1] & 0x0F)
    with pytest.raises(CodecError, match=f"version {version}"):
        decode_any(_recrc(bytes(payload)))


@pytest.mark.parametrize("code", [3, 7, 15])
def test_unknown_dtype_code(code: int) -> None:
    payload = bytearray(bitstream.pack(1, "float32", (1,), b"\x00" * 4))
    payload[1] = (bitstream.FORMAT_VERSION << 4) | code
    with pytest.raises(CodecError, match="dtype code"):
        bitstream.unpack(_recrc(bytes(payload)))


@pytest.mark.parametrize(
    "shape",
    [
        (bitstream.MAX_ELEMENTS + 1,),
        (2**14, 2**14),  # each dimension fine, the product too large
        (2**9, 2**9, 2**9, 2),
        (2**40,),
    ],
)
def test_declared_size_over_max_elements(shape: tuple[int, ...]) -> None:
    with pytest.raises(CodecError, match="limit"):
        bitstream.unpack(bitstream.pack(1, "float32", shape, b""))


def test_max_elements_is_adjustable(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = get_codec("fp32").encode(np.ones((4, 4), np.float32))
    monkeypatch.setattr(bitstream, "MAX_ELEMENTS", 15)
    with pytest.raises(CodecError, match="limit"):
        decode_any(payload)
    monkeypatch.setattr(bitstream, "MAX_ELEMENTS", 16)
    assert decode_any(payload).shape == (4, 4)


def test_too_many_dimensions() -> None:
    with pytest.raises(CodecError, match="limit"):
        bitstream.unpack(bitstream.pack(1, "float32", (1,) * (bitstream.MAX_NDIM + 1), b""))
    header, _ = bitstream.unpack(bitstream.pack(1, "float32", (1,) * bitstream.MAX_NDIM, b""))
    assert len(header.shape) == bitstream.MAX_NDIM


@pytest.mark.parametrize("data", [b"", b"\xa7", b"\xa7\x10\x01\x00\x00\x00\x00"])
def test_short_payloads(data: bytes) -> None:
    with pytest.raises(CodecError, match="truncated"):
        bitstream.unpack(data)


@pytest.mark.parametrize("data", ["text", None, 5, [0xA7]])
def test_non_bytes_payloads(data: object) -> None:
    with pytest.raises(CodecError, match="bytes"):
        bitstream.unpack(data)  # type: ignore[arg-type]


def test_header_truncated_inside_the_shape() -> None:
    # ndim 3 but only one dimension before the CRC
    raw = bytes((bitstream.MAGIC, bitstream.FORMAT_VERSION << 4, 1, 3, 5)) + b"\x00" * 4
    with pytest.raises(CodecError, match="truncated"):
        bitstream.unpack(_recrc(raw))


def test_compiled_histogram_parse_equals_the_python_parse() -> None:
    rng = np.random.default_rng(7)
    for alphabet in (2, 9, 64, 4096):
        counts = rng.integers(0, 3, alphabet) * rng.integers(0, 2**35, alphabet)
        out = bytearray(b"\x05")
        entropy.write_histogram(out, counts)
        out += b"\x07"
        fast, slow = Reader(bytes(out)), Reader(bytes(out))
        fast.pos = slow.pos = 1
        got = entropy.read_histogram(fast, alphabet)
        want = entropy._read_histogram_slow(slow, alphabet)
        assert got.tolist() == want.tolist() == counts.astype(np.float64).tolist()
        assert fast.pos == slow.pos == len(out) - 1
        for cut in range(1, min(len(out) - 1, 40)):  # truncated: the Python error, not a result
            with pytest.raises(CodecError):
                entropy.read_histogram(Reader(bytes(out[1:cut])), alphabet)
