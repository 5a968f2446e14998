"""The plan: due times, windows across time zones and DST, caps, variants, consent, and the diff."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.engine import Connection, Engine

from publisher import ledger, plan
from publisher.model import Manifest, Story
from publisher.settings import Settings
from tests.engine.enginekit import T0, story

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def manifest(*stories: Story) -> Manifest:
    return Manifest(version=1, site_url="http://127.0.0.1:8000", stories=tuple(stories))


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def due_of(settings: Settings, *stories: Story) -> dict[tuple[str, str, str | None], datetime]:
    return {
        (w.story, w.channel, w.variant): w.due_at
        for w in plan.desired(manifest(*stories), settings)
    }


# --------------------------------------------------------------------------- windows and zones


def test_window_moves_early_posts_to_the_opening_in_each_storys_own_zone(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"net": {"window": "08:00-22:00"}})
    berlin = story(
        "b", local(BERLIN, 2026, 3, 28, 6, 30), channels=["net"], timezone="Europe/Berlin"
    )
    shanghai = story(
        "s", local(SHANGHAI, 2026, 3, 28, 6, 30), channels=["net"], timezone="Asia/Shanghai"
    )
    due = due_of(settings, berlin, shanghai)
    assert due[("b", "net", None)] == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert due[("s", "net", None)] == datetime(2026, 3, 28, 0, 0, tzinfo=UTC)  # 08:00 CST


def test_window_opening_follows_berlin_summer_time_but_shanghai_has_none(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"net": {"window": "08:00-22:00"}})
    # 2026-03-29: Berlin springs forward at 02:00 (UTC+1 -> UTC+2); Shanghai stays at UTC+8.
    berlin = story(
        "b", local(BERLIN, 2026, 3, 29, 6, 30), channels=["net"], timezone="Europe/Berlin"
    )
    shanghai = story(
        "s", local(SHANGHAI, 2026, 3, 29, 6, 30), channels=["net"], timezone="Asia/Shanghai"
    )
    due = due_of(settings, berlin, shanghai)
    assert due[("b", "net", None)] == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert due[("s", "net", None)] == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


def test_late_evening_post_waits_for_next_morning_across_the_autumn_change(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"net": {"window": "08:00-22:00"}})
    # 2026-10-25: Berlin falls back at 03:00 (UTC+2 -> UTC+1).
    late = story(
        "b", local(BERLIN, 2026, 10, 24, 23, 30), channels=["net"], timezone="Europe/Berlin"
    )
    assert due_of(settings, late)[("b", "net", None)] == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_a_window_opening_skipped_by_the_dst_change_moves_forward() -> None:
    window = plan.Window(
        datetime.strptime("02:30", "%H:%M").time(), datetime.strptime("04:00", "%H:%M").time()
    )
    due = local(BERLIN, 2026, 3, 29, 1, 0)  # 01:00 CET; 02:30 never happens that night
    opened = plan.in_window(due.astimezone(UTC), window, BERLIN)
    assert opened == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert opened.astimezone(BERLIN).hour == 3


def test_overnight_window_accepts_posts_after_midnight() -> None:
    window = plan.parse_window("22:00-06:00", channel="net")
    inside = local(SHANGHAI, 2026, 11, 23, 1, 0).astimezone(UTC)
    assert plan.in_window(inside, window, SHANGHAI) == inside
    outside = local(SHANGHAI, 2026, 11, 23, 12, 0).astimezone(UTC)
    assert plan.in_window(outside, window, SHANGHAI) == local(SHANGHAI, 2026, 11, 23, 22, 0)


def test_malformed_window_names_the_setting_and_what_was_expected() -> None:
    try:
        plan.parse_window("8am to 10pm", channel="mastodon")
    except Exception as exc:
        assert 'STORYLOOP["channels"]["mastodon"]["window"]' in str(exc)
        assert "HH:MM-HH:MM" in str(exc)
    else:
        raise AssertionError("accepted a malformed window")


# ------------------------------------------------------------------------ caps, variants, consent


def test_daily_cap_moves_the_extra_posts_to_the_next_days_opening(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"net": {"window": "08:00-22:00", "daily_cap": 2}})
    day = [
        story(
            f"s{i}", local(BERLIN, 2026, 3, 28, 10 + i), channels=["net"], timezone="Europe/Berlin"
        )
        for i in range(3)
    ]
    due = due_of(settings, *day)
    assert due[("s0", "net", None)].astimezone(BERLIN).date() == date(2026, 3, 28)
    assert due[("s1", "net", None)].astimezone(BERLIN).date() == date(2026, 3, 28)
    assert due[("s2", "net", None)] == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST


def test_split_variants_give_each_channel_one_headline_and_both_are_used(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"a": {}, "b": {}})
    s = story("v", T0, channels=["a", "b"], variants={"A": "Save on sofas", "B": "Sofas, for less"})
    wanted = plan.desired(manifest(s), settings)
    assert sorted(w.variant or "" for w in wanted) == ["A", "B"]
    assert len({w.channel for w in wanted}) == 2


def test_split_variants_alternate_across_stories_on_one_channel(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"a": {}})
    stories = [
        story(f"v{i}", T0 + timedelta(hours=i), channels=["a"], variants={"A": "x", "B": "y"})
        for i in range(12)
    ]
    assert {w.variant for w in plan.desired(manifest(*stories), settings)} == {"A", "B"}


def test_all_variants_posts_each_headline_a_gap_apart(make_site: Callable[..., Settings]) -> None:
    settings = make_site(channels={"a": {"variants": "all", "variant_gap_hours": 6}})
    s = story("v", T0, channels=["a"], variants={"A": "x", "B": "y"})
    due = due_of(settings, s)
    assert due == {("v", "a", "A"): T0, ("v", "a", "B"): T0 + timedelta(hours=6)}
    assert len({ledger.delivery_id("v", "a", v) for v in "AB"}) == 2


def test_testimonials_without_consent_or_with_expired_consent_are_left_out(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"a": {}})
    stories = [
        story("no", T0, channels=["a"], consent=False),
        story("expired", T0, channels=["a"], consent=True, consent_until=date(2026, 11, 22)),
        story("last-day", T0, channels=["a"], consent=True, consent_until=date(2026, 11, 23)),
        story("open", T0, channels=["a"], consent=True),
    ]
    assert {w.story for w in plan.desired(manifest(*stories), settings)} == {"last-day", "open"}


def test_consent_is_judged_on_the_day_the_post_goes_out_after_a_cap(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site(channels={"a": {"daily_cap": 1}})
    first = story("first", T0, channels=["a"])
    pushed = story(
        "pushed", T0 + timedelta(hours=1), channels=["a"], consent=True, consent_until=T0.date()
    )
    assert {w.story for w in plan.desired(manifest(first, pushed), settings)} == {"first"}


# --------------------------------------------------------------------------- diff and apply


GRACE = timedelta(hours=6)


def diff(
    conn: Connection, settings: Settings, *stories: Story, now: datetime = T0
) -> plan.PlanDiff:
    return plan.diff(conn, plan.desired(manifest(*stories), settings), now=now, grace=GRACE)


def rows(conn: Connection) -> dict[str, Row[Any]]:
    return {r.story: r for r in conn.execute(select(ledger.deliveries)).all()}


def test_applying_the_same_plan_twice_changes_nothing(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}, "b": {}})
    stories = [story(f"s{i}", T0 + timedelta(hours=i), channels=["a", "b"]) for i in range(3)]
    with ledger.transaction(ledger_db) as conn:
        first = diff(conn, settings, *stories)
        plan.apply(conn, first, now=T0)
    with ledger.transaction(ledger_db) as conn:
        before = {r.id: tuple(r) for r in conn.execute(select(ledger.deliveries)).all()}
        second = diff(conn, settings, *stories, now=T0 + timedelta(minutes=1))
        plan.apply(conn, second, now=T0 + timedelta(minutes=1))
        after = {r.id: tuple(r) for r in conn.execute(select(ledger.deliveries)).all()}
    assert len(first.add) == 6
    assert second.changes == 0 and second.unchanged == 6
    assert before == after


def test_moved_publish_time_reschedules_the_pending_delivery(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    with ledger.transaction(ledger_db) as conn:
        plan.apply(
            conn, diff(conn, settings, story("s", T0 + timedelta(hours=2), channels=["a"])), now=T0
        )
        moved = diff(conn, settings, story("s", T0 + timedelta(hours=5), channels=["a"]))
        plan.apply(conn, moved, now=T0)
        row = rows(conn)["s"]
    assert [(w.due_at, old) for w, old in moved.reschedule] == [
        (T0 + timedelta(hours=5), T0 + timedelta(hours=2))
    ]
    assert row.due_at == row.next_attempt_at == T0 + timedelta(hours=5)


def test_removed_story_cancels_its_pending_deliveries_and_returns_if_restored(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    s = story("s", T0 + timedelta(hours=2), channels=["a"])
    with ledger.transaction(ledger_db) as conn:
        plan.apply(conn, diff(conn, settings, s), now=T0)
        removed = diff(conn, settings)
        plan.apply(conn, removed, now=T0)
        assert rows(conn)["s"].state == ledger.CANCELLED
        restored = diff(conn, settings, s)
        plan.apply(conn, restored, now=T0)
        assert rows(conn)["s"].state == ledger.PLANNED
    assert [r.story for r in removed.cancel] == ["s"]
    assert [w.story for w in restored.add] == ["s"]


def test_a_restored_story_starts_afresh_after_a_failed_attempt(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    s = story("s", T0 + timedelta(hours=2), channels=["a"])
    with ledger.transaction(ledger_db) as conn:
        plan.apply(conn, diff(conn, settings, s), now=T0)
        [claim] = ledger.claim_due(
            conn, token="w/1", now=T0 + timedelta(hours=3), lease=timedelta(minutes=2)
        )
        assert ledger.mark_sending(conn, claim, now=T0, lease=timedelta(minutes=2))
        outcome = ledger.mark_retry(
            conn, claim, at=T0 + timedelta(hours=4), error="503", now=T0, max_attempts=5
        )
        assert outcome == ledger.RETRY_WAIT
        plan.apply(conn, diff(conn, settings), now=T0)  # the story leaves content/
        later = T0 + timedelta(hours=1)
        edited = story("s", T0 + timedelta(hours=6), channels=["a"], content_hash="h2")
        plan.apply(conn, diff(conn, settings, edited), now=later)  # and comes back
        [row] = conn.execute(select(ledger.deliveries)).all()
    fresh = {
        "state": ledger.PLANNED,
        "due_at": T0 + timedelta(hours=6),
        "next_attempt_at": T0 + timedelta(hours=6),
        "content_hash": "h2",
        "attempts": 0,
        "last_error": None,
        "cancelled_by": None,
        "claimed_by": None,
        "lease_until": None,
        "created_at": later,
        "updated_at": later,
    }
    assert {k: getattr(row, k) for k in fresh} == fresh


def test_a_plan_worked_out_before_a_delivery_went_out_leaves_it_sent(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    """Two plans diffed against the same ledger (say `plan --apply` beside the scheduler):
    the second one's insert finds the row the first wrote, sent by now, and changes nothing."""
    settings = make_site(channels={"a": {}})
    s = story("s", T0 + timedelta(hours=2), channels=["a"])
    with ledger.transaction(ledger_db) as conn:
        first, second = diff(conn, settings, s), diff(conn, settings, s)
        plan.apply(conn, first, now=T0)
        _send(conn, ledger.delivery_id("s", "a", None))
        before = rows(conn)
        plan.apply(conn, second, now=T0 + timedelta(hours=4))
        after = rows(conn)
    assert [w.story for w in second.add] == ["s"]
    assert after == before and after["s"].state == ledger.SENT


