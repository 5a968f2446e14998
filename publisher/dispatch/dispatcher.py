"""The publish path for claimed deliveries, in the order that makes "exactly once" hold:

1. claim (one conditional UPDATE with a lease; see :func:`publisher.ledger.claim_due`);
2. tracked links stored, the post rendered, and the delivery marked in flight, in one transaction:
   before this commits a crash just lets the lease run out and the delivery goes back to planned;
3. the network is called with a :class:`DeliveryKey` that is the same on every attempt;
4. the receipt is stored before anything else happens to the delivery (for channels that settle a
   crash by key or lookup, together with the other receipts that came back meanwhile, in one
   transaction); from step 2 on, a crash leaves the delivery ``unknown`` and it is resolved
   through the channel's idempotency or lookup, or by a person.

Every step returns an :class:`~publisher.dispatch.outcomes.Outcome`; what a channel's error does
is one table (:data:`~publisher.dispatch.outcomes.ON_ERROR`), written by
:class:`~publisher.dispatch.record.Recorder`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
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

from sqlalchemy.engine import Connection, Engine

from channels.base import (
    Channel,
    ChannelError,
    DeliveryKey,
    Idempotency,
    Links,
    Post,
    Receipt,
    mask_secrets,
)
from publisher import adapters, ledger, plan, tracking
from publisher.dispatch.holds import PassHolds
from publisher.dispatch.outcomes import Outcome
from publisher.dispatch.record import Backoff, Recorder, Sent
from publisher.dispatch.resend import can_look_up, crash_safe, key_expired, may_resend
from publisher.ledger import Claim
from publisher.model import Story
from publisher.settings import Settings

log = logging.getLogger("publisher.dispatch")

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
            lease=timedelta(seconds=e.lease_seconds),
            max_attempts=e.max_attempts,
            grace=plan.grace_period(settings),
            batch=e.claim_batch,
            retry_base=e.retry_base_seconds,
            retry_cap=e.retry_max_seconds,
            threads=max(1, e.publish_threads),
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
        self._lock = threading.Lock()
        self.holds = PassHolds()
        o = self.options
        self.record = Recorder(
            engine, clock, Backoff(o.retry_base, o.retry_cap, o.max_attempts), self.holds, self._say
        )

    # ------------------------------------------------------------------ passes

    def one_pass(
        self, *, replan: Callable[[], object] | None = None, budget: float | None = None
    ) -> Counter[Outcome]:
        """The whole pass ``storyloop publish`` makes and the scheduler's sweep makes: re-plan
        (when given), recover expired leases and mark what is past the grace period, resolve
        unknown outcomes (unless stopping), then publish what is due (:meth:`run_due`)."""
        if replan is not None:
            replan()
        self.housekeeping()
        resolved = self.resolve_unknown() if not self.stop.is_set() else Counter()
        return self.run_due(budget=budget) + resolved

    def run_due(self, *, limit: int | None = None, budget: float | None = None) -> Counter[Outcome]:
        """Publish everything due now, until none is left, we must stop, or ``budget`` seconds
        have passed (then what is in flight is finished and the pass ends, so the caller's
        sweep gets its turn however busy or slow the channels are).

        A pipeline: a few threads send (network calls and outbox files wait on I/O) while this
        thread claims and prepares the next batch and stores the receipts that came back, all
        those waiting in one transaction (group commit). Each delivery's claim keeps two threads,
        or two processes, from ever touching the same one. A pass never claims again what it
        gave back (a held channel's deliveries, a closed window): that is for the next pass."""
        outcomes: Counter[Outcome] = Counter()
        self.holds.clear()
        ends = None if budget is None else time.monotonic() + budget
        token = self._token()
        results: queue.SimpleQueue[Sent | Outcome | BaseException] = queue.SimpleQueue()
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
                    outcomes.update(self.record.store_sent(unstored))
                    unstored = []
                    outcomes.update(d for d in done if isinstance(d, Outcome))
                    for failed in (d for d in done if isinstance(d, BaseException)):
                        raise failed
        except BaseException:
            # Leaving the pool waited for every send it had: the posts that went out keep
            # their receipts before the error goes on (a receipt lost here would only cost a
            # lookup later, but there is no need to lose it).
            while not results.empty():
                if isinstance(left := results.get(), Sent):
                    unstored.append(left)
            self.record.store_what_can_be(unstored)
            raise

    def _go_on(self, ends: float | None) -> bool:
        """Whether this pass may claim more."""
        if self.stop.is_set() or (ends is not None and time.monotonic() >= ends):
            return False
        return self.holds.released_count() < RELEASED_PER_PASS

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

    def resolve_unknown(self) -> Counter[Outcome]:
        """Ask each channel whether an unanswered post went out, before anything is sent again."""
        now = self.clock()
        with ledger.transaction(self.engine) as conn:
            claims = ledger.claim_unknown(
                conn, token=self._token(), now=now, lease=self.options.lease
            )
        return Counter(self._resolve(claim) for claim in claims)

    # ------------------------------------------------------------------ preparing

    def publish(self, claim: Claim) -> Outcome:
        """The whole path for one claimed delivery."""
        checked = self._check(claim)
        if isinstance(checked, Outcome):
            return checked
        return self._prepare_and_send(checked)

    def _check(self, claim: Claim) -> Ready | Outcome:
        """The story still there, the channel open and not on hold, its window open, a token."""
        if self.stop.is_set():
            self.record.release(claim, at=claim.due_at, why="worker stopping")
            return Outcome.STOPPING
        story = self.stories().get(claim.story)
        if story is None:
            return self.record.story_gone(claim)
        try:
            adapter = self._adapter(claim.channel)
        except Exception as exc:  # a channel that cannot even be opened is a settings problem
            return self.record.pause(claim, f"cannot open channel: {exc}")
        held = self._channel_on_hold(claim) or self._window_or_token(claim)
        if held is not None:
            return held
        return Ready(claim, story.in_lang(adapter.settings.get("lang")), adapter)

    def _prepare_batch(self, claims: list[Claim]) -> tuple[list[Ready], Counter[Outcome]]:
        """Check each claim, then prepare together those whose channel resolves a crash safely
        by key or lookup; the others (no way to know after a crash) are prepared one by one,
        just before they are sent."""
        early: Counter[Outcome] = Counter()
        together: list[Ready] = []
        alone: list[Ready] = []
        for claim in claims:
            checked = self._check(claim)
            if isinstance(checked, Outcome):
                early[checked] += 1
            elif crash_safe(checked.adapter):
                together.append(checked)
            else:
                alone.append(checked)
        prepared, failed = self._prepare(together, alone=False)
        early.update(failed)
        return prepared + alone, early

    def _prepare(self, items: list[Ready], *, alone: bool) -> tuple[list[Ready], Counter[Outcome]]:
        """The one prepare path, for one delivery or many: links stored, posts rendered, and
        those rendered marked in flight in one statement, all in one transaction; the ready
        ones, and the outcomes of the others.

        Prepared ``alone``, any failure rolls the transaction back and is that delivery's
        outcome. Together, a post that cannot be rendered is counted and the rest go on; a
        transaction that fails as a whole gives its deliveries back unprepared (``post`` None),
        so each is prepared alone, just before it is sent."""
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
                        posts[claim.id] = adapter.render(item.story, claim.variant, links)
                    except Exception as exc:
                        if alone:
                            raise
                        broken.append((claim, exc))
                ok = [i.claim for i in items if i.claim.id in posts]
                now = self.clock()
                flying = ledger.mark_sending_many(conn, ok, now=now, lease=self.options.lease)
        except Exception as exc:
            if alone:
                return [], Counter([self.record.not_prepared(items[0].claim, exc)])
            why = type(exc).__name__
            log.warning("preparing a batch failed (%s); preparing its deliveries one by one", why)
            return list(items), Counter()
        outcomes = Counter(self.record.not_prepared(claim, exc) for claim, exc in broken)
        outcomes[Outcome.LOST] += len(ok) - len(flying)
        ready = [replace(i, post=posts[i.claim.id]) for i in items if i.claim.id in flying]
        return ready, +outcomes

    def _prepare_and_send(self, item: Ready) -> Outcome:
        """One delivery prepared alone, then sent and its receipt stored at once."""
        ready, outcomes = self._prepare([item], alone=True)
        if not ready:
            (outcome,) = outcomes
            return outcome
        (prepared,) = ready
        assert prepared.post is not None
        return self._send(prepared.claim, prepared.adapter, prepared.post)

    # ------------------------------------------------------------------ sending

    def _send_ready(self, item: Ready) -> Sent | Outcome:
        """Send one delivery. A batch-prepared one (its channel resolves a crash by key or
        lookup) comes back as :class:`Sent` for the group commit; any other has its receipt
        stored here, at once."""
        claim = item.claim
        if self.stop.is_set():
            self.record.release(claim, at=claim.due_at, why="worker stopping")
            return Outcome.STOPPING
        held = self._channel_on_hold(claim)
        if held is not None:
            return held
        if item.post is None:
            return self._prepare_and_send(item)
        sent = self._call(claim, item.adapter, item.post)
        return Sent(claim, sent) if isinstance(sent, Receipt) else sent

    def _send(self, claim: Claim, adapter: Channel, post: Post) -> Outcome:
        sent = self._call(claim, adapter, post)
        if not isinstance(sent, Receipt):
            return sent
        return self.record.sent(claim, sent)

    def _call(self, claim: Claim, adapter: Channel, post: Post) -> Receipt | Outcome:
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
            return self.record.failure(claim, exc)
        except Exception as exc:
            why = self._say(claim, f"unexpected error while sending: {exc!r}")
            log.error("delivery %s: %s", claim.id, why)
            return self.record.unknown(claim, why)

    def _before_resend(
        self, claim: Claim, adapter: Channel, key: DeliveryKey
    ) -> Receipt | Outcome | None:
        """The earlier post if a lookup finds it; NEEDS_PERSON when only a key could tell and
        the network no longer keeps it; None when sending again is safe."""
        if can_look_up(adapter):
            found = adapter.lookup(key)
            if found is not None:
                log.info("delivery %s: already on %s, not sent again", claim.id, claim.channel)
            return found
        if key_expired(claim, adapter, self.clock()) and not adapter.resend_on_unknown:
            return self._needs_person(claim)
        return None

    # ------------------------------------------------------------------ holding back

    def _channel_on_hold(self, claim: Claim) -> Outcome | None:
        """The rest of a batch waits when the channel got paused or rate-limited meanwhile; a
        rate limit's hold ends when its time has come."""
        held, until = self.holds.on_hold(claim.channel, self.clock)
        if not held:
            return None
        self.record.release(claim, at=max(until, claim.due_at), why="channel on hold")
        return Outcome.CHANNEL_ON_HOLD

    def _window_or_token(self, claim: Claim) -> Outcome | None:
        """Posting window closed, or the channel's token bucket empty: give the claim back."""
        conf = self.settings.channels.get(claim.channel, {})
        now = self.clock()
        opening = plan.in_window(now, plan._window(conf, claim.channel), ZoneInfo(claim.timezone))
        if opening > now:
            self.record.release(claim, at=opening, why="posting window closed")
            return Outcome.WINDOW_CLOSED
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
        self.record.release(claim, at=free_at, why="channel rate limit (token bucket)")
        return Outcome.NO_TOKEN

    # ------------------------------------------------------------------ unknown outcomes

    def _resolve(self, claim: Claim) -> Outcome:
        try:
            adapter = self._adapter(claim.channel)
            found = adapter.lookup(DeliveryKey(claim.id, planned_at=claim.due_at))
        except Exception as exc:
            return self.record.lookup_failed(claim, exc)
        if found is not None:
            return self.record.sent(claim, found)
        if may_resend(claim, adapter, self.clock()):
            why = f"not found on {claim.channel}; sending again ({adapter.idempotency.name})"
            return self.record.retry(claim, why, counts=False, at=self.clock())
        return self._needs_person(claim)

    def _needs_person(self, claim: Claim) -> Outcome:
        adapter = self._adapters.get(claim.channel)
        cannot = "offers no way to know"
        if adapter is not None and adapter.idempotency is not Idempotency.NONE:
            cannot = f"no longer keeps the idempotency key ({adapter.key_lifetime}), so cannot tell"
        why = (
            f"{claim.channel} {cannot} whether the post went out: check it, then "
            f"`storyloop resolve {claim.id} --sent URL` or `--resend`"
        )
        return self.record.needs_person(claim, why)

    # ------------------------------------------------------------------ dry run

    def due_posts(self) -> Iterator[tuple[str, str, Post | str]]:
        """What a pass would send now, rendered with untracked links; nothing is written."""
        with self.engine.connect() as conn:
            rows = ledger.due_now(conn, now=self.clock())
        stories = self.stories()
        for row in rows:
            story = stories.get(row.story)
            if story is None:
                yield row.id, row.channel, "story no longer in the manifest"
                continue
            adapter = self._adapter(row.channel)
            story = story.in_lang(adapter.settings.get("lang"))  # the language it posts
            yield row.id, row.channel, adapter.render(story, row.variant, Links())

    # ------------------------------------------------------------------ helpers

    def _say(self, claim: Claim, text: str) -> str:
        """An error as it may be stored and logged: no secret of the channel's in it, even
        when an unexpected exception quoted a URL with a token (Telegram's bot URLs do)."""
        adapter = self._adapters.get(claim.channel)
        return mask_secrets(text, adapter.settings) if adapter is not None else text

    def _claim(self, token: str, batch: int) -> list[Claim]:
        released = self.holds.released_ids()
        with ledger.transaction(self.engine) as conn:
            return ledger.claim_due(
                conn,
                token=token,
                now=self.clock(),
                lease=self.options.lease,
                limit=batch,
                skip_ids=released,
                skip_channels=self.holds.channels(self.clock()),
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


def _tracking_prepare_links() -> PrepareLinks:
    return tracking.prepare_links_many


def _tracking_optouts(engine: Engine) -> set[str]:
    return tracking.optouts(engine)
