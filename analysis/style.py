"""The visual identity of codecs, split points and stages, shared by every figure and table.

A codec keeps one colour everywhere (Okabe-Ito based, colour-blind safe; the colour belongs to
its id, the text of a label before "(", so every setting of SLICER is orange); a split point
keeps one marker (integer splits by value, others by a stable hash of their text); a stage keeps
one colour and one display name. The ``*_sort_key`` functions give the one order in which
figures and tables list splits and codecs: known codec ids in the order of ``CODEC_COLORS``,
numbers inside labels read as numbers. Pure Python, no matplotlib: tables use it too.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

from analysis.metrics import STAGES

__all__ = [
    "CODEC_COLORS",
    "FALLBACK_COLORS",
    "LINESTYLES",
    "MARKERS",
    "STAGES",
    "STAGE_COLORS",
    "STAGE_NAMES",
    "codec_color",
    "codec_family",
    "family_sort_key",
    "natural_key",
    "num",
    "split_marker",
    "split_sort_key",
    "split_text",
]

CODEC_COLORS = {
    "fp32": "#000000",
    "fp16": "#0072b2",
    "bf16": "#56b4e9",
    "int8": "#009e73",
    "blockwise8": "#8c564b",
    "zstd": "#cc79a7",
    "topk": "#e69f00",
    "rans": "#999999",
    "slicer": "#d55e00",
    "jpeg": "#6a3d9a",
    "webp": "#bcbd22",
}
FALLBACK_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#e377c2", "#7f7f7f", "#d62728")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "p", "h", "<", ">", "8", "H", "d")
LINESTYLES = ("-", "--", ":", "-.")
STAGE_COLORS = {  # Paul Tol's muted scheme, colour-blind safe
    "device": "#88ccee",
    "uplink": "#ddcc77",
    "server_wait": "#cc6677",
    "server_compute": "#117733",
    "downlink": "#aa4499",
}
STAGE_NAMES = {
    "device": "device (queue, head, encode)",
    "uplink": "uplink",
    "server_wait": "server wait (dispatch, queue)",
    "server_compute": "server compute",
    "downlink": "downlink",
}


def codec_color(label: str) -> str:
    """Hex colour of a codec label, fixed for known ids (the text before "("; a jpeg label with
    ``format=webp`` is webp); other labels get a stable colour from a hash of their id."""
    family = codec_family(label)
    if family in CODEC_COLORS:
        return CODEC_COLORS[family]
    return FALLBACK_COLORS[zlib.crc32(family.encode()) % len(FALLBACK_COLORS)]


def split_marker(split: Any) -> str:
    """Marker of a split point: integer splits cycle through 15 filled markers by value (so a
    split keeps its marker in every figure), other values by a stable hash of their text."""
    value = num(split)
    if math.isfinite(value) and value == int(value):
        return MARKERS[int(value) % len(MARKERS)]
    return MARKERS[zlib.crc32(split_text(split).encode()) % len(MARKERS)]


def codec_family(label: str) -> str:
    """The codec id(s) of a label, lower case: ``slicer(max_nmse=0.01)`` -> ``slicer``; groups
    with different codecs (``fp16/slicer(...)``) -> ``fp16/slicer``; a jpeg label with
    ``format=webp`` -> ``webp``."""
    text = str(label).strip()
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "/" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    ids: list[str] = []
    for part in parts:
        head = part.split("(", 1)[0].strip().lower()
        if head == "jpeg" and "format=webp" in part.replace(" ", "").lower():
            head = "webp"
        if head not in ids:
            ids.append(head)
    return "/".join(ids)


def split_text(split: Any) -> str:
    """A split point as text: ``8.0`` -> "8", ``"4/8"`` stays, None -> "?"."""
    value = num(split)
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return "?" if split is None else str(split)


def split_sort_key(split: Any) -> tuple[int, float, str]:
    """Numeric splits first, by value; then the others by text."""
    value = num(split)
    return (0, value, "") if math.isfinite(value) else (1, 0.0, split_text(split))


def family_sort_key(label: str) -> tuple[int, list[Any]]:
    """Known codec ids in the order of ``CODEC_COLORS``, then the others; settings of one id in
    natural order (``natural_key``)."""
    family = codec_family(label)
    order = list(CODEC_COLORS)
    return (order.index(family) if family in order else len(order), natural_key(label))


def natural_key(text: str) -> list[Any]:
    """Sort key reading numbers as numbers ("q=30" < "q=100"; 1e-3 < 1e-2)."""
    out: list[Any] = []
    for part in re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", text):
        if part and part[0].isdigit():
            out.append((0, float(part), ""))
        else:
            out.append((1, 0.0, part))
    return out


def num(value: Any) -> float:
    """A cell as a float: numbers (numpy ones included) as they are; None, text and anything
    else as NaN."""
    if value is None or isinstance(value, (str, bytes)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
