"""Progress output on stderr: one run's status line and a sweep's bar.

``RunProgress`` is the ``progress`` callback a simulation calls: simulated time, requests done
and the simulated-to-wall rate, redrawn in place on a terminal, only the final line otherwise.
``SweepBar`` shows how many points of a sweep finished and extrapolates the time left. Both
only print; neither changes what a run computes or writes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from scenarios import Scenario


class RunProgress:
    """One status line on stderr: simulated time, requests done, simulated-to-wall rate;
    redrawn in place on a terminal, only the final line otherwise."""

    def __init__(self, scenario: Scenario, wall_start: float) -> None:
        self._end_s = scenario.duration_s
        self._wall_start = wall_start
        self._last_wall = 0.0
        self._in_place = sys.stderr.isatty()

    def __call__(self, now_s: float, done: int, total: int) -> None:
        wall = time.perf_counter()
        final = done >= total
        if not final and (not self._in_place or wall - self._last_wall < 0.5):
            return
        self._last_wall = wall
        elapsed = max(wall - self._wall_start, 1e-9)
        horizon = f"/{self._end_s:g}" if self._end_s else ""
        line = (
            f"sim {number(now_s)}{horizon} s | {done:,}/{total:,} requests | "
            f"{number(now_s / elapsed)}x real time"
        )
        line = "\r" + line if self._in_place else line
        print(line, end="\n" if final else "", file=sys.stderr, flush=True)


class SweepBar:
    """A sweep's progress on stderr, e.g. ``[#######.............] 7/24 points, 1m12s elapsed,
    ~2m30s left``. ``done`` counts finished points (skipped ones included); the time left is
    extrapolated from the points run since the bar was made. Redrawn in place when
    ``in_place`` (a terminal, points in parallel); otherwise plain lines: every ``show`` with a
    note, else only at the start, the end and every 5% of the points or 10 s."""

    WIDTH = 20
    PLAIN_EVERY_S = 10.0

    def __init__(self, total: int, done: int, stream: TextIO | None = None) -> None:
        self.total, self.done, self._skipped = total, done, done
        self.stream = stream if stream is not None else sys.stderr
        self.in_place = False
        self._start = time.perf_counter()
        self._open = False  # an in-place line is on screen without its newline
        self._shown: tuple[int, float] | None = None  # (done, when) of the last plain line

    def text(self, elapsed_s: float) -> str:
        filled = self.WIDTH * self.done // max(self.total, 1)
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} points, "
            f"{clock(elapsed_s)} elapsed"
        )
        ran = self.done - self._skipped
        if ran > 0 and self.done < self.total:
            line += f", ~{clock(elapsed_s / ran * (self.total - self.done))} left"
        return line

    def show(self, note: str = "") -> None:
        now = time.perf_counter()
        line = self.text(now - self._start) + (f" | {note}" if note else "")
        if self.in_place:
            print(f"\r{line}\x1b[K", end="", file=self.stream, flush=True)
            self._open = True
            return
        if not note and self._shown is not None and self.done < self.total:
            done, when = self._shown
            if self.done - done < max(1, self.total // 20) and now - when < self.PLAIN_EVERY_S:
                return
        print(line, file=self.stream, flush=True)
        self._shown = (self.done, now)

    def end_line(self) -> None:
        """Finish an in-place line, so that what is printed next starts on its own."""
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False


def number(value: float) -> str:
    """``1,234.5``, or ``1e+300`` where the digits would fill the line."""
    return f"{value:,.1f}" if abs(value) < 1e9 else f"{value:.3g}"


def clock(seconds: float) -> str:
    """``42s``, ``3m07s``, ``1h05m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
