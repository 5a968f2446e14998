"""What one pass holds back: channels paused or rate-limited in it, and deliveries it gave back.

The ledger's ``channel_state`` holds channels across passes and processes; this is the pass's
own memory, so that the rest of a batch waits at once and a pass never claims again what it
released (that is for the next pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime


class PassHolds:
    """Shared by the pass's threads; every method takes the lock it needs."""

    def __init__(self) -> None:
        # Channel -> rate-limited until a time, or paused (None) for the rest of the pass.
        self._channels: dict[str, datetime | None] = {}
        self._released: set[str] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._channels.clear()
            self._released.clear()

    def block(self, channel: str, until: datetime | None) -> None:
        """Hold ``channel`` until ``until``, or for the rest of the pass when None."""
        with self._lock:
            self._channels[channel] = until

    def on_hold(self, channel: str, clock: Callable[[], datetime]) -> tuple[bool, datetime]:
        """Whether ``channel`` is held, and until when (now, for a paused one). A rate limit's
        hold whose time has come is forgotten here."""
        with self._lock:
            if channel not in self._channels:
                return False, datetime.min
            now = clock()
            until = self._channels.get(channel, now)
            if until is not None and until <= now:
                self._channels.pop(channel, None)
                return False, now
            return True, until or now

    def channels(self, now: datetime) -> list[str]:
        """Channels this pass must not claim for: paused, or rate-limited until later."""
        with self._lock:
            items = list(self._channels.items())
        return [c for c, until in items if until is None or until > now]

    def released(self, delivery: str) -> None:
        with self._lock:
            self._released.add(delivery)

    def released_ids(self) -> list[str]:
        with self._lock:
            return list(self._released)

    def released_count(self) -> int:
        with self._lock:
            return len(self._released)
