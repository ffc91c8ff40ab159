"""Split DNN workloads: offline pretrained models, head/tail splits, cost profiles, quality.

``models.load(name)`` builds a ``SplitModel``; ``models.available()`` lists the names;
``models.profile(name_or_model, seq_len=..., batch=...)`` gives per-block costs.

These names load on first use (PEP 562), so ``import models.hardware`` or ``import
models.cost`` (what the simulator needs) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.profiles import if_bytes, profile
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

#: Each public name and the module that defines it.
_HOMES = {
    "if_bytes": "models.profiles",
    "profile": "models.profiles",
    "BlockProfile": "models.split",
    "CausalSplitModel": "models.split",
    "DeviceSession": "models.split",
    "ModelError": "models.split",
    "Sample": "models.split",
    "ServerSession": "models.split",
    "SplitModel": "models.split",
    "ModelInfo": "models.zoo",
    "available": "models.zoo",
    "load": "models.zoo",
    "load_shape": "models.zoo",
}

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


if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt name stays a type error

    def __getattr__(name: str) -> Any:
        """Import a public name's module on first use and keep the name here."""
        home = _HOMES.get(name)
        if home is None:  # submodules (``from models import images``) the import system finds
            raise AttributeError(f"module 'models' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
