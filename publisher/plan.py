"""The plan: which deliveries the manifest and the settings call for, and how the ledger differs.

The desired deliveries are a pure function of the manifest and the settings (no clock, no
ledger), so planning twice gives the same answer and applying it twice changes nothing. The
clock only decides, when a delivery is first written, whether it is already past the grace
period (``missed``, reported and never sent).

Channel settings read here:

- ``window``: ``"08:00-22:00"`` (or overnight ``"22:00-06:00"``) in the story's time zone; a post
  due outside it moves to the next opening.
- ``daily_cap``: at most this many posts on the channel per day (the story's local day); the rest
  move to the next day's opening, earliest story first.
- ``variants``: ``"split"`` (default) gives each channel one headline variant, alternating across
  the story's channels so variants can be compared channel by channel; ``"all"`` posts every
  variant on the channel, the second ``variant_gap_hours`` (default 24) after the first, and so on.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from publisher import ledger
from publisher.errors import SettingsError
from publisher.model import Manifest, Story
from publisher.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Desired:
    id: str
    story: str
    channel: str
    variant: str | None
    region: str | None
    category: str
    timezone: str
    content_hash: str
    due_at: datetime


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


def parse_window(text: str, *, channel: str) -> Window:
    try:
        a, b = (time.fromisoformat(p.strip()) for p in text.split("-"))
    except ValueError as exc:
        raise SettingsError(
            f'STORYLOOP["channels"]["{channel}"]["window"]: {text!r} is not a posting window '
            '(expected "HH:MM-HH:MM", e.g. "08:00-22:00")'
        ) from exc
    return Window(a, b)


def _local(d: date, t: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a date, made real: a time skipped by a DST change moves forward."""
    return datetime.combine(d, t, tzinfo=zone).astimezone(UTC).astimezone(zone)


def in_window(when: datetime, window: Window | None, zone: ZoneInfo) -> datetime:
    """``when`` if it falls inside the window, else the window's next opening (UTC)."""
    if window is None:
        return when
    local = when.astimezone(zone)
    if window.contains(local.time().replace(tzinfo=None)):
        return when
    day = local.date()
    if window.start > window.end or local.time().replace(tzinfo=None) < window.start:
        opening = _local(day, window.start, zone)
    else:
        opening = _local(day + timedelta(days=1), window.start, zone)
    if opening <= local:
        opening = _local(day + timedelta(days=1), window.start, zone)
    return opening.astimezone(UTC)


def _next_day(when: datetime, window: Window | None, zone: ZoneInfo) -> datetime:
    day = when.astimezone(zone).date() + timedelta(days=1)
    return _local(day, window.start if window else time(0), zone).astimezone(UTC)


# --------------------------------------------------------------------------- desired


def consent_ok(story: Story, on: date) -> bool:
    """Testimonials go out only with consent that has not expired by the day they are posted."""
    t = story.testimonial
    if t is None:
        return story.category != "testimonials"
    return t.consent and (t.consent_until is None or on <= t.consent_until)


def _variants_for(story: Story, channel: str, index: int, mode: str) -> list[str | None]:
    names = sorted(story.variants)
    if not names:
        return [None]
    if mode == "all":
        return list(names)
    if mode != "split":
        raise SettingsError(
            f'STORYLOOP["channels"]["{channel}"]["variants"]: {mode!r} (expected "split" or "all")'
        )
    offset = int(hashlib.sha256(story.slug.encode()).hexdigest()[:8], 16)
    return [names[(index + offset) % len(names)]]


def _candidates(story: Story, settings: Settings) -> Iterable[Desired]:
    configured = settings.channels
    channels = [c for c in story.channels if c in configured]
    for missing in sorted(set(story.channels) - set(configured)):
        log.warning("%s: channel %r is not configured; skipped", story.source, missing)
    for index, channel in enumerate(sorted(channels)):
        conf = configured[channel]
        mode = str(conf.get("variants", "split"))
        gap = timedelta(hours=float(conf.get("variant_gap_hours", 24)))
        for n, variant in enumerate(_variants_for(story, channel, index, mode)):
            yield Desired(
                id=ledger.delivery_id(story.slug, channel, variant),
                story=story.slug,
                channel=channel,
                variant=variant,
                region=story.region,
                category=story.category,
                timezone=story.timezone,
                content_hash=story.content_hash,
                due_at=story.publish_at.astimezone(UTC) + gap * n,
            )


def desired(manifest: Manifest, settings: Settings) -> list[Desired]:
    """Every delivery the content calls for, with windows and daily caps applied."""
    stories = manifest.by_slug()
    found = sorted(
        (c for s in manifest.stories for c in _candidates(s, settings)),
        key=lambda c: (c.due_at, c.story, c.channel, c.variant or ""),
    )
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    out: list[Desired] = []
    for c in found:
        conf = settings.channels[c.channel]
        window = (
            parse_window(str(conf["window"]), channel=c.channel) if conf.get("window") else None
        )
        cap = int(conf["daily_cap"]) if conf.get("daily_cap") else None
        zone = ZoneInfo(c.timezone)
        due = in_window(c.due_at, window, zone)
        while cap is not None and per_day[(c.channel, due.astimezone(zone).date())] >= cap:
            due = in_window(_next_day(due, window, zone), window, zone)
        if not consent_ok(stories[c.story], due.astimezone(zone).date()):
            continue
        per_day[(c.channel, due.astimezone(zone).date())] += 1
        out.append(_replace_due(c, due))
    return out


