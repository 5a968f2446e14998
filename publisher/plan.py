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

import contextlib
import gc
import hashlib
import logging
import math
import time as time_mod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine

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
    _check_mode(mode, channel)
    if mode == "all":
        return list(names)
    return [names[(index + _variant_offset(story)) % len(names)]]


def _check_mode(mode: str, channel: str) -> None:
    if mode not in ("split", "all"):
        raise SettingsError(
            f'STORYLOOP["channels"]["{channel}"]["variants"]: {mode!r} (expected "split" or "all")'
        )


def _variant_offset(story: Story) -> int:
    return int(hashlib.sha256(story.slug.encode()).hexdigest()[:8], 16)


def _channel_rules(
    configured: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[str, timedelta]]:
    """Each channel's variant mode and the gap between its variants, read once per plan."""
    return {
        name: (
            str(conf.get("variants", "split")),
            timedelta(hours=float(conf.get("variant_gap_hours", 24))),
        )
        for name, conf in configured.items()
    }


def _candidates(
    story: Story,
    settings: Settings,
    configured: Mapping[str, Mapping[str, Any]] | None = None,
    rules: Mapping[str, tuple[str, timedelta]] | None = None,
) -> Iterable[Desired]:
    """The story's deliveries at its own time, before windows and caps. What is the same for
    every channel of the story (its time in UTC, its sorted variants and their offset) is
    computed once, and the channels' settings once per plan (``configured``, ``rules``)."""
    if configured is None:
        configured = settings.channels
    if rules is None:
        rules = _channel_rules(configured)
    channels = sorted(c for c in story.channels if c in configured)
    if len(channels) != len(story.channels):
        for missing in sorted(set(story.channels) - set(configured)):
            log.warning("%s: channel %r is not configured; skipped", story.source, missing)
    names = sorted(story.variants)
    offset = _variant_offset(story) if len(names) > 1 else 0
    start = story.publish_at.astimezone(UTC)
    for index, channel in enumerate(channels):
        mode, gap = rules[channel]
        if not names:
            picked: list[str | None] = [None]
        else:
            _check_mode(mode, channel)
            picked = list(names) if mode == "all" else [names[(index + offset) % len(names)]]
        for n, variant in enumerate(picked):
            yield Desired(
                id=ledger.delivery_id(story.slug, channel, variant),
                story=story.slug,
                channel=channel,
                variant=variant,
                region=story.region,
                category=story.category,
                timezone=story.timezone,
                content_hash=story.content_hash,
                due_at=start + gap * n if n else start,
            )


def desired(manifest: Manifest, settings: Settings) -> list[Desired]:
    """Every delivery the content calls for, with windows and daily caps applied.

    Posts are placed earliest first; a post whose day is full on its channel goes to the next
    day's opening, and on, until a day has room. Days that are full are remembered per channel
    (each pointing at a later day to look from, shortened as they are followed), so a post
    behind a long queue jumps straight to the first day with room instead of walking forward a
    day at a time: the cost grows with the number of posts, not with the length of the queue.

    Python's cycle collector is paused meanwhile: the placing makes no cycles, and its full
    collections, each walking every object the process holds (the manifest, the placed posts),
    were a sixth of the placing's CPU at 8,000 stories and grew faster than the posts."""
    with _collector_paused():
        return _desired(manifest, settings)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, back on after it if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _desired(manifest: Manifest, settings: Settings) -> list[Desired]:
    stories = manifest.by_slug()
    configured = settings.channels  # once: the property builds a new dict at every call
    variants = _channel_rules(configured)
    found = [c for s in manifest.stories for c in _candidates(s, settings, configured, variants)]
    found.sort(key=_placing_order)
    rules = {
        name: (_window(conf, name), int(conf["daily_cap"]) if conf.get("daily_cap") else None)
        for name, conf in configured.items()
    }
    zones: dict[str, ZoneInfo] = {}
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    full: dict[str, dict[int, int]] = defaultdict(dict)  # channel: full day -> a later day
    out: list[Desired] = []
    for c in found:
        window, cap = rules[c.channel]
        zone = zones.get(c.timezone) or zones.setdefault(c.timezone, ZoneInfo(c.timezone))
        due = in_window(c.due_at, window, zone)
        if cap is not None:
            due = _first_day_with_room(due, window, zone, cap, c.channel, per_day, full[c.channel])
        day = due.astimezone(zone).date()
        if not consent_ok(stories[c.story], day):
            continue
        count = per_day[(c.channel, day)] = per_day[(c.channel, day)] + 1
        if cap is not None and count >= cap:
            full[c.channel][day.toordinal()] = day.toordinal() + 1
        out.append(c if due == c.due_at else _replace_due(c, due))
    return out


def _placing_order(c: Desired) -> tuple[datetime, str, str, str]:
    return (c.due_at, c.story, c.channel, c.variant or "")


