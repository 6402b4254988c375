"""`Budget`: the time left of one deadline, less one margin, for everything done under it."""

from __future__ import annotations

import time

from switchboard.messaging.errors import RequestTimeout


class Budget:
    """The time left of a deadline `seconds` from `started`, less `margin` kept back to answer in time.

    Every step under one deadline asks it for what is left, so the steps together stay within it
    (a custom transfer's two commands, a lookup's sources); `remaining()` raises once nothing is left.
    """

    def __init__(self, seconds: float, *, margin: float = 0.0, started: float | None = None) -> None:
        self.seconds = seconds
        self.margin = margin
        self.started = time.monotonic() if started is None else started
        self._end = self.started + max(seconds - margin, 0.0)

    def extended(self, seconds: float) -> Budget:
        """The same deadline counted from the same start, but `seconds` long when that is longer."""
        if seconds <= self.seconds:
            return self
        return Budget(seconds, margin=self.margin, started=self.started)

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise RequestTimeout("the deadline passed")
        return left
