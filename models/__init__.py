"""Split DNN workloads: offline pretrained models, head/tail splits, cost profiles, quality.

``models.load(name)`` builds a ``SplitModel``; ``models.available()`` lists the names.
"""

from models.split import (
    BlockProfile,
    CausalSplitModel,
    DeviceSession,
    ModelError,
    Sample,
    ServerSession,
    SplitModel,
)
from models.zoo import ModelInfo, available, load

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
    "load",
]
