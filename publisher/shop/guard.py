"""Guessing protection for redemptions and invitations: failures counted per key (an account, a
code, a link), never per address alone, so the tills of one shop behind one NAT do not lock each
other out.

After ``FREE`` failures in ``WINDOW`` seconds a key waits until the oldest of them has passed;
every failure is answered a little later than the one before. Failures are rows of the
``guess_failures`` table, so every tracker worker (``serve --workers N``) counts the same ones;
a key is stored only as its keyed hash, so no address or code is written down.
The methods are coroutines: the database is asked from a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select

from publisher.shop.schema import guess_failures

WINDOW = 600.0
FREE = 5


class Guard:
    def __init__(self, engine: Engine, secret: bytes) -> None:
        self.engine = engine
        self._secret = secret

    def _hashed(self, keys: tuple[str, ...]) -> list[str]:
        return [
            hashlib.blake2b(k.encode(), key=self._secret, digest_size=16).hexdigest() for k in keys
        ]

    async def wait(self, *keys: str) -> int:
        """Seconds before any of ``keys`` may try again (0: go ahead)."""
        return await asyncio.to_thread(self._wait, keys)

    async def fail(self, *keys: str) -> float:
        """Count a failure for every key; the delay (seconds) to answer it after."""
        return await asyncio.to_thread(self._fail, keys)

    def _wait(self, keys: tuple[str, ...]) -> int:
        now = datetime.now(UTC)
        longest = 0.0
        for count, oldest in self._recent(keys, now):
            if count >= FREE:
                longest = max(longest, WINDOW - (now - oldest).total_seconds())
        return int(longest) + 1 if longest > 0 else 0

    def _recent(self, keys: tuple[str, ...], now: datetime) -> list[tuple[int, datetime]]:
        if not keys:
            return []
        since = now - timedelta(seconds=WINDOW)
        query = (
            select(func.count(), func.min(guess_failures.c.at))
            .where(guess_failures.c.key.in_(self._hashed(keys)), guess_failures.c.at > since)
            .group_by(guess_failures.c.key)
        )
        with self.engine.connect() as conn:
            return [(int(n), oldest) for n, oldest in conn.execute(query)]

    def _fail(self, keys: tuple[str, ...]) -> float:
        now = datetime.now(UTC)
        expired = guess_failures.c.at <= now - timedelta(seconds=WINDOW)
        with self.engine.begin() as conn:
            conn.execute(delete(guess_failures).where(expired))
            if keys:
                conn.execute(
                    insert(guess_failures), [{"key": k, "at": now} for k in self._hashed(keys)]
                )
        worst = max((n for n, _ in self._recent(keys, now)), default=1)
        return float(min(0.05 * 2**worst, 2.0))