def _window(conf: Mapping[str, Any], channel: str) -> Window | None:
    return parse_window(str(conf["window"]), channel=channel) if conf.get("window") else None


def _replace_due(c: Desired, due: datetime) -> Desired:
    return Desired(**{**c.__dict__, "due_at": due})


# --------------------------------------------------------------------------- diff


@dataclass
class PlanDiff:
    """What applying the plan would do, in the words ``storyloop plan`` prints."""

    add: list[Desired] = field(default_factory=list)
    reschedule: list[tuple[Desired, datetime]] = field(default_factory=list)  # (new, old due)
    cancel: list[Row[Any]] = field(default_factory=list)
    sent: list[tuple[Row[Any], bool]] = field(default_factory=list)  # (row, edited since sent)
    missed: list[Desired] = field(default_factory=list)  # new, but already past the grace period
    unchanged: int = 0
    refresh: list[Desired] = field(default_factory=list)  # content edited before it went out

    @property
    def changes(self) -> int:
        return len(self.add) + len(self.reschedule) + len(self.cancel) + len(self.missed)


def diff(conn: Connection, wanted: list[Desired], *, now: datetime, grace: timedelta) -> PlanDiff:
    rows = {r.id: r for r in conn.execute(select(ledger.deliveries)).all()}
    out = PlanDiff()
    for w in wanted:
        _diff_one(out, w, rows.pop(w.id, None), now=now, grace=grace)
    for row in rows.values():
        if row.state in ledger.PENDING:
            out.cancel.append(row)
    return out


def _diff_one(
    out: PlanDiff, w: Desired, row: Row[Any] | None, *, now: datetime, grace: timedelta
) -> None:
    if row is None or (row.state == ledger.CANCELLED and row.cancelled_by == ledger.BY_PLAN):
        (out.missed if w.due_at < now - grace else out.add).append(w)
    elif row.state == ledger.SENT:
        out.sent.append((row, row.content_hash != w.content_hash))
    elif row.state == ledger.PLANNED and row.due_at != w.due_at:
        out.reschedule.append((w, row.due_at))
    elif row.state in ledger.PENDING and row.content_hash != w.content_hash:
        out.refresh.append(w)
    else:
        out.unchanged += 1


APPLY_BATCH = 500  # rows per insert, and how often on_progress is told


def apply(
    conn: Connection,
    plan: PlanDiff,
    *,
    now: datetime,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write the diff. Every write is conditional, so a concurrent apply or claim is harmless.

    ``on_progress(deliveries_done, deliveries_total)`` is called after each batch."""
    d = ledger.d
    fresh = [_row(w, ledger.PLANNED, now) for w in plan.add]
    fresh += [_row(w, ledger.MISSED, now) for w in plan.missed]
    total = len(fresh) + len(plan.reschedule) + len(plan.refresh) + len(plan.cancel)
    done = told = 0

    def advance(count: int = 1) -> None:
        nonlocal done, told
        done += count
        if on_progress is not None and (done - told >= APPLY_BATCH or done == total):
            told = done
            on_progress(done, total)

    revived = [r["id"] for r in fresh]
    conn.execute(
        ledger.deliveries.delete().where(
            d.id.in_(revived), d.state == ledger.CANCELLED, d.cancelled_by == ledger.BY_PLAN
        )
    )
    for start in range(0, len(fresh), APPLY_BATCH):
        batch = fresh[start : start + APPLY_BATCH]
        ledger.insert_ignore(conn, ledger.deliveries, ["id"], batch)
        advance(len(batch))
    ledger._event(conn, [w.id for w in plan.add], ledger.PLANNED, now, detail="planned")
    ledger._event(conn, [w.id for w in plan.missed], ledger.MISSED, now, detail="late at plan")
    for w, _old in plan.reschedule:
        conn.execute(
            update(ledger.deliveries)
            .where(d.id == w.id, d.state == ledger.PLANNED)
            .values(due_at=w.due_at, next_attempt_at=w.due_at, updated_at=now)
        )
        advance()
    for w in plan.refresh:
        conn.execute(
            update(ledger.deliveries)
            .where(d.id == w.id, d.state.in_(ledger.PENDING))
            .values(content_hash=w.content_hash, updated_at=now)
        )
        advance()
    for row in plan.cancel:
        ledger.cancel(conn, row.id, now=now, by=ledger.BY_PLAN)
        advance()


def _row(w: Desired, state: str, now: datetime) -> dict[str, Any]:
    return {
        **w.__dict__,
        "state": state,
        "next_attempt_at": w.due_at if state == ledger.PLANNED else None,
        "attempts": 0,
        "last_error": None if state == ledger.PLANNED else "past the grace period when planned",
        "created_at": now,
        "updated_at": now,
    }


def grace_period(settings: Settings) -> timedelta:
    return timedelta(hours=float(settings.engine.get("grace_period_hours", 6)))


def plan_and_apply(
    conn: Connection, manifest: Manifest, settings: Settings, *, now: datetime
) -> PlanDiff:
    result = diff(conn, desired(manifest, settings), now=now, grace=grace_period(settings))
    apply(conn, result, now=now)
    return result
