"""Build codecs from their configs: ``get_codec({"id": "slicer", "max_nmse": 0.01})``."""

from __future__ import annotations

from typing import Any, TypeVar

import torch

from codec import bitstream
from codec.base import Codec
from codec.errors import CodecError

_BY_ID: dict[str, type[Codec]] = {}
_BY_NUMBER: dict[int, type[Codec]] = {}

C = TypeVar("C", bound=type[Codec])


def register(cls: C) -> C:
    """Class decorator: make a codec buildable by id and decodable by its payload number."""
    if cls.codec_id in _BY_ID or cls.numeric_id in _BY_NUMBER:
        raise RuntimeError(f"codec {cls.codec_id!r} / number {cls.numeric_id} registered twice")
    _BY_ID[cls.codec_id] = cls
    _BY_NUMBER[cls.numeric_id] = cls
    return cls


def available() -> list[str]:
    """The ids of every registered codec."""
    return sorted(_BY_ID)


def get_codec(config: dict[str, Any] | str) -> Codec:
    """A codec from its config dict (or a bare id for its defaults)."""
    if isinstance(config, str):
        config = {"id": config}
    if not isinstance(config, dict) or "id" not in config:
        raise CodecError(f"a codec config is a dict with an 'id' key, got {config!r}")
    cls = _BY_ID.get(config["id"])
    if cls is None:
        raise CodecError(f"unknown codec id {config['id']!r}; available: {available()}")
    try:
        return cls.from_config(config)
    except TypeError as exc:
        raise CodecError(f"codec {config['id']!r}: bad config {config!r} ({exc})") from exc


def decode_any(payload: bytes) -> torch.Tensor:
    """Decode a payload of any registered codec: payloads carry everything decoding needs."""
    header, _ = bitstream.unpack(payload)
    cls = _BY_NUMBER.get(header.codec_num)
    if cls is None:
        raise CodecError(f"payload was made by unknown codec number {header.codec_num}")
    return cls().decode(payload)
