"""Intermediate-feature codecs: SLICER and its baselines behind one small contract.

``get_codec({"id": "slicer", "max_nmse": 0.01})`` builds a codec; ``codec.encode(x)`` gives
self-describing bytes and ``codec.decode(payload)`` (or ``decode_any``) the tensor back.
``open_encoder`` / ``open_decoder`` (``codec.stream``) send a sequence's per-token features as
small frames after a one-time set-up. ``decode_batch(payloads, threads=N)`` decodes a server's
batch on N cores; ``decode_torch(payload, device)`` decodes onto a torch device.
"""

from codec import baselines, jpeg, rans, slicer, slicer_llm  # noqa: F401  (importing registers the codecs)
from codec.base import Codec, CodecStats
from codec.batch import decode_batch
from codec.errors import CodecError
from codec.reference import reference_bits_per_element
from codec.registry import available, decode_any, get_codec
from codec.stream import StreamDecoder, StreamEncoder, open_decoder, open_encoder
from codec.torch_decode import decode_torch

__all__ = [
    "Codec",
    "CodecError",
    "CodecStats",
    "StreamDecoder",
    "StreamEncoder",
    "available",
    "decode_any",
    "decode_batch",
    "decode_torch",
    "get_codec",
    "open_decoder",
    "open_encoder",
    "reference_bits_per_element",
]