def test_delivery_cancelled_by_hand_is_not_brought_back_by_the_plan(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    s = story("s", T0 + timedelta(hours=2), channels=["a"])
    with ledger.transaction(ledger_db) as conn:
        plan.apply(conn, diff(conn, settings, s), now=T0)
        assert ledger.cancel(conn, ledger.delivery_id("s", "a", None), now=T0)
        again = diff(conn, settings, s)
        plan.apply(conn, again, now=T0)
        assert rows(conn)["s"].state == ledger.CANCELLED
    assert again.changes == 0


def _send(conn: Connection, id_: str) -> None:
    [claim] = ledger.claim_due(
        conn, token="w/1", now=T0 + timedelta(hours=3), lease=timedelta(minutes=2)
    )
    assert claim.id == id_
    assert ledger.mark_sending(conn, claim, now=T0, lease=timedelta(minutes=2))
    receipt = {"remote_id": "r1", "url": "https://net/1"}
    assert ledger.mark_sent_many(conn, [(claim, receipt)], T0) == {claim.id}


def test_story_edited_after_its_post_went_out_is_not_posted_again(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    with ledger.transaction(ledger_db) as conn:
        plan.apply(conn, diff(conn, settings, story("s", T0, channels=["a"])), now=T0)
        _send(conn, ledger.delivery_id("s", "a", None))
        edited = story("s", T0 + timedelta(days=1), channels=["a"], content_hash="h2")
        result = diff(conn, settings, edited)
        plan.apply(conn, result, now=T0)
        row = rows(conn)["s"]
    assert [(r.story, changed) for r, changed in result.sent] == [("s", True)]
    assert result.changes == 0
    assert row.state == ledger.SENT and row.due_at == T0


def test_sent_delivery_is_not_cancelled_when_its_story_is_removed(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    with ledger.transaction(ledger_db) as conn:
        plan.apply(conn, diff(conn, settings, story("s", T0, channels=["a"])), now=T0)
        _send(conn, ledger.delivery_id("s", "a", None))
        result = diff(conn, settings)
        plan.apply(conn, result, now=T0)
        assert rows(conn)["s"].state == ledger.SENT
    assert result.cancel == []


def test_first_plan_marks_old_stories_missed_instead_of_flooding_them_out(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"a": {}})
    old = story("old", T0 - timedelta(hours=7), channels=["a"])
    recent = story("recent", T0 - timedelta(hours=5), channels=["a"])
    with ledger.transaction(ledger_db) as conn:
        result = diff(conn, settings, old, recent)
        plan.apply(conn, result, now=T0)
        states = {k: r.state for k, r in rows(conn).items()}
        claimed = ledger.claim_due(conn, token="w/1", now=T0, lease=timedelta(minutes=2))
    assert [w.story for w in result.missed] == ["old"]
    assert states == {"old": ledger.MISSED, "recent": ledger.PLANNED}
    assert [c.story for c in claimed] == ["recent"]
