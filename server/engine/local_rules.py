"""The local oracle's per-family rules and where it computes.

What one input looks like as a batch of one (``batch_of``), which item of a head's output is the
IF (``first_item``), what agreement compares (``summary_of``, ``agreement_of``), what a device
that ran the whole model reports (``report_of``), and the replay profile's rows
(``profile_rows``); see ``server.engine.local`` for the rules themselves.

Where: ``LocalOracle(device=...)`` runs models on a torch device. ``resolve_device`` turns
``"auto"`` into ``"cuda"`` when torch sees a GPU (else ``"cpu"``) and refuses ``"cuda"``
without one; ``move_model`` moves every ``nn.Module`` a split model holds; ``synchronize``
waits for the device, so wall times cover the work and not only its launch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from models.encoder import EncoderBatch
from models.split import SplitModel
from records.tables import PROFILE_SCHEMA
from server.engine.jobs import HeadResult, OracleError, TailResult

LM, ENCODER, VISION = "causal-lm", "sentence-embedding", "image-classification"
Key = tuple[str, int, str, int, int, int, str]  # model, split, codec, input, seq_len, step, prompts


def resolve_device(device: str) -> str:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"cuda"`` needs a GPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise OracleError(f"device must be cpu, cuda, cuda:N or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OracleError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    return device


def move_model(model: SplitModel, device: str) -> SplitModel:
    """``model`` with every ``nn.Module`` it holds on ``device`` (in place)."""
    for value in vars(model).values():
        if isinstance(value, torch.nn.Module):
            value.to(device)
    return model


def synchronize(device: str) -> None:
    """Wait for the device's queued work (nothing to wait for on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def profile_rows(
    heads: Mapping[Key, tuple[HeadResult, float]], tails: Mapping[Key, tuple[TailResult, float]]
) -> dict[str, list[Any]]:
    """PROFILE_SCHEMA columns from head and tail results keyed alike, one row per key that has
    both, sorted by key."""
    rows: dict[str, list[Any]] = {name: [] for name in PROFILE_SCHEMA.names}
    for key in sorted(k for k in heads if k in tails):
        model, split, codec, input_id, seq_len, _, prompts = key
        head, head_wall_s = heads[key]
        tail, tail_wall_s = tails[key]
        values = [model, split, codec, json.loads(codec)["id"], input_id, seq_len]
        values += [head.raw_bytes, head.payload_bytes, tail.result_bytes, tail.agreement]
        values += [head_wall_s, tail_wall_s, prompts]
        for name, value in zip(PROFILE_SCHEMA.names, values, strict=True):
            rows[name].append(value)
    return rows


def batch_of(model: SplitModel, x: torch.Tensor) -> Any:
    """One unbatched input or IF as the batch of one that ``head``/``tail`` take."""
    if model.task == ENCODER:
        mask = torch.ones(1, x.shape[0], dtype=torch.int64, device=x.device)
        return EncoderBatch(x[None], mask)
    return x[None]


def first_item(h: Any) -> torch.Tensor:
    """The one item of a head's batch output (an encoder's hidden states without the mask)."""
    tensor: torch.Tensor = h.x if isinstance(h, EncoderBatch) else h
    return tensor[0]


def summary_of(task: str, output: torch.Tensor) -> np.ndarray:
    """What agreement compares: the top-1 class ``[1]`` or top-1 token per position ``[T]``
    (int32), or the embedding ``[d]`` (float32), on the CPU."""
    if task == ENCODER:
        return output.to(torch.float32).cpu().numpy().copy()
    return output.argmax(-1).reshape(-1).to(torch.int32).cpu().numpy()


def report_of(task: str, summary: np.ndarray) -> np.ndarray:
    """The answer a device that ran the whole model sends: an LM's last next-token only."""
    return summary[-1:] if task == LM else summary


def agreement_of(task: str, got: np.ndarray, reference: np.ndarray) -> float:
    if task == ENCODER:
        a, b = got.astype(np.float64), reference.astype(np.float64)
        norms = float(np.linalg.norm(a) * np.linalg.norm(b))
        return min(1.0, max(0.0, float(a @ b) / norms)) if norms > 0 else 0.0
    return float(np.mean(got == reference))
