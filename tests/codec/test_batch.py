"""``decode_batch`` gives, in order, exactly what decoding each payload alone gives, on one
thread and on several, and names the first bad payload."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec import CodecError, decode_any, get_codec
from codec.batch import decode_batch


def _payloads() -> list[bytes]:
    rng = np.random.default_rng(3)
    configs = [{"id": "slicer", "max_nmse": 0.01}, {"id": "fp16"}, {"id": "blockwise8"}]
    out = []
    for i in range(13):
        x = torch.from_numpy(rng.standard_normal((1 + i % 5, 40)).astype(np.float32))
        out.append(get_codec(configs[i % 3]).encode(x))
    return out


@pytest.mark.parametrize("threads", [1, 2, 3, 64, None])
def test_batch_equals_one_by_one_in_order(threads: int | None) -> None:
    payloads = _payloads()
    got = decode_batch(payloads, threads=threads)
    assert len(got) == len(payloads)
    for payload, tensor in zip(payloads, got, strict=True):
        assert torch.equal(tensor, decode_any(payload))


def test_batch_with_one_codec_and_empty_batch() -> None:
    codec = get_codec({"id": "slicer", "max_nmse": 0.01})
    payloads = [codec.encode(torch.randn(3, 16)) for _ in range(5)]
    got = decode_batch(payloads, codec, threads=2)
    assert all(torch.equal(a, codec.decode(p)) for a, p in zip(got, payloads, strict=True))
    assert decode_batch([], codec, threads=2) == []
    with pytest.raises(CodecError, match="payload 1"):
        decode_batch([payloads[0], get_codec("fp16").encode(torch.ones(2))], codec, threads=2)


def test_first_bad_payload_is_named_and_bad_arguments_are_refused() -> None:
    payloads = _payloads()
    payloads[7] = payloads[7][:-1]
    payloads[11] = b"junk"
    with pytest.raises(CodecError, match="payload 7"):
        decode_batch(payloads, threads=4)
    with pytest.raises(CodecError, match="threads"):
        decode_batch(payloads, threads=0)
    with pytest.raises(CodecError, match="sequence of payloads"):
        decode_batch(payloads[0])
