"""The publish path for claimed deliveries, in the order that makes "exactly once" hold:

1. claim (one conditional UPDATE with a lease; see :func:`publisher.ledger.claim_due`);
2. tracked links stored, the post rendered, and the delivery marked in flight, in one transaction:
   before this commits a crash just lets the lease run out and the delivery goes back to planned;
3. the network is called with a :class:`DeliveryKey` that is the same on every attempt;
4. the receipt is stored before anything else happens to the delivery (for channels that settle a
   crash by key or lookup, together with the other receipts that came back meanwhile, in one
   transaction); from step 2 on, a crash leaves the delivery ``unknown`` and it is resolved
   through the channel's idempotency or lookup, or by a person.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine

from channels.base import (
    AuthProblem,
    Channel,
    ChannelError,
    ContentRejected,
    DeliveryKey,
    Idempotency,
    Links,
    OutcomeUnknown,
    Post,
    RateLimited,
    Receipt,
    RetryLater,
    mask_secrets,
)
from publisher import adapters, ledger, plan, tracking
from publisher.ledger import Claim
from publisher.model import Story
from publisher.settings import Settings

log = logging.getLogger(__name__)

SAFE_TO_RESEND = (Idempotency.KEY, Idempotency.RECORD_KEY, Idempotency.LOOKUP)
RELEASED_PER_PASS = 1000  # a pass that gave back this many ends, so the sweep gets its turn


@dataclass(frozen=True)
class Ready:
    """A checked claim; ``post`` is None when it is prepared on its own just before sending."""

    claim: Claim
    story: Story
    adapter: Channel
    post: Post | None = None


class PrepareLinks(Protocol):
    def __call__(
        self, conn: Connection, settings: Settings, requests: Sequence[tracking.LinkRequest]
    ) -> list[Links]: ...


@dataclass(frozen=True)
class Sent:
    """A post the network took, whose receipt is stored with others in one transaction."""

    claim: Claim
    receipt: Receipt


def utcnow() -> datetime:
    return datetime.now(UTC)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Options:
    """Engine settings the publish path reads, with their defaults."""

    lease: timedelta
    max_attempts: int
    grace: timedelta
    batch: int
    retry_base: float
    retry_cap: float
    threads: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        e = settings.engine
        return cls(
            lease=timedelta(seconds=float(e.get("lease_seconds", 120))),
            max_attempts=int(e.get("max_attempts", 8)),
            grace=plan.grace_period(settings),
            batch=int(e.get("claim_batch", 20)),
            retry_base=float(e.get("retry_base_seconds", 30)),
            retry_cap=float(e.get("retry_max_seconds", 3600)),
            threads=max(1, int(e.get("publish_threads", 4))),
        )


class Dispatcher:
    """Publishes due deliveries for one process. Safe to run beside any number of others."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        stories: Callable[[], Mapping[str, Story]],
        *,
        prepare_links: PrepareLinks | None = None,
        channels: Callable[[str], Channel] | None = None,
        clock: Callable[[], datetime] = utcnow,
        worker: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.stories = stories
        self.options = Options.from_settings(settings)
        self.prepare_links = prepare_links or _tracking_prepare_links()
        self._open = channels or self._open_configured
        self._adapters: dict[str, Channel] = {}
        self.clock = clock
        self.worker = worker or worker_name()
        self.stop = stop or threading.Event()
        self._claims = 0
        # Channels held in this pass: rate-limited until a time, or paused (None) for the rest
        # of the pass. The ledger's channel_state holds them across passes and processes.
        self._held: dict[str, datetime | None] = {}
        self._released: set[str] = set()  # given back in this pass: not claimed again in it
        self._random = random.Random()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ passes

    def run_due(self, *, limit: int | None = None, budget: float | None = None) -> Counter[str]:
        """Publish everything due now, until none is left, we must stop, or ``budget`` seconds
        have passed (then what is in flight is finished and the pass ends, so the caller's
        sweep gets its turn however busy or slow the channels are).

        A pipeline: a few threads send (network calls and outbox files wait on I/O) while this
        thread claims and prepares the next batch and stores the receipts that came back, all
        those waiting in one transaction (group commit). Each delivery's claim keeps two threads,
        or two processes, from ever touching the same one. A pass never claims again what it
        gave back (a held channel's deliveries, a closed window): that is for the next pass."""
        outcomes: Counter[str] = Counter()
        self._held.clear()
        with self._lock:
            self._released.clear()
        ends = None if budget is None else time.monotonic() + budget
        token = self._token()
        results: queue.SimpleQueue[Sent | str | BaseException] = queue.SimpleQueue()
        claimed = in_flight = 0
        more = True

        def send(item: Ready) -> None:
            try:
                results.put(self._send_ready(item))
            except BaseException as exc:  # handed to the main thread, which raises it
                results.put(exc)

        unstored: list[Sent] = []
        try:
            with (
                ThreadPoolExecutor(self.options.threads, thread_name_prefix="publish") as pool,
                self._heartbeat(token),
            ):
                while True:
                    more = more and self._go_on(ends) and (limit is None or claimed < limit)
                    if more and in_flight < self.options.batch:
                        batch = (
                            self.options.batch
                            if limit is None
                            else min(self.options.batch, limit - claimed)
                        )
                        claims = self._claim(token, batch)
                        claimed += len(claims)
                        more = bool(claims)
                        ready, early = self._prepare_batch(claims)
                        outcomes.update(early)
                        for item in ready:
                            pool.submit(send, item)
                        in_flight += len(ready)
                        continue
                    if not in_flight:
                        return outcomes
                    done = [results.get()]
                    while not results.empty():
                        done.append(results.get())
                    in_flight -= len(done)
                    unstored = [d for d in done if isinstance(d, Sent)]
                    outcomes.update(self._store_sent(unstored))
                    unstored = []
                    outcomes.update(d for d in done if isinstance(d, str))
                    for failed in (d for d in done if isinstance(d, BaseException)):
                        raise failed
        except BaseException:
            # Leaving the pool waited for every send it had: the posts that went out keep
            # their receipts before the error goes on (a receipt lost here would only cost a
            # lookup later, but there is no need to lose it).
            while not results.empty():
                if isinstance(left := results.get(), Sent):
                    unstored.append(left)
            self._store_what_can_be(unstored)
            raise

    def _go_on(self, ends: float | None) -> bool:
        """Whether this pass may claim more."""
        if self.stop.is_set() or (ends is not None and time.monotonic() >= ends):
            return False
        with self._lock:
            return len(self._released) < RELEASED_PER_PASS

    def _store_what_can_be(self, sent: list[Sent]) -> None:
        """On the way out after an error: the receipts together, else one by one."""
        try:
            self._store_sent(sent)
            return
        except Exception:
            pass
        for one in sent:
            try:
                self._store_sent([one])
            except Exception as exc:
                log.error(
                    "delivery %s: sent as %s, receipt not stored (%s); settled by lookup later",
                    one.claim.id,
                    one.receipt.url,
                    type(exc).__name__,
                )

    def _prepare_batch(self, claims: list[Claim]) -> tuple[list[Ready], Counter[str]]:
        """Check each claim, then prepare in one transaction (links, render, one in-flight
        UPDATE) those whose channel resolves a crash safely by key or lookup; the others (no
        way to know after a crash) are prepared one by one, just before they are sent."""
        early: Counter[str] = Counter()
        batchable: list[Ready] = []
        ready: list[Ready] = []
        for claim in claims:
            checked = self._check(claim)
            if isinstance(checked, str):
                early[checked] += 1
            elif self._crash_safe(checked.adapter):
                batchable.append(checked)
            else:
                ready.append(checked)
        prepared, failed = self._prepare_together(batchable)
        early.update(failed)
        return prepared + ready, early

    def _crash_safe(self, adapter: Channel) -> bool:
        return adapter.idempotency in SAFE_TO_RESEND or adapter.resend_on_unknown

    def _prepare_together(self, items: list[Ready]) -> tuple[list[Ready], Counter[str]]:
        if not items:
            return [], Counter()
        posts: dict[str, Post] = {}
        broken: list[tuple[Claim, Exception]] = []
        try:
            with ledger.transaction(self.engine) as conn:
                requests = [
                    tracking.LinkRequest(i.claim.id, i.story, i.claim.channel, i.claim.variant)
                    for i in items
                ]
                every_links = self.prepare_links(conn, self.settings, requests)
                for item, links in zip(items, every_links, strict=True):
                    claim, adapter = item.claim, item.adapter
                    try:
                        posts[claim.id] = adapter.render(
                            item.story, claim.variant, links, adapter.settings
                        )
                    except Exception as exc:
                        broken.append((claim, exc))
                ok = [i.claim for i in items if i.claim.id in posts]
                now = self.clock()
                flying = ledger.mark_sending_many(conn, ok, now=now, lease=self.options.lease)
        except Exception as exc:
            why = type(exc).__name__
            log.warning("preparing a batch failed (%s); preparing its deliveries one by one", why)
            return list(items), Counter()
        outcomes = Counter(self._not_prepared(claim, exc) for claim, exc in broken)
        outcomes["lost"] += len(ok) - len(flying)
        ready = [replace(i, post=posts[i.claim.id]) for i in items if i.claim.id in flying]
        return ready, +outcomes

    def _not_prepared(self, claim: Claim, exc: Exception) -> str:
        if isinstance(exc, ChannelError):
            return self._failure(claim, exc)
        why = self._say(claim, f"could not prepare the post: {exc!r}")
        log.error("delivery %s: %s", claim.id, why)
        return self._retry(claim, why, counts=True)

    def _send_ready(self, item: Ready) -> Sent | str:
        """Send one delivery. A batch-prepared one (its channel resolves a crash by key or
        lookup) comes back as :class:`Sent` for the group commit; any other has its receipt
        stored here, at once."""
        claim = item.claim
        if self.stop.is_set():
            self._release(claim, at=claim.due_at, why="worker stopping")
            return "released"
        held = self._channel_held(claim)
        if held is not None:
            return held
        if item.post is None:
            post = self._prepare(claim, item.story, item.adapter)
            return self._send(claim, item.adapter, post) if isinstance(post, Post) else post
        sent = self._call(claim, item.adapter, item.post)
        return Sent(claim, sent) if isinstance(sent, Receipt) else sent

    @contextlib.contextmanager
    def _heartbeat(self, token: str) -> Iterator[None]:
        """Renew the batch's leases while it is being worked on, however slow the network."""
        done = threading.Event()
        every = self.options.lease.total_seconds() / 3

        def beat() -> None:
            while not done.wait(every):
                now = self.clock()
                try:
                    with ledger.transaction(self.engine) as conn:
                        until = now + self.options.lease
                        ledger.extend_leases(conn, token=token, until=until, now=now)
                except Exception as exc:  # a lost beat is retried at the next one
                    log.warning("renewing leases failed (%s); trying again", type(exc).__name__)

        thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def housekeeping(self) -> tuple[list[str], list[str], list[str]]:
        """Expired leases recovered, and planned deliveries past the grace period marked missed."""
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            released, unknown = ledger.recover_expired(conn, now=now)
            missed = ledger.mark_missed(conn, now=now, grace=self.options.grace)
        for id_ in missed:
            log.warning("delivery %s missed: more than %s late; not sent", id_, self.options.grace)
        return released, unknown, missed

    def resolve_unknown(self) -> Counter[str]:
        """Ask each channel whether an unanswered post went out, before anything is sent again."""
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            claims = ledger.claim_unknown(
                conn, token=self._token(), now=now, lease=self.options.lease
            )
        return Counter(self._resolve(claim) for claim in claims)

    # ------------------------------------------------------------------ one delivery

    def publish(self, claim: Claim) -> str:
        """The whole path for one claimed delivery."""
        checked = self._check(claim)
        if isinstance(checked, str):
            return checked
        post = self._prepare(claim, checked.story, checked.adapter)
        if not isinstance(post, Post):
            return post
        return self._send(claim, checked.adapter, post)

    def _check(self, claim: Claim) -> Ready | str:
        """The story still there, the channel open and not on hold, its window open, a token."""
        if self.stop.is_set():
            self._release(claim, at=claim.due_at, why="worker stopping")
            return "released"
        story = self.stories().get(claim.story)
        if story is None:
            return self._story_gone(claim)
        try:
            adapter = self._adapter(claim.channel)
        except Exception as exc:  # a channel that cannot even be opened is a settings problem
            return self._pause(claim, f"cannot open channel: {exc}")
        held = self._channel_held(claim) or self._hold_back(claim)
        if held is not None:
            return held
        return Ready(claim, story.in_lang(adapter.settings.get("lang")), adapter)

    def _send(self, claim: Claim, adapter: Channel, post: Post) -> str:
        sent = self._call(claim, adapter, post)
        if not isinstance(sent, Receipt):
            return sent
        return self._sent(claim, sent)

    def _call(self, claim: Claim, adapter: Channel, post: Post) -> Receipt | str:
        """The network call, with the same key on every attempt; a failure is dealt with here.
        An attempt that failed before may have posted all the same (a 5xx after the network
        made the post): look first where the channel can."""
        key = DeliveryKey(claim.id, planned_at=claim.due_at)
        try:
            if claim.attempts:
                earlier = self._before_resend(claim, adapter, key)
                if earlier is not None:
                    return earlier
            return adapter.publish(post, key)
        except ChannelError as exc:
            return self._failure(claim, exc)
        except Exception as exc:
            why = self._say(claim, f"unexpected error while sending: {exc!r}")
            log.error("delivery %s: %s", claim.id, why)
            return self._unknown(claim, why)

    def _before_resend(
        self, claim: Claim, adapter: Channel, key: DeliveryKey
    ) -> Receipt | str | None:
        """The earlier post if a lookup finds it; "held" when only a key could tell and the
        network no longer keeps it; None when sending again is safe."""
        if can_look_up(adapter):
            found = adapter.lookup(key)
            if found is not None:
                log.info("delivery %s: already on %s, not sent again", claim.id, claim.channel)
            return found
        if self._key_expired(claim, adapter) and not adapter.resend_on_unknown:
            return self._hold(claim)
        return None

    def _key_expired(self, claim: Claim, adapter: Channel) -> bool:
        """Whether the network may have forgotten the key: measured from the planned time, which
        is never later than the first attempt, so a key is never trusted too long."""
        lifetime = adapter.key_lifetime
        return lifetime is not None and self.clock() - claim.due_at >= lifetime

    def _may_resend(self, claim: Claim, adapter: Channel) -> bool:
        """After a lookup found nothing (or none was possible): may the post go out again?"""
        if adapter.resend_on_unknown or can_look_up(adapter):
            return True
        if adapter.idempotency in (Idempotency.KEY, Idempotency.RECORD_KEY):
            return not self._key_expired(claim, adapter)
        return False

    def _prepare(self, claim: Claim, story: Story, adapter: Channel) -> Post | str:
        """Links stored, post rendered, delivery marked in flight: one transaction."""
        try:
            with ledger.transaction(self.engine) as conn:
                request = tracking.LinkRequest(claim.id, story, claim.channel, claim.variant)
                (links,) = self.prepare_links(conn, self.settings, [request])
                post = adapter.render(story, claim.variant, links, adapter.settings)
                now = self.clock()
                if not ledger.mark_sending(conn, claim, now=now, lease=self.options.lease):
                    return "lost"
            return post
        except ChannelError as exc:
            return self._failure(claim, exc)
        except Exception as exc:
            why = self._say(claim, f"could not prepare the post: {exc!r}")
            log.error("delivery %s: %s", claim.id, why)
            return self._retry(claim, why, counts=True)

    def _channel_held(self, claim: Claim) -> str | None:
        """The rest of a batch waits when the channel got paused or rate-limited meanwhile; a
        rate limit's hold ends when its time has come."""
        if claim.channel not in self._held:
            return None
        now = self.clock()
        until = self._held.get(claim.channel, now)
        if until is not None and until <= now:
            self._held.pop(claim.channel, None)
            return None
        self._release(claim, at=max(until or now, claim.due_at), why="channel on hold")
        return "held back"

    def _held_channels(self) -> list[str]:
        """Channels this pass must not claim for: paused, or rate-limited until later."""
        now = self.clock()
        return [c for c, until in list(self._held.items()) if until is None or until > now]

    def _hold_back(self, claim: Claim) -> str | None:
        """Posting window closed, or the channel's token bucket empty: give the claim back."""
        conf = self.settings.channels.get(claim.channel, {})
        now = self.clock()
        opening = plan.in_window(now, plan._window(conf, claim.channel), ZoneInfo(claim.timezone))
        if opening > now:
            self._release(claim, at=opening, why="posting window closed")
            return "deferred"
        rate = conf.get("rate")
        if not rate:
            return None
        per_minute = float(rate.get("per_minute", 60))
        with ledger.transaction(self.engine) as conn:
            free_at = ledger.take_token(
                conn, claim.channel, per_minute=per_minute, burst=int(rate.get("burst", 1)), now=now
            )
        if free_at is None:
            return None
        self._release(claim, at=free_at, why="channel rate limit (token bucket)")
        return "throttled"

    # ------------------------------------------------------------------ outcomes

    def _sent(self, claim: Claim, receipt: Receipt) -> str:
        return ledger.SENT if self._store_sent([Sent(claim, receipt)])[ledger.SENT] else "lost"

    def _store_sent(self, sent: list[Sent]) -> Counter[str]:
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
        return Counter({ledger.SENT: len(stored), "lost": len(sent) - len(stored)}) + Counter()

    def _say(self, claim: Claim, text: str) -> str:
        """An error as it may be stored and logged: no secret of the channel's in it, even
        when an unexpected exception quoted a URL with a token (Telegram's bot URLs do)."""
        adapter = self._adapters.get(claim.channel)
        return mask_secrets(text, adapter.settings) if adapter is not None else text

    def _failure(self, claim: Claim, exc: ChannelError) -> str:
        now = self.clock()
        error = self._say(claim, str(exc))
        if isinstance(exc, RateLimited):
            until = max(exc.until or now + timedelta(seconds=60), now)
            with ledger.transaction(self.engine) as conn:
                ledger.block_channel(conn, claim.channel, until=until, now=now)
            self._held[claim.channel] = until
            log.info("channel %s rate-limited until %s", claim.channel, until.isoformat())
            return self._retry(claim, error, counts=False, at=until)
        if isinstance(exc, RetryLater):
            at = self._backoff(claim.attempts + 1)
            if exc.retry_at is not None:
                at = max(exc.retry_at, now)
            return self._retry(claim, error, counts=True, at=at)
        if isinstance(exc, AuthProblem):
            return self._pause(claim, error)
        if isinstance(exc, ContentRejected):
            with ledger.transaction(self.engine) as conn:
                ledger.mark_failed(conn, claim, error=error, now=now)
            log.error("delivery %s rejected by %s: %s", claim.id, claim.channel, error)
            return ledger.FAILED
        if isinstance(exc, OutcomeUnknown):
            return self._unknown(claim, error)
        return self._retry(claim, error, counts=True)

    def _pause(self, claim: Claim, reason: str) -> str:
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            first = ledger.pause_channel(conn, claim.channel, reason=reason, now=now)
        self._held[claim.channel] = None
        if first:
            log.warning(
                "channel %s paused: %s (fix its credentials, then `storyloop resume %s`)",
                claim.channel,
                reason,
                claim.channel,
            )
        return self._retry(claim, reason, counts=False, at=now)

    def _retry(self, claim: Claim, error: str, *, counts: bool, at: datetime | None = None) -> str:
        when = at or self._backoff(claim.attempts + 1)
        with ledger.transaction(self.engine) as conn:
            return ledger.mark_retry(
                conn,
                claim,
                at=when,
                error=error,
                now=self.clock(),
                max_attempts=self.options.max_attempts,
                counts=counts,
            )

    def _unknown(self, claim: Claim, error: str) -> str:
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            ledger.mark_unknown(conn, claim, error=error, now=now, check_at=now)
        return ledger.UNKNOWN

    def _backoff(self, attempt: int) -> datetime:
        """Exponential backoff with jitter, so many failed posts do not come back all at once."""
        delay = min(self.options.retry_cap, self.options.retry_base * 2 ** max(attempt - 1, 0))
        return self.clock() + timedelta(seconds=delay * (0.5 + self._random.random() / 2))

    def _story_gone(self, claim: Claim) -> str:
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            ledger.release(conn, claim, at=claim.due_at, now=now, why="story left content/")
            ledger.cancel(conn, claim.id, now=now, by=ledger.BY_PLAN)
        return ledger.CANCELLED

    def _release(self, claim: Claim, *, at: datetime, why: str) -> None:
        with self._lock:
            self._released.add(claim.id)
        with ledger.transaction(self.engine) as conn:
            ledger.release(conn, claim, at=at, now=self.clock(), why=why)

    # ------------------------------------------------------------------ unknown outcomes

    def _resolve(self, claim: Claim) -> str:
        try:
            adapter = self._adapter(claim.channel)
            found = adapter.lookup(DeliveryKey(claim.id, planned_at=claim.due_at))
        except Exception as exc:
            log.warning("delivery %s: lookup failed: %s", claim.id, exc)
            now = self.clock()
            with ledger.transaction(self.engine) as conn:
                ledger.mark_unknown(
                    conn, claim, error=f"lookup failed: {exc}", now=now, check_at=self._backoff(1)
                )
            return "unresolved"
        if found is not None:
            return self._sent(claim, found)
        if self._may_resend(claim, adapter):
            why = f"not found on {claim.channel}; sending again ({adapter.idempotency.name})"
            return self._retry(claim, why, counts=False, at=self.clock())
        return self._hold(claim)

    def _hold(self, claim: Claim) -> str:
        adapter = self._adapters.get(claim.channel)
        cannot = "offers no way to know"
        if adapter is not None and adapter.idempotency is not Idempotency.NONE:
            cannot = f"no longer keeps the idempotency key ({adapter.key_lifetime}), so cannot tell"
        why = (
            f"{claim.channel} {cannot} whether the post went out: check it, then "
            f"`storyloop resolve {claim.id} --sent URL` or `--resend`"
        )
        with ledger.transaction(self.engine) as conn:
            ledger.mark_unknown(conn, claim, error=why, now=self.clock(), check_at=None)
        log.warning("delivery %s needs a person: %s", claim.id, why)
        return "held"

    # ------------------------------------------------------------------ dry run

    def due_posts(self) -> Iterator[tuple[str, str, Post | str]]:
        """What a pass would send now, rendered with untracked links; nothing is written."""
        d = ledger.d
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ledger.deliveries)
                .where(and_(d.state.in_(ledger.PENDING), d.next_attempt_at <= now))
                .order_by(d.next_attempt_at, d.id)
            ).all()
        stories = self.stories()
        for row in rows:
            story = stories.get(row.story)
            if story is None:
                yield row.id, row.channel, "story no longer in the manifest"
                continue
            adapter = self._adapter(row.channel)
            story = story.in_lang(adapter.settings.get("lang"))  # the language it posts
            yield row.id, row.channel, adapter.render(story, row.variant, Links(), adapter.settings)

    # ------------------------------------------------------------------ helpers

    def _claim(self, token: str, batch: int) -> list[Claim]:
        with self._lock:
            released = list(self._released)
        with ledger.transaction(self.engine) as conn:
            return ledger.claim_due(
                conn,
                token=token,
                now=self.clock(),
                lease=self.options.lease,
                limit=batch,
                skip_ids=released,
                skip_channels=self._held_channels(),
            )

    def _token(self) -> str:
        self._claims += 1
        return f"{self.worker}/{self._claims}"

    def _adapter(self, name: str) -> Channel:
        with self._lock:
            if name not in self._adapters:
                self._adapters[name] = self._open(name)
            return self._adapters[name]

    def _open_configured(self, name: str) -> Channel:
        context = adapters.channel_context(
            self.settings, self.engine, optouts=lambda: _tracking_optouts(self.engine)
        )
        return adapters.open_channel(name, self.settings, context)


def can_look_up(adapter: Channel) -> bool:
    """LOOKUP and RECORD_KEY channels find an earlier post by declaration; a KEY channel can
    when it implements ``lookup`` (Mastodon searches its own recent statuses)."""
    if adapter.idempotency in (Idempotency.LOOKUP, Idempotency.RECORD_KEY):
        return True
    return adapter.idempotency is Idempotency.KEY and type(adapter).lookup is not Channel.lookup


def _tracking_prepare_links() -> PrepareLinks:
    return tracking.prepare_links_many


def _tracking_optouts(engine: Engine) -> set[str]:
    return tracking.optouts(engine)
