"""Can results be written where the user asked? Checked before anything runs.

``check_output(out)`` raises ``OutputError`` (a ``ValueError``: the command prints it as one
line) when ``out`` is a file, when a part of its path is a file, or when nothing can be created
in it (or, while it does not exist yet, in the nearest folder above it that does): a read-only
directory or file system, no permission. Writability is tried, not guessed from mode bits
(root ignores those; read-only mounts and immutable folders do not): a probe file is created
and removed at once. Nothing else is created; the run makes ``out`` itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """The results directory cannot be used; the message says why and what to do."""


def check_output(out: Path) -> None:
    """Raise ``OutputError`` unless a run can create and fill ``out``."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is a file, not a directory; choose another --out")
    folder = out
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"--out {out}: {folder} is a file, so nothing can be created below it; choose "
            "another --out"
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".slicer-probe-", dir=folder)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise OutputError(
            f"--out {out}: cannot write in {folder} ({why}); choose a directory you can "
            "write, e.g. --out results/NAME"
        ) from exc
    os.close(handle)
    os.unlink(probe)
