"""Ending consent and taking back every copy, exactly once, like publishing.

A testimonial's consent ends when the customer withdraws it (their private link, or the owner
recording a request made in the shop), when its ``Consent-Until`` day has passed, or, for its
copies on other channels, when its scope is "this website only". Then:

1. every pending delivery of it is cancelled at once, through the ledger's own ``cancel``
   (never revived by a re-plan), and the cancellation is recorded as a removal;
2. every delivery already sent becomes a removal that a sweep claims under a lease::

       waiting ──claim──> claimed ──> calling ──API answered──> removed | by_hand
          ^                  │           ├── RetryLater / rate limit / auth ──> retry_wait
          └── lease expired ─┘           └── no answer / lease expired ──> unknown
       unknown ──claim──> checking ──the post is gone──> removed
                                    └── still there / cannot tell ──> calling (delete again)

   A removal whose worker died mid-call is never deleted again blindly: its post is looked up
   first (``Channel.exists``: Mastodon's GET status, Bluesky's getRecord), and a delete that
   answers "not found" counts as removed. What no API can take back (an e-mail, a Telegram post
   older than 48 hours, a webhook's receiver) ends ``by_hand`` with the reason, for the owner.

Every transition is one conditional UPDATE (the state, and the claim token, it starts from) and
one row in ``consent_steps``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from channels.base import (
    AuthProblem,
    Channel,
    ChannelError,
    ContentRejected,
    Deletion,
    OutcomeUnknown,
    Receipt,
    Removed,
    RetryLater,
)
from publisher import adapters, ledger
from publisher.consent.schema import (
    EXPIRED,
    SCOPE,
    WITHDRAWN,
    consent_ends,
    consent_removals,
    consent_steps,
)
from publisher.customers.pull import slug_for
from publisher.customers.records import all_received, photo_root
from publisher.errors import ManifestError
from publisher.model import Story
from publisher.settings import Settings

log = logging.getLogger(__name__)

ENDS_THE_PAGE = (WITHDRAWN, EXPIRED)  # scope "site" keeps the page: only the copies go

CANCEL, DELETE = "cancel", "delete"

WAITING = "waiting"
CLAIMED = "claimed"
CALLING = "calling"
UNKNOWN = "unknown"
CHECKING = "checking"
RETRY_WAIT = "retry_wait"
REMOVED = "removed"
CANCELLED = "cancelled"
BY_HAND = "by_hand"
DONE_BY_HAND = "done_by_hand"  # the owner said they removed it
FINISHED = (REMOVED, CANCELLED, BY_HAND, DONE_BY_HAND)

AUTH_WAIT = timedelta(hours=1)
FAILURE_WAIT = timedelta(minutes=5)

r = consent_removals.c
e = consent_ends.c


# --------------------------------------------------------------------------- ending consent


@dataclass(frozen=True)
class Ended:
    story: str
    reason: str
    how: str
    ended_at: datetime
    invite: str | None


def _ended(row: Row[Any]) -> Ended:
    return Ended(row.story, row.reason, row.how, row.ended_at, row.invite)


def end(
    conn: Connection, story: str, reason: str, how: str, now: datetime, invite: str | None = None
) -> bool:
    """Record that consent ended for ``story``; False when it had ended already. A withdrawal
    replaces a scope-only end (the page goes too then); nothing else is overwritten."""
    found = conn.execute(select(consent_ends).where(e.story == story)).first()
    if found is None:
        conn.execute(
            insert(consent_ends).values(
                story=story, invite=invite, reason=reason, how=how, ended_at=now
            )
        )
        return True
    if found.reason == SCOPE and reason in ENDS_THE_PAGE:
        conn.execute(
            update(consent_ends)
            .where(e.story == story, e.reason == SCOPE)
            .values(reason=reason, how=how, ended_at=now)
        )
        return True
    return False


def ended(engine: Engine, stories: Iterable[str] | None = None) -> dict[str, Ended]:
    stmt = select(consent_ends)
    if stories is not None:
        stmt = stmt.where(e.story.in_(list(stories)))
    with engine.connect() as conn:
        return {row.story: _ended(row) for row in conn.execute(stmt)}


def withdraw(
    engine: Engine, story: str, how: str, now: datetime, invite: str | None = None
) -> Counter[str]:
    """The customer withdrew: record it and cancel the pending deliveries at once; the copies
    already posted are taken back by the next sweep (``storyloop run``, ``consent sweep``)."""
    with ledger.transaction(engine) as conn:
        end(conn, story, WITHDRAWN, how, now, invite)
    return plan_removals(engine, now, [story])


def drop_photos(engine: Engine, var_dir: Path, invite: str | None) -> int:
    """The customer's cleaned photos kept under ``var/testimonials/``: deleted on withdrawal
    (the consent record stays; the photos are no longer ours to keep). How many went."""
    if invite is None:
        return 0
    root = photo_root(var_dir)
    gone = 0
    for item in all_received(engine):
        if item.invite != invite:
            continue
        for name in item.photos:
            path = root / name
            if path.is_file() and path.resolve().is_relative_to(root.resolve()):
                path.unlink()
                gone += 1
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # the folder, once empty
    return gone


def _today_for(story: Story | None, now: datetime) -> date:
    zone = ZoneInfo(story.timezone) if story and story.timezone else ZoneInfo("UTC")
    return now.astimezone(zone).date()


def note_ends(engine: Engine, stories: Mapping[str, Story], now: datetime) -> list[str]:
    """Consents that ended by their terms: a passed ``Consent-Until`` (in the manifest, or as
    the customer chose it on the form) and the scope "website only". The stories newly ended."""
    found: list[tuple[str, str, str, str | None]] = []
    for slug, story in stories.items():
        t = story.testimonial
        if t and t.consent_until and _today_for(story, now) > t.consent_until:
            found.append((slug, EXPIRED, f"Consent-Until {t.consent_until.isoformat()}", None))
    for item in all_received(engine):
        slug = slug_for(item)
        if item.consent_until and _today_for(stories.get(slug), now) > item.consent_until:
            found.append(
                (slug, EXPIRED, f"Consent-Until {item.consent_until.isoformat()}", item.invite)
            )
        elif item.consent_scope == "site":
            found.append((slug, SCOPE, "consent covers this website only", item.invite))
    if not found:
        return []
    known = ended(engine, [f[0] for f in found])
    new = []
    with ledger.transaction(engine) as conn:
        for slug, reason, how, invite in found:
            if slug in known and not (known[slug].reason == SCOPE and reason in ENDS_THE_PAGE):
                continue
            if end(conn, slug, reason, how, now, invite):
                new.append(slug)
    return new


# --------------------------------------------------------------------------- removals


def _step(
    conn: Connection, id_: str, state: str, now: datetime, worker: str | None, detail: str | None
) -> None:
    conn.execute(
        insert(consent_steps).values(
            removal_id=id_, at=now, state=state, worker=worker, detail=detail
        )
    )


def _new_removal(
    conn: Connection, row: Row[Any], action: str, state: str, now: datetime, detail: str | None
) -> None:
    conn.execute(
        insert(consent_removals).values(
            id=row.id,
            story=row.story,
            channel=row.channel,
            variant=row.variant,
            action=action,
            state=state,
            remote_id=row.remote_id,
            url=row.url,
            receipt=row.receipt,
            sent_at=row.sent_at,
            next_attempt_at=now if state == WAITING else None,
            attempts=0,
            detail=detail,
            created_at=now,
            updated_at=now,
        )
    )
    _step(conn, row.id, state, now, None, detail)


def plan_removals(
    engine: Engine, now: datetime, stories: Iterable[str] | None = None
) -> Counter[str]:
    """For every ended consent: cancel what is pending, queue the removal of what was sent.
    A delivery in a worker's hands right now is left for the next sweep (it ends sent, or
    pending again)."""
    ends = ended(engine, stories)
    if not ends:
        return Counter()
    d = ledger.deliveries.c
    with engine.connect() as conn:
        rows = conn.execute(select(ledger.deliveries).where(d.story.in_(list(ends)))).all()
        done = set(conn.execute(select(r.id).where(r.id.in_([row.id for row in rows]))).scalars())
    counts: Counter[str] = Counter()
    for row in rows:
        if row.id in done or row.state in ledger.IN_HAND or row.state == ledger.CANCELLED:
            continue
        try:
            counts.update(_plan_one(engine, row, now))
        except IntegrityError:  # another process queued this copy at the same moment
            continue
    return counts


def _plan_one(engine: Engine, row: Row[Any], now: datetime) -> Counter[str]:
    with ledger.transaction(engine) as conn:
        if conn.execute(select(r.id).where(r.id == row.id)).first() is not None:
            return Counter()
        if row.state == ledger.SENT:
            _new_removal(conn, row, DELETE, WAITING, now, None)
            return Counter({"to remove": 1})
        if ledger.cancel(conn, row.id, now=now, by=ledger.BY_USER):
            detail = None
            if row.state == ledger.UNKNOWN:
                detail = "it may have been posted (no answer came): check the channel by hand"
            _new_removal(conn, row, CANCEL, BY_HAND if detail else CANCELLED, now, detail)
            return Counter({"cancelled": 1})
    return Counter()


@dataclass(frozen=True)
class Job:
    """A removal this process holds, and whether its outcome was unknown (check first)."""

    id: str
    channel: str
    receipt: Receipt
    sent_at: datetime | None
    check_first: bool
    token: str


def _receipt(row: Row[Any]) -> Receipt:
    return adapters.stored_receipt(str(row.remote_id or ""), row.url, row.receipt)


def _move(
    conn: Connection,
    id_: str,
    where: list[Any],
    values: Mapping[str, Any],
    state: str,
    now: datetime,
    worker: str | None,
    detail: str | None = None,
) -> bool:
    done = conn.execute(
        update(consent_removals)
        .where(r.id == id_, *where)
        .values(state=state, updated_at=now, **values)
    )
    if done.rowcount != 1:
        return False
    _step(conn, id_, state, now, worker, detail)
    return True


def recover(engine: Engine, now: datetime) -> int:
    """Leases that ran out: a claim never used goes back to waiting, a call in flight (or a
    check) becomes unknown: the post is looked up before anything is sent again."""
    moved = 0
    free = {"claimed_by": None, "lease_until": None}
    with engine.connect() as conn:  # read first: most sweeps find nothing and take no lock
        stale = conn.execute(
            select(r.id, r.state, r.claimed_by).where(
                r.state.in_((CLAIMED, CALLING, CHECKING)), r.lease_until < now
            )
        ).all()
    if not stale:
        return 0
    with ledger.transaction(engine) as conn:
        for row in stale:
            target = WAITING if row.state == CLAIMED else UNKNOWN
            values = {**free, "next_attempt_at": now}
            why = f"lease of {row.claimed_by} ran out while {row.state}"
            moved += _move(
                conn,
                row.id,
                [r.state == row.state, r.claimed_by == row.claimed_by],
                values,
                target,
                now,
                None,
                why,
            )
    return moved


def claim(
    engine: Engine, token: str, now: datetime, lease: timedelta, limit: int = 20
) -> list[Job]:
    """Removals due now, each taken by one conditional UPDATE (only one process wins it)."""
    due = or_(
        and_(r.state.in_((WAITING, RETRY_WAIT)), r.next_attempt_at <= now),
        and_(r.state == UNKNOWN, or_(r.next_attempt_at.is_(None), r.next_attempt_at <= now)),
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(consent_removals)
            .where(r.action == DELETE, due)
            .order_by(r.created_at)
            .limit(limit)
        ).all()
    jobs = []
    for row in rows:
        check = row.state == UNKNOWN
        target = CHECKING if check else CLAIMED
        values = {"claimed_by": token, "lease_until": now + lease, "attempts": row.attempts + 1}
        with ledger.transaction(engine) as conn:
            won = _move(
                conn,
                row.id,
                [r.state == row.state, r.claimed_by.is_(None)],
                values,
                target,
                now,
                token,
            )
        if won:
            jobs.append(Job(row.id, row.channel, _receipt(row), row.sent_at, check, token))
    return jobs


def _held(job: Job, state: str) -> list[Any]:
    return [r.state == state, r.claimed_by == job.token]


def _finish(
    engine: Engine,
    job: Job,
    from_state: str,
    state: str,
    now: datetime,
    detail: str | None,
    **values: Any,
) -> bool:
    free = {"claimed_by": None, "lease_until": None, "detail": detail, **values}
    with ledger.transaction(engine) as conn:
        return _move(conn, job.id, _held(job, from_state), free, state, now, job.token, detail)


def run(engine: Engine, job: Job, adapter: Channel, now: datetime, lease: timedelta) -> str:
    """One removal to its end (or to a later try): the state it ended in."""
    held = CLAIMED
    if job.check_first:
        held = CHECKING
        try:
            still_there = adapter.exists(job.receipt)
        except ChannelError as exc:
            return _failed(engine, job, held, exc, now)
        if still_there is False:
            _finish(engine, job, held, REMOVED, now, "looked up after a lost answer: gone")
            return REMOVED
    if too_old(adapter, job.sent_at, now) and adapter.delete_within is not None:
        hours = int(adapter.delete_within.total_seconds() // 3600)
        detail = (
            f"posted more than {hours} hours ago: {adapter.name} lets the account delete "
            "it only by hand in its own app now"
        )
        _finish(engine, job, held, BY_HAND, now, detail)
        return BY_HAND
    with ledger.transaction(engine) as conn:
        if not _move(
            conn, job.id, _held(job, held), {"lease_until": now + lease}, CALLING, now, job.token
        ):
            return "lost"
    try:
        outcome = adapter.delete(job.receipt)
    except ChannelError as exc:
        return _failed(engine, job, CALLING, exc, now)
    state = BY_HAND if outcome.outcome is Removed.BY_HAND else REMOVED
    detail = outcome.detail or outcome.outcome.value
    _finish(engine, job, CALLING, state, now, detail, next_attempt_at=None)
    return state


def too_old(adapter: Channel, sent_at: datetime | None, now: datetime) -> bool:
    """Past the age until which the network lets the account delete a post (Telegram: 48 h)."""
    limit = adapter.delete_within
    if adapter.deletion is not Deletion.API_WITHIN or limit is None:
        return False
    return sent_at is None or now - sent_at >= limit


def _failed(engine: Engine, job: Job, held: str, exc: ChannelError, now: datetime) -> str:
    text = str(exc)
    if isinstance(exc, OutcomeUnknown):
        _finish(engine, job, held, UNKNOWN, now, text)
        return UNKNOWN
    if isinstance(exc, ContentRejected):
        _finish(engine, job, held, BY_HAND, now, text)
        return BY_HAND
    if isinstance(exc, RetryLater):
        at = exc.retry_at or now + FAILURE_WAIT
    elif isinstance(exc, AuthProblem):
        at = now + AUTH_WAIT
    else:
        at = now + FAILURE_WAIT
    _finish(
        engine,
        job,
        held,
        RETRY_WAIT if held != CHECKING else UNKNOWN,
        now,
        text,
        next_attempt_at=at,
    )
    return RETRY_WAIT


def mark_done_by_hand(engine: Engine, id_prefix: str, now: datetime, note: str) -> list[str]:
    """The owner removed these by hand (ids as ``consent list`` shows them, or a prefix)."""
    if not re.fullmatch(r"[0-9a-f]{4,32}", id_prefix):
        return []  # not an id: never a LIKE pattern that matches others
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(r.id).where(r.id.like(f"{id_prefix}%"), r.state == BY_HAND)
            ).scalars()
        )
    with ledger.transaction(engine) as conn:
        return [
            i
            for i in ids
            if _move(conn, i, [r.state == BY_HAND], {}, DONE_BY_HAND, now, None, note)
        ]


# --------------------------------------------------------------------------- the sweep


class Remover:
    """Takes back the copies of testimonials whose consent ended, for one process."""

    def __init__(self, engine: Engine, settings: Settings, worker: str) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = worker
        self.lease = timedelta(seconds=settings.engine.lease_seconds)
        self._adapters: dict[str, Channel | str] = {}
        self._passes = 0

    def adapter(self, name: str) -> Channel | str:
        """The channel, or why it cannot be opened (then its copies are for a person)."""
        if name not in self._adapters:
            # the same context the dispatcher builds: the adapter's state (ids it was handed,
            # a cached token) is in the database, where the publishing machine left it
            context = adapters.channel_context(self.settings, self.engine)
            try:
                self._adapters[name] = adapters.open_channel(name, self.settings, context)
            except Exception as exc:  # a channel no longer configured or installed
                self._adapters[name] = f"channel {name!r} cannot be opened ({exc}): remove by hand"
        return self._adapters[name]

    def sweep_logging_errors(
        self, stories: Callable[[], Mapping[str, Story]], now: datetime
    ) -> Counter[str]:
        """The engine's sweep: a failure here is logged and must not keep posts from going out
        (the next sweep tries again); no manifest yet means no testimonial to look at."""
        try:
            try:
                known = stories()
            except ManifestError:
                known = {}
            return self.sweep(known, now)
        except Exception:
            log.exception("consent sweep failed; trying again at the next sweep")
            return Counter()

    def sweep(self, stories: Mapping[str, Story], now: datetime) -> Counter[str]:
        """Note ended consents, cancel and queue, recover stale leases, run what is due."""
        counts: Counter[str] = Counter()
        note_ends(self.engine, stories, now)
        counts.update(plan_removals(self.engine, now))
        recover(self.engine, now)
        self._passes += 1
        token = f"{self.worker}/consent/{self._passes}"
        for job in claim(self.engine, token, now, self.lease):
            adapter = self.adapter(job.channel)
            if isinstance(adapter, str):
                _finish(
                    self.engine,
                    job,
                    CHECKING if job.check_first else CLAIMED,
                    BY_HAND,
                    now,
                    adapter,
                )
                counts[BY_HAND] += 1
                continue
            counts[run(self.engine, job, adapter, now, self.lease)] += 1
        return counts


# --------------------------------------------------------------------------- what the owner sees


@dataclass(frozen=True)
class Copy:
    id: str
    story: str
    channel: str
    variant: str | None
    action: str
    state: str
    url: str | None
    detail: str | None
    updated_at: datetime


def copies(engine: Engine) -> list[tuple[Ended, list[Copy]]]:
    """Every ended consent, newest first, with what happened to each copy."""
    with engine.connect() as conn:
        ends = [
            _ended(row) for row in conn.execute(select(consent_ends).order_by(e.ended_at.desc()))
        ]
        rows = conn.execute(select(consent_removals).order_by(r.channel, r.id)).all()
    by_story: dict[str, list[Copy]] = {}
    for row in rows:
        by_story.setdefault(row.story, []).append(
            Copy(
                row.id,
                row.story,
                row.channel,
                row.variant,
                row.action,
                row.state,
                row.url,
                row.detail,
                row.updated_at,
            )
        )
    return [(end_, by_story.get(end_.story, [])) for end_ in ends]


def steps(engine: Engine, id_: str) -> list[Row[Any]]:
    s = consent_steps.c
    with engine.connect() as conn:
        return list(
            conn.execute(select(consent_steps).where(s.removal_id == id_).order_by(s.id)).all()
        )