def _first_day_with_room(
    due: datetime,
    window: Window | None,
    zone: ZoneInfo,
    cap: int,
    channel: str,
    per_day: Mapping[tuple[str, date], int],
    full: dict[int, int],
) -> datetime:
    """The first opening from ``due`` on a day the channel has room, as the day-by-day walk
    (next day's opening, again and again) finds it. The jump lands where the walk would as long
    as each step moves one local day, which every window with a start before or after its end
    does; a window that opens and closes at the same minute is walked day by day."""
    start = window.start if window else time(0)
    walk_only = window is not None and window.start == window.end
    while per_day.get((channel, local_day := due.astimezone(zone).date()), 0) >= cap:
        target = _skip_full(full, local_day.toordinal())
        jump = None
        if not walk_only and target > local_day.toordinal():
            jump = in_window(
                _local(date.fromordinal(target), start, zone).astimezone(UTC), window, zone
            )
        if jump is not None and jump.astimezone(zone).date().toordinal() == target:
            due = jump
        else:
            due = in_window(_next_day(due, window, zone), window, zone)
    return due


def _skip_full(full: dict[int, int], day: int) -> int:
    """The first day from ``day`` that is not full; the pointers followed now lead straight
    there (path compression, as in a disjoint-set forest)."""
    root = day
    while root in full:
        root = full[root]
    while day != root:
        full[day], day = root, full[day]
    return root


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
    cancel: list[ledger.Delivery] = field(default_factory=list)
    sent: list[tuple[ledger.Delivery, bool]] = field(default_factory=list)  # (it, edited since)
    missed: list[Desired] = field(default_factory=list)  # new, but already past the grace period
    unchanged: int = 0
    refresh: list[Desired] = field(default_factory=list)  # content edited before it went out
    ledger_rows: int = 0  # rows the ledger held when it was read (sizes the writes' windows)

    @property
    def changes(self) -> int:
        return len(self.add) + len(self.reschedule) + len(self.cancel) + len(self.missed)


def diff(conn: Connection, wanted: list[Desired], *, now: datetime, grace: timedelta) -> PlanDiff:
    """The plan against the ledger (read whole, with the cycle collector paused as in
    ``desired``: a re-plan builds a value for every row)."""
    with _collector_paused():
        return _diff(conn, wanted, now=now, grace=grace)


def _diff(conn: Connection, wanted: list[Desired], *, now: datetime, grace: timedelta) -> PlanDiff:
    rows = {r.id: r for r in ledger.every(conn)}
    out = PlanDiff(ledger_rows=len(rows))
    for w in wanted:
        _diff_one(out, w, rows.pop(w.id, None), now=now, grace=grace)
    for row in rows.values():
        if row.state in ledger.PENDING:
            out.cancel.append(row)
    return out


