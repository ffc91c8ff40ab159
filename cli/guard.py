"""How a ``slicer`` subcommand ends: a result, one line of error, or an interrupt.

``guarded(command, call)`` runs ``call()`` with SIGTERM turned into ``fleet.run.rundir.Terminated``
(a ``KeyboardInterrupt``, so a run cleans up exactly as on Ctrl-C: its manifest says
``interrupted`` and no table is left half written) and maps what escapes onto exit statuses:

- the command's own status (0, or 1 when sweep points failed);
- 2 and ``slicer CMD: error: ...`` for what the user can fix: bad scenarios, codec configs,
  missing files, paths that cannot be written (``OSError`` in words, never a traceback), a run
  that ran out of memory;
- 130 after SIGINT and 143 after SIGTERM (128 + the signal), with one line saying that
  rerunning the same command resumes.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType

from fleet.run.rundir import Terminated


def guarded(command: str, call: Callable[[], int]) -> int:
    """``call()``'s exit status, or 2, 130 or 143 as the module docstring says."""
    from fleet.compute.cluster import ClusterError
    from server.engine.jobs import OracleError

    previous = _on_sigterm(_raise_terminated)
    try:
        return call()
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        name = signal.Signals(signum).name
        print(
            f"slicer {command}: interrupted by {name}; finished results are kept, and running "
            "the same command again resumes",
            file=sys.stderr,
        )
        return 128 + int(signum)
    except (ValueError, OracleError, ClusterError, OSError) as exc:
        print(f"slicer {command}: error: {error_text(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(
            f"slicer {command}: error: out of memory ({exc or 'no detail'}); the scenario needs "
            "more than this machine has: lower device counts, arrival rates or durations, or "
            "drop --ignore-limits to see the estimate",
            file=sys.stderr,
        )
        return 2
    finally:
        _on_sigterm(previous)


def error_text(exc: BaseException) -> str:
    """The message of ``exc``; an ``OSError`` from the system as 'what: path (how to fix)'."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        where = exc.filename
        hint = {
            "PermissionError": "choose a directory you can write, e.g. --out results/NAME",
            "NotADirectoryError": "a part of the path is a file; choose another --out",
            "IsADirectoryError": "a directory is in the way; choose another path",
            "FileExistsError": "choose another --out",
        }.get(type(exc).__name__, "check the path")
        return f"{exc.strerror}: {where} ({hint})"
    return str(exc)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _on_sigterm(handler: object) -> object:
    """Install ``handler`` for SIGTERM (main thread only) and return the one it replaces."""
    try:
        return signal.signal(signal.SIGTERM, handler)  # type: ignore[arg-type]
    except ValueError:  # not the main thread: leave signals alone
        return handler
