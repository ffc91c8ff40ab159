"""The image-codec baseline of the supervised-compression benchmark SC2: JPEG or WebP tiles.

Feature channels become tiles of one 8-bit grayscale image: for ``ndim >= 3`` there are
``prod(shape[:-2])`` tiles of ``H x W`` (the last two dimensions) on a grid of
``ceil(sqrt(tiles))`` columns, filled row by row; a 2-D tensor is one ``shape[0] x shape[1]``
tile. A tensor of fewer than two dimensions, or one whose grid would exceed the format's largest
image side (JPEG 65500, WebP 16383), is flattened into a single near-square tile of
``ceil(sqrt(numel))`` columns, its last row padded with the last value. Every tile is quantised
to ``round((x - min) / scale)`` with ``scale = (max - min) / 255`` from its own min and max, and
the image is compressed by Pillow at ``quality``. The layout follows from the shape and format,
so decoding needs no config.

Body (after the container header)::

    format   u8                 0: JPEG, 1: WebP (nothing follows for an empty tensor)
    tiles    tiles x 2 x f32    min and scale of every tile
    image    rest of the body   the JPEG or WebP file
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from codec.base import Codec, check_choice, check_number
from codec.bitstream import Reader
from codec.errors import CodecError
from codec.registry import register

FORMATS = ("jpeg", "webp")
PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}
MAX_SIDE = {"jpeg": 65500, "webp": 16383}
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Layout:
    """Where the values go: ``tiles`` tiles of ``tile_h x tile_w`` on a ``rows x cols`` grid;
    ``flat`` means one padded near-square tile of the flattened tensor."""

    tiles: int
    tile_h: int
    tile_w: int
    rows: int
    cols: int
    flat: bool

    @property
    def size(self) -> tuple[int, int]:
        """The image size as Pillow reports it: (width, height)."""
        return self.cols * self.tile_w, self.rows * self.tile_h


def _ceil_sqrt(n: int) -> int:
    root = math.isqrt(n)
    return root if root * root == n else root + 1


def layout(shape: tuple[int, ...], fmt: str) -> Layout:
    """The image layout of a non-empty tensor of this shape in this format."""
    n = math.prod(shape)
    side = MAX_SIDE[fmt]
    if len(shape) >= 2:
        tiles = math.prod(shape[:-2])
        cols = _ceil_sqrt(tiles)
        rows = -(-tiles // cols)
        tile_h, tile_w = shape[-2], shape[-1]
        if rows * tile_h <= side and cols * tile_w <= side:
            return Layout(tiles, tile_h, tile_w, rows, cols, flat=False)
    width = _ceil_sqrt(n)
    height = -(-n // width)
    if max(width, height) > side:
        raise CodecError(
            f"jpeg: {n} values do not fit one {fmt} image (largest side {side}); "
            "split the tensor or use another codec"
        )
    return Layout(1, height, width, 1, 1, flat=True)


def _tiles(values: np.ndarray, grid: Layout) -> np.ndarray:
    """The values as float64 tiles of shape (tiles, tile_h * tile_w)."""
    flat = values.astype(np.float64).ravel()
    if not grid.flat:
        return flat.reshape(grid.tiles, grid.tile_h * grid.tile_w)
    padded = np.full(grid.tile_h * grid.tile_w, flat[-1])
    padded[: flat.size] = flat
    return padded.reshape(1, -1)


@register
class Jpeg(Codec):
    """Channels tiled into one grayscale image with per-tile min/max, compressed by Pillow."""

    codec_id = "jpeg"
    numeric_id = 9

    def __init__(self, quality: int = 90, format: str = "jpeg") -> None:
        self.quality = int(check_number(self.codec_id, "quality", quality, 1, 100, integer=True))
        self.format = check_choice(self.codec_id, "format", format, FORMATS)

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "quality": self.quality, "format": self.format}

    def _encode_body(self, values: np.ndarray, dtype: str) -> bytes:
        out = bytearray((FORMATS.index(self.format),))
        if values.size == 0:
            return bytes(out)
        grid = layout(values.shape, self.format)
        tiles = _tiles(values, grid)
        lo = tiles.min(axis=1).astype(np.float32)
        scale = ((tiles.max(axis=1) - lo) / 255.0).astype(np.float32)
        safe = np.where(scale > 0, scale, 1.0).astype(np.float64)
        codes = np.clip(np.rint((tiles - lo[:, None]) / safe[:, None]), 0, 255).astype(np.uint8)
        canvas = np.zeros((grid.rows * grid.cols, grid.tile_h * grid.tile_w), dtype=np.uint8)
        canvas[: grid.tiles] = codes
        image = (
            canvas.reshape(grid.rows, grid.cols, grid.tile_h, grid.tile_w)
            .transpose(0, 2, 1, 3)
            .reshape(grid.rows * grid.tile_h, grid.cols * grid.tile_w)
        )
        out += np.stack([lo, scale], axis=1).astype("<f4").tobytes()
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=PIL_FORMATS[self.format], quality=self.quality)
        out += buffer.getvalue()
        return bytes(out)

    def _decode_body(self, body: memoryview, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        n = math.prod(shape)
        reader = Reader(body, self.codec_id)
        code = reader.u8()
        if code >= len(FORMATS):
            raise CodecError(f"jpeg: unknown image format code {code}")
        fmt = FORMATS[code]
        if n == 0:
            reader.done()
            return np.zeros(0, dtype=np.float32)
        grid = layout(shape, fmt)
        raw = reader.array("<f4", 2 * grid.tiles).reshape(grid.tiles, 2)
        if not np.isfinite(raw).all() or (raw[:, 1] < 0).any():  # before any cast: NaN traps
            raise CodecError("jpeg: a tile min or scale is negative or not finite")
        params = raw.astype(np.float64)
        pixels = _read_image(bytes(reader.take(reader.remaining)), fmt, grid.size)
        codes = (
            pixels.reshape(grid.rows, grid.tile_h, grid.cols, grid.tile_w)
            .transpose(0, 2, 1, 3)
            .reshape(grid.rows * grid.cols, grid.tile_h * grid.tile_w)[: grid.tiles]
        )
        restored = params[:, :1] + codes.astype(np.float64) * params[:, 1:]
        restored = np.clip(restored, -_F32_MAX, _F32_MAX).astype(np.float32)
        return restored.ravel()[:n]


def _check_framing(data: bytes, fmt: str) -> None:
    """Catch truncation and trailing bytes, which image decoders tend to tolerate silently."""
    if fmt == "jpeg" and not (data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")):
        raise CodecError("jpeg: image does not start with a JPEG SOI and end with an EOI marker")
    if fmt == "webp":
        riff = int.from_bytes(data[4:8], "little") + 8 if len(data) >= 12 else -1
        if not (data.startswith(b"RIFF") and data[8:12] == b"WEBP" and riff == len(data)):
            raise CodecError(f"jpeg: WebP RIFF header does not match the {len(data)} image bytes")


def _read_image(data: bytes, fmt: str, size: tuple[int, int]) -> np.ndarray:
    """Decode an 8-bit grayscale image, checking its format and size before any pixel is read."""
    _check_framing(data, fmt)
    try:
        with warnings.catch_warnings():
            # The declared size is checked against the expected one before loading.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[fmt]]) as image:
                if image.format != PIL_FORMATS[fmt]:
                    raise CodecError(f"jpeg: image is {image.format}, the body declares {fmt}")
                if image.size != size:
                    raise CodecError(
                        f"jpeg: image is {image.size[0]}x{image.size[1]}, "
                        f"the shape needs {size[0]}x{size[1]}"
                    )
                pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"jpeg: the {fmt} image is corrupt ({type(exc).__name__}: {exc})") from exc
    if pixels.shape != (size[1], size[0]):
        raise CodecError(f"jpeg: decoded pixels have shape {pixels.shape}")
    return pixels
