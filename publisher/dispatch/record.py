"""Outcomes written to the ledger: each method is one ledger transition in its own transaction,
and returns the :class:`~publisher.dispatch.outcomes.Outcome` the pass counts."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from channels.base import ChannelError, RateLimited, Receipt, RetryLater
from publisher import ledger
from publisher.dispatch.holds import PassHolds
from publisher.dispatch.outcomes import Outcome, Transition, transition_for
from publisher.ledger import Claim

log = logging.getLogger("publisher.dispatch")


@dataclass(frozen=True)
class Sent:
    """A post the network took, whose receipt is stored with others in one transaction."""

    claim: Claim
    receipt: Receipt


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, so many failed posts do not come back all at once."""

    base: float
    cap: float
    max_attempts: int


class Recorder:
    """Writes what happened to a claimed delivery; shared by the pass's threads."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        backoff: Backoff,
        holds: PassHolds,
        say: Callable[[Claim, str], str],
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.backoff = backoff
        self.holds = holds
        self.say = say
        self._random = random.Random()

    # ------------------------------------------------------------------ receipts

    def sent(self, claim: Claim, receipt: Receipt) -> Outcome:
        return (
            Outcome.SENT if self.store_sent([Sent(claim, receipt)])[Outcome.SENT] else Outcome.LOST
        )

    def store_sent(self, sent: Sequence[Sent]) -> Counter[Outcome]:
        """Receipts stored together, in one transaction."""
        if not sent:
            return Counter()
        receipts = [
            (s.claim, {"remote_id": s.receipt.remote_id, "url": s.receipt.url, **s.receipt.extra})
            for s in sent
        ]
        with ledger.transaction(self.engine) as conn:
            stored = ledger.mark_sent_many(conn, receipts, self.clock())
        for s in sent:
            if s.claim.id not in stored:
                log.error(
                    "delivery %s: sent as %s but the ledger moved on", s.claim.id, s.receipt.url
                )
        return (
            Counter({Outcome.SENT: len(stored), Outcome.LOST: len(sent) - len(stored)}) + Counter()
        )

    def store_what_can_be(self, sent: Sequence[Sent]) -> None:
        """On the way out after an error: the receipts together, else one by one."""
        try:
            self.store_sent(sent)
            return
        except Exception:
            pass
        for one in sent:
            try:
                self.store_sent([one])
            except Exception as exc:
                log.error(
                    "delivery %s: sent as %s, receipt not stored (%s); settled by lookup later",
                    one.claim.id,
                    one.receipt.url,
                    type(exc).__name__,
                )

    # ------------------------------------------------------------------ failures

    def failure(self, claim: Claim, exc: ChannelError) -> Outcome:
        """The channel's error, through :data:`~publisher.dispatch.outcomes.ON_ERROR`."""
        now = self.clock()
        error = self.say(claim, str(exc))
        transition = transition_for(exc)
        if transition is Transition.BLOCK_CHANNEL:
            wait = exc.until if isinstance(exc, RateLimited) else None
            until = max(wait or now + timedelta(seconds=60), now)
            with ledger.transaction(self.engine) as conn:
                ledger.block_channel(conn, claim.channel, until=until, now=now)
            self.holds.block(claim.channel, until)
            log.info("channel %s rate-limited until %s", claim.channel, until.isoformat())
            return self.retry(claim, error, counts=False, at=until)
        if transition is Transition.PAUSE_CHANNEL:
            return self.pause(claim, error)
        if transition is Transition.FAIL:
            with ledger.transaction(self.engine) as conn:
                ledger.mark_failed(conn, claim, error=error, now=now)
            log.error("delivery %s rejected by %s: %s", claim.id, claim.channel, error)
            return Outcome.FAILED
        if transition is Transition.UNKNOWN:
            return self.unknown(claim, error)
        if isinstance(exc, RetryLater):
            at = self.next_attempt(claim.attempts + 1)
            if exc.retry_at is not None:
                at = max(exc.retry_at, now)
            return self.retry(claim, error, counts=True, at=at)
        return self.retry(claim, error, counts=True)

    def not_prepared(self, claim: Claim, exc: Exception) -> Outcome:
        """The links or the render failed: a channel's error as any, else retried later."""
        if isinstance(exc, ChannelError):
            return self.failure(claim, exc)
        why = self.say(claim, f"could not prepare the post: {exc!r}")
        log.error("delivery %s: %s", claim.id, why)
        return self.retry(claim, why, counts=True)

    def pause(self, claim: Claim, reason: str) -> Outcome:
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            first = ledger.pause_channel(conn, claim.channel, reason=reason, now=now)
        self.holds.block(claim.channel, None)
        if first:
            log.warning(
                "channel %s paused: %s (fix its credentials, then `storyloop resume %s`)",
                claim.channel,
                reason,
                claim.channel,
            )
        return self.retry(claim, reason, counts=False, at=now)

    def retry(
        self, claim: Claim, error: str, *, counts: bool, at: datetime | None = None
    ) -> Outcome:
        when = at or self.next_attempt(claim.attempts + 1)
        with ledger.transaction(self.engine) as conn:
            state = ledger.mark_retry(
                conn,
                claim,
                at=when,
                error=error,
                now=self.clock(),
                max_attempts=self.backoff.max_attempts,
                counts=counts,
            )
        return Outcome(state)

    def unknown(self, claim: Claim, error: str, *, check_at: datetime | None = None) -> Outcome:
        """In doubt, looked at again at ``check_at`` (now by default)."""
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            ledger.mark_unknown(conn, claim, error=error, now=now, check_at=check_at or now)
        return Outcome.UNKNOWN

    def lookup_failed(self, claim: Claim, exc: Exception) -> Outcome:
        log.warning("delivery %s: lookup failed: %s", claim.id, exc)
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            ledger.mark_unknown(
                conn, claim, error=f"lookup failed: {exc}", now=now, check_at=self.next_attempt(1)
            )
        return Outcome.LOOKUP_FAILED

    def needs_person(self, claim: Claim, why: str) -> Outcome:
        with ledger.transaction(self.engine) as conn:
            ledger.mark_unknown(conn, claim, error=why, now=self.clock(), check_at=None)
        log.warning("delivery %s needs a person: %s", claim.id, why)
        return Outcome.NEEDS_PERSON

    def next_attempt(self, attempt: int) -> datetime:
        b = self.backoff
        delay = min(b.cap, b.base * 2 ** max(attempt - 1, 0))
        return self.clock() + timedelta(seconds=delay * (0.5 + self._random.random() / 2))

    # ------------------------------------------------------------------ giving back

    def story_gone(self, claim: Claim) -> Outcome:
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            ledger.release(conn, claim, at=claim.due_at, now=now, why="story left content/")
            ledger.cancel(conn, claim.id, now=now, by=ledger.BY_PLAN)
        return Outcome.CANCELLED

    def release(self, claim: Claim, *, at: datetime, why: str) -> None:
        self.holds.released(claim.id)
        with ledger.transaction(self.engine) as conn:
            ledger.release(conn, claim, at=at, now=self.clock(), why=why)
