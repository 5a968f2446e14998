"""The consent sweep on a real database (SQLite, then PostgreSQL): ``Consent-Until`` passing in
the story's own time zone, a scope that leaves out social accounts, Telegram posts older than
48 hours reported for a person, e-mail that cannot be recalled, and the owner's listing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine

from publisher import db, ledger, plan
from publisher.cli import main
from publisher.consent import removals
from publisher.consent.build import withdrawn
from publisher.consent.schema import EXPIRED, SCOPE, WITHDRAWN, consent_ends
from publisher.content import Header
from publisher.model import Manifest, Story
from publisher.settings import Settings
from tests.customers.consentkit import received, slug
from tests.engine.enginekit import story, write_manifest, write_settings

MASTODON = "https://mastodon.example"
TG = "https://api.telegram.org/bot123456:TELE-token"
BERLIN = "Europe/Berlin"


@pytest.fixture
def site(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("SL_TEST_MASTODON", "masto-token")
    monkeypatch.setenv("SL_TEST_TELEGRAM", "123456:TELE-token")
    monkeypatch.setenv("SL_TEST_SMTP", "smtp-password")
    channels: dict[str, dict[str, Any]] = {
        "mastodon": {"instance": MASTODON, "token": {"env": "SL_TEST_MASTODON"}},
        "telegram": {
            "chat_id": "@cedarandclay",
            "bot_token": {"env": "SL_TEST_TELEGRAM"},
            "variants": "all",
            "variant_gap_hours": 24,
        },
        "email": {
            "host": "127.0.0.1",
            "port": 2525,
            "sender": "Cedar & Clay <shop@example.com>",
            "username": "shop",
            "password": {"env": "SL_TEST_SMTP"},
            "subscribers": "content/subscribers.csv",
        },
    }
    settings = write_settings(tmp_path / "site", db_url=db_url, channels=channels)
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    engine.dispose()
    yield settings


def _engine(settings: Settings) -> Engine:
    return db.connect(settings.database_url)


def post_all(engine: Engine, settings: Settings, stories: list[Story], at: datetime) -> None:
    """Plan the stories and record every delivery due by ``at`` as sent then, with a receipt
    shaped like its adapter's (the ledger's own transitions, as the dispatcher makes them)."""
    manifest = Manifest(version=1, site_url="http://127.0.0.1:8000", stories=tuple(stories))
    write_manifest(settings.root, stories)
    plan.plan_and_apply_in_steps(engine, manifest, settings, now=at - timedelta(days=3))
    with ledger.transaction(engine) as conn:
        claims = ledger.claim_due(conn, token="t", now=at, lease=timedelta(minutes=5))
        sent = []
        for n, claim in enumerate(claims):
            assert ledger.mark_sending(conn, claim, now=at, lease=timedelta(minutes=5))
            receipt: dict[str, Any] = {"remote_id": f"{4200 + n}", "url": None}
            if claim.channel == "mastodon":
                receipt = {
                    "remote_id": f"11351241793462{n:04d}",
                    "url": f"{MASTODON}/@cc/11351241793462{n:04d}",
                    "uri": f"{MASTODON}/users/cc/statuses/11351241793462{n:04d}",
                }
            elif claim.channel == "telegram":
                receipt = {"remote_id": str(40 + n), "url": f"https://t.me/cedarandclay/{40 + n}"}
            sent.append((claim, receipt))
        ledger.mark_sent_many(conn, sent, at)


def deliveries(engine: Engine) -> dict[tuple[str, str | None], Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(ledger.deliveries)).all()
    return {(r.channel, r.variant): r for r in rows}


def sweep(engine: Engine, settings: Settings, stories: list[Story], now: datetime) -> Any:
    remover = removals.Remover(engine, settings, "test-worker")
    return remover.sweep({s.slug: s for s in stories}, now)


def test_consent_until_ends_the_copies_after_that_day_in_the_story_s_time_zone(
    site: Settings,
) -> None:
    engine = _engine(site)
    last_day = date(2026, 12, 5)
    published = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    t = story(
        "xiamen-lin-moisture",
        published,
        channels=["mastodon", "telegram"],
        variants={"a": "No more mould", "b": "Plum rain, dry walls"},
        consent=True,
        consent_until=last_day,
        timezone=BERLIN,
    )
    post_all(engine, site, [t], published)
    before = deliveries(engine)
    assert before[("telegram", "b")].state == ledger.PLANNED  # a day after its sister post
    with responses.RequestsMock() as rsps:
        # the last day, 23:30 in Berlin: consent still holds
        assert not sweep(engine, site, [t], datetime(2026, 12, 5, 22, 30, tzinfo=UTC))
        assert len(rsps.calls) == 0
        status = next(r.remote_id for (c, _), r in before.items() if c == "mastodon")
        rsps.delete(f"{MASTODON}/api/v1/statuses/{status}", json={"id": status, "text": "…"})
        rsps.post(f"{TG}/deleteMessage", json={"ok": True, "result": True})
        # 00:30 in Berlin the next day (still the 5th in UTC): it has ended
        counts = sweep(engine, site, [t], datetime(2026, 12, 5, 23, 30, tzinfo=UTC))
        assert sorted(str(c.request.method) for c in rsps.calls) == ["DELETE", "POST"]
    assert counts == {"cancelled": 1, "to remove": 2, removals.REMOVED: 2}
    after = deliveries(engine)
    assert after[("telegram", "b")].state == ledger.CANCELLED
    assert after[("telegram", "b")].cancelled_by == ledger.BY_USER
    [(end, copies)] = removals.copies(engine)
    assert (end.reason, end.how) == (EXPIRED, "Consent-Until 2026-12-05")
    assert sorted((c.channel, c.state) for c in copies) == [
        ("mastodon", removals.REMOVED),
        ("telegram", removals.CANCELLED),
        ("telegram", removals.REMOVED),
    ]
    # a second sweep finds nothing left to do and calls no network
    with responses.RequestsMock() as rsps:
        assert not sweep(engine, site, [t], datetime(2026, 12, 6, 9, 0, tzinfo=UTC))
    engine.dispose()


def test_a_scope_of_this_website_only_takes_back_every_copy_but_keeps_the_page(
    site: Settings, tmp_path: Path
) -> None:
    engine = _engine(site)
    item = received(engine, site.var_dir, scope="site", photos=(b"cleaned jpeg",))
    photo = site.var_dir / "testimonials" / item.photos[0]
    assert photo.is_file()
    published = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
    t = story(slug(item), published, channels=["mastodon"], consent=True, timezone=BERLIN)
    post_all(engine, site, [t], published)
    status = deliveries(engine)[("mastodon", None)].remote_id
    with responses.RequestsMock() as rsps:
        rsps.delete(f"{MASTODON}/api/v1/statuses/{status}", json={"id": status, "text": "…"})
        counts = sweep(engine, site, [t], published + timedelta(minutes=1))
    assert counts == {"to remove": 1, removals.REMOVED: 1}
    ends = removals.ended(engine)
    assert ends[slug(item)].reason == SCOPE
    header = Header(f"content/testimonials/{slug(item)}.md", {"slug": slug(item)}, {"consent": 5})
    assert withdrawn([header], site.engine, site.root) == []  # the website may keep it

    # the customer then withdraws (told the shop by phone): the page goes at the next build
    result = CliRunner().invoke(
        main,
        ["--config", str(site.source), "consent", "withdraw", slug(item), "--how", "by phone"],
    )
    assert result.exit_code == 0, result.output
    assert removals.ended(engine)[slug(item)].reason == WITHDRAWN
    assert not photo.exists() and not photo.parent.exists()  # the photos are not kept
    [problem] = withdrawn([header], site.engine, site.root)
    assert (problem.field, problem.line, problem.severity) == ("consent", 5, "warning")
    assert "withdrew consent" in problem.message and "by phone" in problem.message
    engine.dispose()


def test_telegram_older_than_48_hours_and_e_mail_are_reported_for_removal_by_hand(
    site: Settings,
) -> None:
    engine = _engine(site)
    item = received(engine, site.var_dir)
    published = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    t = story(slug(item), published, channels=["telegram", "email"], consent=True)
    post_all(engine, site, [t], published)
    withdrawn_at = published + timedelta(hours=49)
    with responses.RequestsMock() as rsps:
        removals.withdraw(engine, slug(item), "withdrawal link", withdrawn_at, item.invite)
        counts = sweep(engine, site, [t], withdrawn_at)
        assert len(rsps.calls) == 0  # Telegram would refuse: a bot deletes only younger posts
    assert counts == {removals.BY_HAND: 2}
    [(_, copies)] = removals.copies(engine)
    by_channel = {c.channel: c for c in copies}
    assert by_channel["telegram"].state == removals.BY_HAND
    assert "more than 48 hours" in str(by_channel["telegram"].detail)
    assert by_channel["telegram"].url == "https://t.me/cedarandclay/40"
    assert by_channel["email"].state == removals.BY_HAND
    assert "cannot be recalled" in str(by_channel["email"].detail)

    runner = CliRunner()
    listing = runner.invoke(main, ["--config", str(site.source), "consent"])
    assert listing.exit_code == 0, listing.output
    assert listing.output.count("REMOVE BY HAND") == 2
    assert "https://t.me/cedarandclay/40" in listing.output and "withdrawal link" in listing.output
    done = runner.invoke(
        main, ["--config", str(site.source), "consent", "done", by_channel["telegram"].id[:10]]
    )
    assert done.exit_code == 0, done.output
    listing = runner.invoke(main, ["--config", str(site.source), "consent", "list"])
    assert listing.output.count("REMOVE BY HAND") == 1 and "removed by hand" in listing.output
    steps = [s.state for s in removals.steps(engine, by_channel["telegram"].id)]
    assert steps == [removals.WAITING, removals.CLAIMED, removals.BY_HAND, removals.DONE_BY_HAND]
    engine.dispose()


def test_withdrawing_an_unknown_testimonial_is_one_clear_line_and_changes_nothing(
    site: Settings,
) -> None:
    result = CliRunner().invoke(
        main,
        ["--config", str(site.source), "consent", "withdraw", "no-such-story", "--how", "mail"],
    )
    assert result.exit_code != 0
    assert "no testimonial with slug 'no-such-story'" in result.output
    assert "Traceback" not in result.output
    engine = _engine(site)
    with engine.connect() as conn:
        assert conn.execute(select(consent_ends)).all() == []
    engine.dispose()


def test_a_lost_answer_is_looked_up_before_anything_is_deleted_again(site: Settings) -> None:
    engine = _engine(site)
    item = received(engine, site.var_dir)
    published = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    t = story(slug(item), published, channels=["mastodon"], consent=True)
    post_all(engine, site, [t], published)
    status = deliveries(engine)[("mastodon", None)].remote_id
    now = published + timedelta(hours=2)
    removals.withdraw(engine, slug(item), "withdrawal link", now, item.invite)
    url = f"{MASTODON}/api/v1/statuses/{status}"
    with responses.RequestsMock() as rsps:
        import requests

        rsps.delete(url, body=requests.ReadTimeout("read timed out"))
        assert sweep(engine, site, [t], now) == {removals.UNKNOWN: 1}
    with responses.RequestsMock() as rsps:
        rsps.get(url, json={"error": "Record not found"}, status=404)
        assert sweep(engine, site, [t], now + timedelta(minutes=1)) == {removals.REMOVED: 1}
        assert [c.request.method for c in rsps.calls] == ["GET"]  # no second DELETE
    [(_, [copy])] = removals.copies(engine)
    assert copy.state == removals.REMOVED and "gone" in str(copy.detail)
    with engine.connect() as conn:
        receipt = json.loads(conn.execute(select(ledger.deliveries.c.receipt)).scalar_one())
    assert receipt["remote_id"] == status  # the ledger's row is as it was: only read
    engine.dispose()


def test_marking_done_by_hand_takes_an_id_never_a_pattern(site: Settings) -> None:
    engine = _engine(site)
    item = received(engine, site.var_dir)
    published = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    t = story(slug(item), published, channels=["email"], consent=True)
    post_all(engine, site, [t], published)
    now = published + timedelta(days=3)
    removals.withdraw(engine, slug(item), "withdrawal link", now, item.invite)
    assert sweep(engine, site, [t], now) == {removals.BY_HAND: 1}
    for pattern in ("%", "_%", "", "%%%%"):
        assert removals.mark_done_by_hand(engine, pattern, now, "x") == []
    [(_, [copy])] = removals.copies(engine)
    assert copy.state == removals.BY_HAND
    assert removals.mark_done_by_hand(engine, copy.id, now, "noted") == [copy.id]
    engine.dispose()
