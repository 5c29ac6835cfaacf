"""Progress and time-left estimates for the progress bars."""

from __future__ import annotations

import time
from typing import Callable


class EtaEstimator:
    """Estimates time left from the rate of finished units (tiles or files) since the first one was reported."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._start: float | None = None
        self._start_done = 0

    def reset(self) -> None:
        self._start = None
        self._start_done = 0

    def update(self, done: int, total: int) -> float | None:
        """Seconds left, or None while there is not yet enough to go on."""
        now = self._clock()
        if self._start is None or done < self._start_done:
            # The first unit often includes model warm-up, so measure from the first report on.
            self._start, self._start_done = now, done
            return None
        finished = done - self._start_done
        if finished <= 0 or total <= 0:
            return None
        rate = (now - self._start) / finished
        return max(0.0, rate * (total - done))


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min left"
