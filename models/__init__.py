"""Split DNN workloads: offline pretrained models, head/tail splits, cost profiles, quality.

``models.load(name)`` builds a ``SplitModel``; ``models.available()`` lists the names;
``models.profile(name_or_model, seq_len=..., batch=...)`` gives per-block costs.
"""

from models.profile import if_bytes, profile
from models.split import (
    BlockProfile,
    CausalSplitModel,
    DeviceSession,
    ModelError,
    Sample,
    ServerSession,
    SplitModel,
)
from models.zoo import ModelInfo, available, load, load_shape

__all__ = [
    "BlockProfile",
    "CausalSplitModel",
    "DeviceSession",
    "ModelError",
    "ModelInfo",
    "Sample",
    "ServerSession",
    "SplitModel",
    "available",
    "if_bytes",
    "load",
    "load_shape",
    "profile",
]
