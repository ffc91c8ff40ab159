"""Decode payloads into torch tensors on a chosen device: ``decode_torch(payload, device)``.

The container is parsed and checked on the CPU as ``Codec.decode`` does; the arithmetic that
turns codes into values runs on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a
``torch.device``), so only the compact codes cross to an accelerator, never the float32 tensor:

* ``fp16``: the float16 bytes are moved and widened on the device;
* ``int8``: ``lo + q * scale`` in float64 on the device, then float32, as the numpy decoder;
* ``blockwise8``: ``q * scale`` per block in float32 on the device;
* ``slicer``: the entropy stage (rANS, masks, signs, block ids, codes) stays on the CPU
  (``codec._slicer_stream.read_survivors``); each survivor's cut, step and cell centre
  (dequantisation) and the scatter to its position run on the device, with the same float32
  expressions as the CPU kernel.

Every other codec is decoded on the CPU and moved. On the CPU the result is bit-identical to
``codec.decode`` (tested); on CUDA the same elementwise float32 operations run one kernel each
(no fused multiply-add), so it is expected bit-identical too and is tested to within 1 ulp.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import torch

from codec import _slicer_stream, bitstream
from codec._slicer_plan import LEVELS_F32, N_LEVELS
from codec.base import TORCH_DTYPES
from codec.errors import CodecError
from codec.registry import _BY_NUMBER

FP16, INT8, BLOCKWISE8, SLICER = 2, 4, 5, 10  # numeric codec ids (``codec.registry``)


def decode_torch(payload: bytes, device: str | torch.device = "cpu") -> torch.Tensor:
    """Decode a payload of any registered codec into a tensor on ``device`` (the payload's
    shape and dtype); any defect raises ``CodecError``."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise CodecError(f"decode_torch: device {device!r} is not a torch device") from exc
    header, body = bitstream.unpack(payload)
    cls = _BY_NUMBER.get(header.codec_num)
    if cls is None:
        raise CodecError(f"payload was made by unknown codec number {header.codec_num}")
    decoders = {FP16: _fp16, INT8: _int8, BLOCKWISE8: _blockwise8, SLICER: _slicer}
    if header.codec_num not in decoders:
        return cls().decode(payload).to(target)
    try:
        values = decoders[header.codec_num](body, header.numel, header.shape, target)
    except CodecError:
        raise
    except Exception as exc:  # as Codec.decode: a defect the checks missed is a CodecError
        raise CodecError(f"{cls.codec_id}: malformed payload body ({exc})") from exc
    if values.numel() and not bool(torch.isfinite(values).all()):  # as base.check_decoded
        raise CodecError(
            f"{cls.codec_id}: the payload decodes to NaN/inf values, which its encoder never "
            "writes; the payload is corrupt or was altered"
        )
    if header.dtype != "float32":
        peak = float(torch.finfo(TORCH_DTYPES[header.dtype]).max)
        values = values.clamp(-peak, peak)
    return values.reshape(header.shape).to(TORCH_DTYPES[header.dtype])


def _expect(body: memoryview, nbytes: int, codec_id: str) -> None:
    if len(body) != nbytes:
        raise CodecError(f"{codec_id}: body is {len(body)} bytes, the shape needs {nbytes}")


def _to(array: np.ndarray, device: torch.device) -> torch.Tensor:
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # a view of the payload: torch wants memory it may write
        array = array.copy()
    return torch.from_numpy(array).to(device)


def _fp16(body: memoryview, n: int, shape: Any, device: torch.device) -> torch.Tensor:
    _expect(body, 2 * n, "fp16")
    return _to(np.frombuffer(body, dtype="<f2"), device).to(torch.float32)


def _int8(body: memoryview, n: int, shape: Any, device: torch.device) -> torch.Tensor:
    _expect(body, 16 + n, "int8")
    lo, scale = struct.unpack("<dd", body[:16])
    q = _to(np.frombuffer(body[16:], dtype=np.uint8), device)
    return (q.to(torch.float64) * scale + lo).to(torch.float32)


def _blockwise8(body: memoryview, n: int, shape: Any, device: torch.device) -> torch.Tensor:
    reader = bitstream.Reader(body, "blockwise8")
    block_size = reader.varint(limit=2**20)
    if block_size < 1:
        raise CodecError("blockwise8: block size 0 in payload")
    scale = _to(reader.array("<f4", -(-n // block_size)), device)
    q = _to(reader.array("i1", n), device).to(torch.float32)
    reader.done()
    return q * scale.repeat_interleave(block_size)[:n]


def _slicer(body: memoryview, n: int, shape: Any, device: torch.device) -> torch.Tensor:
    if n == 0:
        bitstream.Reader(body, "slicer payload").done()
        return torch.zeros(0, dtype=torch.float32, device=device)
    d = _slicer_stream.read_survivors(body, shape)
    nb = d.bits.shape[2]
    # each survivor's code: the codes sorted by group, back in survivor order (a stable sort
    # of the survivors by group number puts survivor order i at by_group's index)
    rows = torch.repeat_interleave(
        torch.arange(d.n_rows, device=device), _to(np.diff(d.row_start), device)
    )
    neg = _to(d.neg.view(np.uint8), device).to(torch.int64)
    block = _to(d.block, device)
    bits = _to(d.bits, device)
    group = (neg * nb + block) * N_LEVELS + bits[rows, neg, block]
    order = torch.sort(group, stable=True).indices
    codes = torch.empty_like(order)
    codes[order] = _to(d.by_group, device)
    cuts = _to(d.cuts, device)
    lo = cuts[rows, neg, block]
    levels = _to(LEVELS_F32, device)
    step = (cuts[rows, neg, block + 1] - lo) / levels[bits[rows, neg, block]]
    value = lo + (codes.to(torch.float32) + 0.5) * step
    out = torch.zeros(d.n_rows * d.n, dtype=torch.float32, device=device)
    out[_to(d.pos, device)] = torch.where(neg.bool(), -value, value)
    out = out.reshape(d.n_rows, d.n)
    for m, verbatim in d.verbatim.items():
        if verbatim.size:
            out[_to(np.flatnonzero(d.mode == m), device)] = _to(verbatim, device)
    return out.reshape(math.prod(shape))