def _diff_one(
    out: PlanDiff, w: Desired, row: ledger.Delivery | None, *, now: datetime, grace: timedelta
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


def apply(conn: Connection, plan: PlanDiff, *, now: datetime) -> None:
    """Write the diff. Every write is conditional, so a concurrent apply or claim is harmless."""
    write = _prepare(
        conn.dialect.name,
        plan.add,
        plan.missed,
        plan.reschedule,
        plan.refresh,
        plan.cancel,
        now=now,
    )
    write(conn)


# Rows written per transaction by ``apply_in_steps``. Each commit copies every page the step
# changed into SQLite's WAL, and with two indexes keyed by a hash the pages a step changes grow
# with the square root of the ledger times the step (see ``write_order``): the WAL written for a
# whole plan grows as rows ** 1.5 / sqrt(step), the part of the plan's cost that grows fastest
# (the inserts' B-tree searches grow as rows * log(rows)). 400 rows copy 0.7x the pages 200 did
# (150 -> 107 MB at 8,000 stories, 378 -> 272 MB at 16,000); with their rows made before the
# lock, a step holds SQLite's write lock for 6 ms of CPU on average and 8 to 19 ms at worst on
# this project's 2-vCPU machine (9 to 40 ms of wall time at worst with another writer busy; the
# goal is 100 ms).
STEP = 400
SQLITE_CACHE_KIB = 64 * 1024


def apply_in_steps(
    engine: Engine,
    plan: PlanDiff,
    *,
    now: datetime,
    step: int = STEP,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the diff in short transactions of at most ``step`` deliveries each, so the tracker
    and the workers get SQLite's write lock between them; the number of transactions.

    On SQLite each step is followed by a pause as long as the step held the lock: a writer
    waiting in SQLite's busy handler sleeps between its tries (up to 100 ms), and without a
    pause the next step would take the lock again before it woke. The writes are the same
    conditional ones ``apply`` makes, so a step that races a claim or another plan is harmless;
    a plan cut short is completed by the next one, which finds the rest still to do.
    ``on_progress(deliveries_done, deliveries_total)`` is called after each step.

    The cycle collector is paused until the last step is written: a full collection, once the
    placed plan is in memory, took 100 ms at 8,000 stories, and one that fell inside a step
    held the write lock for all of it. The collection it would have made runs after the plan."""
    with _collector_paused():
        return _apply_in_steps(engine, plan, now=now, step=step, on_progress=on_progress)


def _apply_in_steps(
    engine: Engine,
    plan: PlanDiff,
    *,
    now: datetime,
    step: int,
    on_progress: Callable[[int, int], None] | None,
) -> int:
    rows = plan.ledger_rows + len(plan.add) + len(plan.missed)
    work: list[tuple[str, list[Any]]] = [
        ("add", write_order(plan.add, step, rows)),
        ("missed", write_order(plan.missed, step, rows)),
        ("reschedule", list(plan.reschedule)),
        ("refresh", list(plan.refresh)),
        ("cancel", list(plan.cancel)),
    ]
    pause = engine.dialect.name == "sqlite"
    steps = done = 0
    total = sum(len(items) for _, items in work)
    for kind, items in work:
        for i in range(0, len(items), step):
            chunk = {k: [] for k, _ in work} | {kind: items[i : i + step]}
            write = _prepare(  # the step's rows made before the lock is taken
                engine.dialect.name,
                chunk["add"],
                chunk["missed"],
                chunk["reschedule"],
                chunk["refresh"],
                chunk["cancel"],
                now=now,
            )
            began = time_mod.perf_counter()
            with ledger.transaction(engine) as conn:
                if pause:  # the ledger's indexes in memory across steps, as ingest does
                    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
                write(conn)
            steps += 1
            done += len(chunk[kind])
            if on_progress is not None:
                on_progress(done, total)
            if pause:
                time_mod.sleep(min(time_mod.perf_counter() - began, 0.1))
    ledger.refresh_statistics(engine, total)
    return steps


def write_order(new: list[Desired], step: int, rows: int) -> list[Desired]:
    """New deliveries in the order ``apply_in_steps`` writes them: windows of a few steps taken
    in placing order, each window's deliveries in id order, so each step's ids fall in one slice
    of the id space.

    Every step's commit copies each page it changed to SQLite's WAL, and two indexes are keyed
    by the delivery's id, a hash (the table's primary key, the events' ``delivery_id``): 200
    random ids change nearly 200 pages of each once the ledger is large, while the indexes keyed
    by story and due time change a few neighbouring ones. Sorting a window of ``k`` steps by id
    divides the id pages a step changes by ``k`` and multiplies the story and time pages by
    ``k``; the sum is least for ``k`` near the square root of the ledger's id pages, so ``k``
    grows with the ledger: the best ``k`` measured was 4 at 8,000 rows, 8 at 32,000, 12 at
    63,000 and 16 at 127,000 for steps of 200, about ``sqrt(rows / 450)``, and it copied 2.5 times
    fewer pages than placing order at 63,000 and 127,000 rows. The story and time pages a step
    changes grow with the window's rows and the id pages do not, so the best window, in rows,
    grows as ``sqrt(rows * step)``: ``sqrt(rows * 200 / (450 * step))`` steps (8 steps of 400 at
    63,000 rows, which copied 5 MB less to the WAL than 12 of them at 8,000 stories). The writes
    are the same conditional ones whatever their order."""
    window = step * max(1, round(math.sqrt(rows * 200 / (450 * step))))
    if window <= step or len(new) <= step:
        return list(new)
    return [w for i in range(0, len(new), window) for w in sorted(new[i : i + window], key=_id)]


def _id(w: Desired) -> str:
    return w.id


def _prepare(
    dialect: str,
    add: list[Desired],
    missed: list[Desired],
    reschedule: list[tuple[Desired, datetime]],
    refresh: list[Desired],
    cancel: list[ledger.Delivery],
    *,
    now: datetime,
) -> Callable[[Connection], None]:
    """The diff handed to the ledger, which alone writes deliveries and their events: its rows
    made now, written by the function returned."""
    return ledger.prepare_plan(
        dialect,
        add=[w.__dict__ for w in add],
        missed=[w.__dict__ for w in missed],
        reschedule=[(w.id, w.due_at) for w, _old in reschedule],
        refresh=[(w.id, w.content_hash) for w in refresh],
        gone=[row.id for row in cancel],
        now=now,
    )


def grace_period(settings: Settings) -> timedelta:
    return timedelta(hours=settings.engine.grace_period_hours)


def plan_and_apply(
    conn: Connection, manifest: Manifest, settings: Settings, *, now: datetime
) -> PlanDiff:
    result = diff(conn, desired(manifest, settings), now=now, grace=grace_period(settings))
    apply(conn, result, now=now)
    return result


def plan_and_apply_in_steps(
    engine: Engine, manifest: Manifest, settings: Settings, *, now: datetime
) -> PlanDiff:
    """The plan computed with no transaction open, the ledger read without taking the write
    lock (a WAL reader blocks no writer), then written by ``apply_in_steps``."""
    wanted = desired(manifest, settings)
    with engine.connect() as conn:
        result = diff(conn, wanted, now=now, grace=grace_period(settings))
        conn.rollback()
    apply_in_steps(engine, result, now=now)
    return result
