"""slicer-llm on a tiny in-memory profile: round trips, streams, profile checks, bad configs."""

from __future__ import annotations

import numpy as np
import pytest

import codec
from codec import CodecError
from codec._llm_profile import Profile, register_profile
from codec.slicer_llm import SlicerLlm

WIDTH = 24


def _profile(name: str = "tiny/1", seed: int = 0) -> Profile:
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((WIDTH, WIDTH))
    basis /= np.linalg.norm(basis, axis=0)
    scale = np.geomspace(1.0, 1e-4, WIDTH)
    return Profile(
        name,
        mean=rng.standard_normal(WIDTH).astype(np.float32),
        first_mean=(100 * rng.standard_normal(WIDTH)).astype(np.float32),
        basis=basis.astype(np.float16),
        gain=np.ones(WIDTH, np.float32),
        scale=scale.astype(np.float32),
        first_scale=scale.astype(np.float32),
        pred_scale=(0.8 * scale).astype(np.float32),
        rho=np.full(WIDTH, 0.5, np.float32),
    )


def _rows(profile: Profile, rows: int, seed: int = 1) -> np.ndarray:
    """Rows drawn from the profile's own model (AR(1) coefficients, Laplace innovations)."""
    rng = np.random.default_rng(seed)
    z = np.zeros((rows, WIDTH))
    for t in range(rows):
        z[t] = (0.5 * z[t - 1] if t else 0) + rng.laplace(0, profile.pred_scale)
    x = profile.mean + z @ profile.synthesis.T
    x[0] = profile.first_mean + z[0] @ profile.synthesis.T
    return x.astype(np.float32)


@pytest.fixture(autouse=True)
def tiny() -> Profile:
    profile = _profile()
    register_profile(profile)
    return profile


def _codec(**extra: object) -> SlicerLlm:
    built = codec.get_codec({"id": "slicer-llm", "profile": "tiny/1", **extra})
    assert isinstance(built, SlicerLlm)
    return built


def _nmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(((x - y) ** 2).sum() / (x**2).sum())


@pytest.mark.parametrize("predict", [True, False])
def test_rows_round_trip_and_more_bits_mean_less_error(tiny: Profile, predict: bool) -> None:
    x = _rows(tiny, 40)
    errors, sizes = [], []
    for bits in (1.0, 4.0, 12.0):
        c = _codec(bits=bits, predict=predict)
        payload = c.encode(x)
        y = c.decode(payload).numpy()
        assert codec.decode_any(payload).numpy().tobytes() == y.tobytes()
        errors.append(_nmse(x, y))
        sizes.append(len(payload))
    assert errors[0] > errors[1] > errors[2]
    assert sizes[0] < sizes[1] < sizes[2]
    assert errors[2] < 1e-6  # the lossless limit: float16 basis, exact inverse


def test_stream_decodes_what_the_encoder_reconstructs(tiny: Profile) -> None:
    x = _rows(tiny, 30)
    c = _codec(bits=3.0)
    encoder = codec.open_encoder(c, x[:10])
    decoder = codec.open_decoder(c, encoder.setup)
    got = [decoder.decode(encoder.encode(x[t : t + 1])).numpy() for t in range(10, 30)]
    stacked = np.concatenate(got)
    assert _nmse(x[10:], stacked) < 0.05
    # a second decoder of the same frames gives the same values (state from decoded data only)
    again = codec.open_decoder(c, encoder.setup)
    encoder2 = codec.open_encoder(c, x[:10])
    frames = [encoder2.encode(x[t : t + 1]) for t in range(10, 30)]
    assert np.array_equal(np.concatenate([again.decode(f).numpy() for f in frames]), stacked)


def test_stream_at_many_bits_equals_the_input(tiny: Profile) -> None:
    x = _rows(tiny, 12)
    c = _codec(bits=14.0)
    encoder = codec.open_encoder(c, x[:4])
    decoder = codec.open_decoder(c, encoder.setup)
    for t in range(4, 12):
        y = decoder.decode(encoder.encode(x[t : t + 1])).numpy()
        np.testing.assert_allclose(y, x[t : t + 1], rtol=0, atol=1e-3)


def test_a_payload_of_another_profile_version_is_refused(tiny: Profile) -> None:
    x = _rows(tiny, 8)
    payload = _codec().encode(x)
    register_profile(_profile(seed=5))  # same name, other contents
    with pytest.raises(CodecError, match="another version of profile 'tiny/1'"):
        codec.decode_any(payload)


def test_a_stream_with_another_setting_is_refused(tiny: Profile) -> None:
    x = _rows(tiny, 8)
    encoder = codec.open_encoder(_codec(bits=2.0), x)
    with pytest.raises(CodecError, match="another profile, step or flags"):
        codec.open_decoder(_codec(bits=3.0), encoder.setup)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"bits": 0}, "slicer-llm.bits"),
        ({"bits": "two"}, "slicer-llm.bits"),
        ({"predict": "yes"}, "slicer-llm.predict"),
        ({"first_row": 1}, "slicer-llm.first_row"),
        ({"deadzone": 0.6}, "slicer-llm.deadzone"),
        ({"profile": "nope/3"}, "slicer-llm.profile"),
        ({"profile": 16}, "slicer-llm.profile"),
    ],
)
def test_bad_configs_name_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(CodecError, match=field.replace(".", r"\.")):
        codec.get_codec({"id": "slicer-llm", "profile": "tiny/1", **config})


def test_other_shapes_go_as_float16(tiny: Profile) -> None:
    x = np.linspace(-3, 3, 60, dtype=np.float32).reshape(3, 4, 5)
    y = _codec().decode(_codec().encode(x)).numpy()
    np.testing.assert_array_equal(y, x.astype(np.float16).astype(np.float32))


def test_corrupted_payloads_raise_codec_error(tiny: Profile) -> None:
    x = _rows(tiny, 16)
    c = _codec(bits=2.0)
    payload = c.encode(x)
    rng = np.random.default_rng(7)
    for _ in range(200):
        altered = bytearray(payload)
        altered[int(rng.integers(len(altered)))] ^= int(rng.integers(1, 256))
        with pytest.raises(CodecError):
            c.decode(bytes(altered))
    encoder = codec.open_encoder(c, x[:8])
    decoder = codec.open_decoder(c, encoder.setup)
    frame = encoder.encode(x[8:9])
    for cut in range(len(frame)):
        with pytest.raises(CodecError):
            decoder.decode(frame[:cut])


def test_a_config_round_trips_with_the_numbers_it_was_given() -> None:
    c = _codec(bits=2.5, deadzone=0.15)
    assert c.get_config()["deadzone"] == 0.15
    assert codec.get_codec(c.get_config()) == c
