"""Guessing protection for redemptions: failures counted per account and per code, never per
address, so the tills of one shop behind one NAT do not lock each other out.

After ``FREE`` failures in ``WINDOW`` seconds a key waits until the window has passed; every
failure is answered a little later than the one before. Counters live in each process.
"""

from __future__ import annotations

import threading
import time

WINDOW = 600.0
FREE = 5
MAX_KEYS = 10_000


class Guard:
    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        return [t for t in self._failures.get(key, []) if now - t < WINDOW]

    def wait(self, *keys: str) -> int:
        """Seconds before any of ``keys`` may try again (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            longest = 0
            for key in keys:
                recent = self._recent(key, now)
                if len(recent) >= FREE:
                    longest = max(longest, int(WINDOW - (now - recent[0])) + 1)
            return longest

    def fail(self, *keys: str) -> float:
        """Count a failure for every key; the delay (seconds) to answer it after."""
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > MAX_KEYS:
                self._failures = {
                    k: v for k, v in self._failures.items() if v and now - v[-1] < WINDOW
                }
            worst = 0
            for key in keys:
                recent = [*self._recent(key, now), now]
                self._failures[key] = recent[-FREE * 2 :]
                worst = max(worst, len(recent))
            return float(min(0.05 * 2**worst, 2.0))
