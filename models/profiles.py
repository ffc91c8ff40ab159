"""Per-block cost profiles: ``models.profile("smollm2-135m", seq_len=128)``.

A thin front over ``SplitModel.block_profiles``: FLOPs counted analytically from shapes
(attention included), weight bytes read per call, activation bytes, KV-cache bytes read and
kept per token, and each block's output size (the IF size when the split is after it).
"""

from __future__ import annotations

from models.split import BlockProfile, SplitModel
from models.zoo import load


def profile(
    model: SplitModel | str, seq_len: int = 1, batch: int = 1, context_len: int | None = None
) -> list[BlockProfile]:
    """One ``BlockProfile`` per block for ``batch`` inputs of ``seq_len`` tokens attending over
    ``context_len`` tokens (default ``seq_len``; vision models ignore the lengths)."""
    if isinstance(model, str):
        model = load(model)
    return model.block_profiles(seq_len=seq_len, batch=batch, context_len=context_len)


def if_bytes(model: SplitModel | str, split: int, seq_len: int = 1, batch: int = 1) -> float:
    """Float32 bytes the device sends at ``split`` (the input itself at split 0)."""
    if isinstance(model, str):
        model = load(model)
    split = model.check_split(split)
    profiles = profile(model, seq_len, batch)
    if split == 0:
        return profiles[0].activation_bytes - profiles[0].out_bytes
    return profiles[split - 1].out_bytes
