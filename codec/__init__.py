"""Intermediate-feature codecs: SLICER and its baselines behind one small contract.

``get_codec({"id": "slicer", "max_nmse": 0.01})`` builds a codec; ``codec.encode(x)`` gives
self-describing bytes and ``codec.decode(payload)`` (or ``decode_any``) the tensor back.
"""

from codec import baselines, jpeg, rans, slicer  # noqa: F401  (importing registers the codecs)
from codec.base import Codec, CodecStats
from codec.errors import CodecError
from codec.reference import reference_bits_per_element
from codec.registry import available, decode_any, get_codec

__all__ = [
    "Codec",
    "CodecError",
    "CodecStats",
    "available",
    "decode_any",
    "get_codec",
    "reference_bits_per_element",
]
