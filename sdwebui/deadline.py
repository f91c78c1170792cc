"""One total time budget per tool call, shared by every HTTP request in it."""

from __future__ import annotations

import time

# Dify kills a plugin call at 600 s; stay well below so our own, clearer error wins.
MAX_DEADLINE_S = 540.0
DEFAULT_DEADLINE_S = 300.0


class Deadline:
    def __init__(self, seconds: float, *, clock=time.monotonic) -> None:
        self.seconds = float(seconds)
        self._clock = clock
        self._ends_at = clock() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self._ends_at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0
